"""The KHP stage as a training task: KP model, eqs. (2)-(3), the motion prior, summaries."""

import numpy as np
import tensorflow as tf

from apvg_tf import data, losses, metrics, skeleton, streaming
from apvg_tf.audio import N_BINS, WINDOW_COLUMNS, augment
from apvg_tf.errors import InputError
from apvg_tf.models import keypoint_predictor
from apvg_tf.training import motion_prior, precision
from apvg_tf.training.task import Task


class KHPTask(Task):
  """Keypoint and heatmap prediction (paper Sec. III-A)."""

  name = "khp"
  fields = ("audio", "keypoints")

  def __init__(self, config, manifest, frozen=None):
    """`frozen`: {"sync": the trained sync evaluator} with the pose perceptual loss."""
    super().__init__(config, manifest, frozen)
    self.khp = config.khp
    self.mean_pose = np.asarray(manifest["mean_pose"], np.float32)
    self._validation = None
    sync = self.frozen.get("sync")
    self.prior = motion_prior.MotionPrior(
        config, motion_encoder=sync.motion_encoder if sync is not None else None)
    self._check_augmentation()
    if not 0 <= self.khp.lookahead_frames < config.window_frames:
      raise InputError(f"khp.lookahead_frames is {self.khp.lookahead_frames}; it must be at "
                       f"least 0 and below the training window ({config.window_frames} frames)")

  def _check_augmentation(self):
    khp = self.khp
    if not 0 <= khp.pitch_shift <= 12:  # The config types it as an int already.
      raise InputError(f"khp.pitch_shift is {khp.pitch_shift}; it must be a whole number of "
                       "semitones from 0 (off) to 12")
    if not 0 <= khp.time_stretch < 1:
      raise InputError(f"khp.time_stretch is {khp.time_stretch}; it must be at least 0 (off) "
                       "and below 1 (rates within [1 / (1 + s), 1 + s])")
    if khp.pitch_arm_units < 0:
      raise InputError(f"khp.pitch_arm_units is {khp.pitch_arm_units}; it must be 0 (off) or "
                       "the arm path's LSTM size")
    for name in ("pitch_shift_probability", "time_stretch_probability"):
      if not 0 < khp[name] <= 1:
        raise InputError(f"khp.{name} is {khp[name]}; it must be in (0, 1]")

  def build(self, optimizer):
    """Creates the model (inside the strategy scope) and returns what to checkpoint.

    With `khp.ema_decay` > 0 there are two models: `train_model`, which the optimizer
    updates, and `model`, the exponential moving average of its weights, which validation,
    evaluation and export use. The average is checkpointed as "model", so everything that
    restores a KP gets it; without EMA, `train_model` is `model`.
    """
    def new_model():
      model = keypoint_predictor.keypoint_predictor_from_config(
          self.khp, self.mean_pose, self.manifest.get("instrument"))
      model(tf.zeros([1, 1, N_BINS, WINDOW_COLUMNS]))  # Create the weights.
      return model

    self.model = new_model()
    self.train_model = self.model
    items = {"model": self.model, "optimizer": optimizer}
    if self.khp.ema_decay:
      self.train_model = new_model()
      for average, weight in zip(self.model.weights, self.train_model.weights):
        average.assign(weight)
      items["train_model"] = self.train_model
    # Create the optimizer's slots now, so a checkpoint restores into them at once.
    optimizer.build(self.train_model.trainable_variables)
    self.optimizer = optimizer
    items.update(self.prior.build(optimizer))
    return items

  def compute_losses(self, batch, global_batch_size, training=True, random=None):
    """Per-replica losses, scaled so that their sum over replicas is the global mean.

    Args:
      batch: dict with audio [B, T, 84, 87] and keypoints [B, T, 67, 3].
      global_batch_size: the global batch size.
      training: apply the KP's dropout.
      random: the step's `randomness.StepRandom` (dropout masks).

    Returns:
      (dict of scaled losses, predicted keypoints [B, T - D, 67, 2] of frames 0 .. T - D - 1,
      D the lookahead).
    """
    model = self.train_model if training else self.model
    pred = model(batch["audio"], training=training, random=random,
                 arm_audio=batch.get("arm_audio"))
    pred = pred[:, self.khp.lookahead_frames:]
    keypoints, audio = self.scored_frames(batch)
    real, confidence = keypoints[..., :2], keypoints[..., 2]
    coord = losses.keypoint_coordinate_loss(pred, real, confidence)
    out = {"coord": tf.nn.compute_average_loss(coord, global_batch_size=global_batch_size)}
    total = self.khp.coord_loss_weight * coord
    if self.khp.dlt_loss:
      heat = losses.keypoint_heatmap_loss(pred, real, confidence, size=self.khp.heatmap_size,
                                          radius=self.khp.tent_radius,
                                          parts=self.khp.heatmap_parts)
      out["heatmap"] = tf.nn.compute_average_loss(heat, global_batch_size=global_batch_size)
      total += self.khp.heatmap_loss_weight * heat
    prior = self.prior.generator_losses(pred, keypoints, audio)
    for name, value in prior.items():
      out[name] = tf.nn.compute_average_loss(value, global_batch_size=global_batch_size)
      total += self.khp[f"{name}_weight"] * value
    out["total"] = tf.nn.compute_average_loss(total, global_batch_size=global_batch_size)
    return out, pred

  def augmented(self, batch, random):
    """The batch with some examples played at another tempo or pitch (audio/augment.py).

    `khp.time_stretch` = s > 0: with probability `khp.time_stretch_probability` an example's
    music and motion are played at a rate drawn log-uniformly in [1 / (1 + s), 1 + s].
    `khp.pitch_shift` = K > 0: with probability `khp.pitch_shift_probability` an example is
    transposed by 1 to K semitones, up or down, and the arms that follow the pitch (the
    cellist's left) are masked from the losses; with `khp.pitch_arm_units` > 0 they come from
    the arm path instead, which gets the unshifted windows as `arm_audio` and is not masked.
    Both give the bow and the body music the model has not heard.

    Args:
      batch: dict with audio [B, T, 84, 87], keypoints [B, T, 67, 3], start_frame [B].
      random: the step's `randomness.StepRandom`.

    Returns:
      the batch dict with audio and keypoints replaced, and arm_audio [B, T, 84, 87] with an
      arm path (the batch itself when both are off).
    """
    if not (self.khp.pitch_shift or self.khp.time_stretch):
      return batch
    batch = dict(batch)
    local_batch = tf.shape(batch["audio"])[0]
    if self.khp.time_stretch:
      draw = random.uniform("kp/time_stretch", local_batch, [2])
      log_range = np.log1p(self.khp.time_stretch)
      rates = tf.where(draw[:, 0] < self.khp.time_stretch_probability,
                       tf.exp((2.0 * draw[:, 1] - 1.0) * log_range), 1.0)
      batch["audio"], batch["keypoints"] = augment.time_stretch(
          batch["audio"], batch["keypoints"], rates, batch["start_frame"], self.manifest["fps"],
          self.manifest["audio"]["sample_rate"], self.manifest["audio"]["hop_length"],
          lookahead_frames=self.khp.lookahead_frames)
    if self.khp.pitch_shift:
      draw = random.uniform("kp/pitch_shift", local_batch, [3])
      shifted = draw[:, 0] < self.khp.pitch_shift_probability
      size = tf.minimum(1 + tf.cast(tf.floor(draw[:, 1] * self.khp.pitch_shift), tf.int32),
                        self.khp.pitch_shift)
      semitones = tf.where(shifted, tf.where(draw[:, 2] < 0.5, -size, size), 0)
      if self.khp.pitch_arm_units:  # The arm path hears every window as it was.
        batch["arm_audio"] = batch["audio"]
      else:
        # The masked arms learn from the unshifted examples only; weighting those by
        # 1 / (1 - p) keeps their share of the loss.
        batch["keypoints"] = augment.mask_pitch_arms(
            batch["keypoints"], shifted, self.manifest["instrument"],
            kept_weight=1.0 / max(1.0 - self.khp.pitch_shift_probability, 1e-3))
      batch["audio"] = augment.pitch_shift(batch["audio"], semitones, self.manifest["cqt_mean"],
                                           self.manifest["cqt_std"])
    return batch

  def scored_frames(self, batch):
    """The frames the KP's outputs draw, given its lookahead D: (keypoints, audio).

    Output t is the pose of frame t - D, so of a window of T frames the first D outputs
    (poses before the window) and the last D frames (posed after it) go unscored. The audio
    is the music the real motion was played to: with an arm path, the untransposed windows
    (`arm_audio`), since the real arm follows them (the rest barely moves with a shift).

    Args:
      batch: dict with audio [B, T, 84, 87] and keypoints [B, T, 67, 3].

    Returns:
      keypoints [B, T - D, 67, 3] and audio [B, T - D, 84, 87] of frames 0 .. T - D - 1,
      which outputs D .. T - 1 draw.
    """
    d = self.khp.lookahead_frames
    audio = batch.get("arm_audio", batch["audio"])
    if not d:
      return batch["keypoints"], audio
    return batch["keypoints"][:, :-d], audio[:, :-d]

  def train_step(self, batch, global_batch_size, random):
    """One optimisation step on a replica's batch; returns its scaled losses."""
    # The KP's losses and the motion prior's discriminator see the same (augmented) batch.
    batch = self.augmented(batch, random)
    with tf.GradientTape() as tape, tf.GradientTape() as d_tape:
      out, pred = self.compute_losses(batch, global_batch_size, random=random)
      loss = precision.scaled(self.optimizer, out["total"])
      if self.prior.adversarial:
        out["d_total"] = tf.nn.compute_average_loss(
            self.prior.discriminator_loss(pred, *self.scored_frames(batch)),
            global_batch_size=global_batch_size)
        d_loss = precision.scaled(self.prior.d_optimizer, out["d_total"])
    precision.apply_gradients(self.optimizer, tape, loss, self.train_model.trainable_variables)
    if self.prior.adversarial:
      precision.apply_gradients(self.prior.d_optimizer, d_tape, d_loss,
                                self.prior.discriminator_variables)
    return out

  def after_step(self):
    """Cross-replica, after each optimizer step: moves the EMA weights toward the trained.

    Polyak averaging over the last ~1 / (1 - decay) steps: an average of weights often
    generalises better than any one of them, and it removes the step-to-step noise from the
    choice of the best validation checkpoint. (On the virtual cellist it did not help the
    bow hand: experiments/results/khp.md.)
    """
    decay = self.khp.ema_decay
    if decay:
      for average, weight in zip(self.model.trainable_variables,
                                 self.train_model.trainable_variables):
        average.assign(decay * average + (1.0 - decay) * weight)

  def summary_images(self, batch, frames=4):
    """An image of real (left) and predicted (right) skeletons of the first example.

    Args:
      batch: a (local) batch dict.
      frames: how many frames of the window to show, top to bottom.

    Returns:
      uint8 [1, frames * 128, 256, 3].
    """
    pred = self.model(batch["audio"][:1]).numpy()[0, self.khp.lookahead_frames:]
    real = self.scored_frames(batch)[0][0].numpy()
    steps = np.linspace(0, len(real) - 1, frames).astype(int)
    blank = np.full((128, 128, 3), 24, np.uint8)
    rows = [np.concatenate([skeleton.draw_skeleton(blank, real[t]),
                            skeleton.draw_skeleton(blank, pred[t])], 1) for t in steps]
    return np.concatenate(rows, 0)[None]

  def validation_score(self):
    """kp_distance on the validation split (lower is better), or None without one.

    The trainer keeps the checkpoint with the best score: the KP's motion is only partly
    determined by the sound, and on a small dataset it starts to replay the training
    pieces' bowing long before its training loss stops falling.
    """
    if not self.manifest["splits"].get("validation"):
      return None
    if self._validation is None:
      self._validation = [(data.clip_windows(c, self.manifest, self.khp.lookahead_frames),
                           c["keypoints"])
                          for c in data.read_clips(self.config.dataset_dir, "validation",
                                                   with_frames=False)]
    pooled = [metrics.keypoint_distance(
        streaming.predict_keypoints(self.model, windows, self.config.eval.chunk_frames), real)
              for windows, real in self._validation]
    return sum(p[0] for p in pooled) / max(sum(p[1] for p in pooled), 1)
