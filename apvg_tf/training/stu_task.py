"""The STU stage as a training task: a GAN of the STU and its discriminators.

Per training window (audio, real frames and keypoints of T consecutive frames):
  1. The pose the STU draws from: the frozen KP's K^pred over the whole window (the paper's;
     its LSTM gets the window as context), or the dataset's real keypoints
     (`stu.train_keypoints` "real"), perturbed by `pose_augment` and, per example with
     probability `stu.predicted_fraction`, replaced by K^pred. The DLT renders it at the
     video resolution (the heatmaps).
  2. The frozen CVG encodes the whole window's audio and rolls out autoregressively, as at
     inference, from the stored first frame over the window (`stu.coarse_start`
     "first_frame"; "real": from the real frame before the run, a coarse video better than
     inference will give); V^coarse is a random run of `stu.rollout_frames` of its frames.
  3. The STU generates those frames from (V^coarse, heatmaps, keypoints, A); the real frames
     are the targets.
  4. Generator loss: l1_weight * L1 + l2_weight * L2 (per pixel weighted 1 + limb_loss_weight
     on the arms and hands, `_pixel_weights`) + perceptual_weight * eq. (7) +
     adversarial_weight * eq. (5) + feature_matching_weight * (pix2pixHD's feature matching,
     on the frame's and the crops' discriminators) + local_disc_weight * the local
     discriminator's eq. (5). Discriminator loss: eq. (6) with the unpaired term (real frames
     with another example's audio, or with the window's audio reversed in time when a replica
     holds one example), averaged over the `stu.disc_scales` scales, plus the local
     discriminator's eq. (6) on the crops of the moving arm and the hands (`local_crops`).
     With `stu.disc_pose_condition` the discriminators see the heatmaps the generated frame
     was drawn from beside the frame, the real one's too.
One tape per network (the generator's, and one for the discriminators, which share one Adam),
losses averaged over the global batch.
"""

import numpy as np
import tensorflow as tf

from apvg_tf import heatmap, local_crops, losses
from apvg_tf.audio import N_BINS, WINDOW_COLUMNS
from apvg_tf.errors import InputError
from apvg_tf.models import discriminator as discriminator_lib
from apvg_tf.models import performance_generator, structured_temporal_unet, vgg as vgg_lib
from apvg_tf.skeleton import NUM_KEYPOINTS
from apvg_tf.training import cvg_task, pose_augment, precision, randomness
from apvg_tf.training.task import Task

TRAIN_KEYPOINTS = ("predicted", "real")
COARSE_STARTS = ("first_frame", "real")


class STUTask(Task):
  """Final video generation (paper Sec. III-C)."""

  name = "stu"
  fields = ("frames", "audio", "keypoints")

  def __init__(self, config, manifest, frozen=None):
    """`frozen`: the trained {"khp": KP, "cvg": CVG} the STU uses (those it needs)."""
    super().__init__(config, manifest, frozen)
    self.stu = config.stu
    check_config(config)
    self.kp = self.cvg = None
    # No heatmaps (the "w/o KHP" ablation), no pose maps to condition the discriminators on.
    self.pose_condition = bool(self.stu.disc_pose_condition and self.stu.use_heatmap)
    self.crop_groups = local_crops.crop_groups(manifest["instrument"])
    self.local_discriminator = None

  def _frozen(self, stage):
    """The trained model of an earlier stage (frozen: only the STU and D train)."""
    if stage not in self.frozen:
      raise InputError(f"the STU needs the trained {stage} stage; build the task with "
                       "stages.make_task, which restores it from the work directory")
    return self.frozen[stage]

  def build(self, optimizer):
    """Creates the models (inside the strategy scope) and returns what to checkpoint."""
    if self.stu.use_heatmap:
      self.kp = self._frozen("khp")
      if self.kp.lookahead_frames > self.config.window_frames - 2:
        raise InputError(f"the KP's lookahead ({self.kp.lookahead_frames} frames) leaves no "
                         f"STU run in windows of {self.config.window_frames} frames; raise "
                         "window_frames (or stu.window_frames)")
    if self.stu.use_coarse:
      self.cvg = self._frozen("cvg")
    self.model = structured_temporal_unet.structured_temporal_unet_from_config(
        self.stu, self.config.resolution, self._pose_channels(),
        canvas=cvg_task.mean_training_frame(self.config, self.manifest))
    condition = self._pose_channels() if self.pose_condition else 0
    self.discriminator = discriminator_lib.frame_discriminator_from_config(self.stu, condition)
    if self.stu.local_disc_weight:
      self.local_discriminator = discriminator_lib.local_discriminator_from_config(
          self.stu, condition)
    self.vgg = vgg_lib.VGGFeatures(backbone=self.config.cvg.backbone,
                                   output_layers=self.stu.perceptual_layers,
                                   weights_path=self.config.cvg.vgg_weights or None,
                                   trainable=False, name="perceptual_vgg")
    res = self.config.resolution
    self.model(self._dummy_inputs(1, 1), initial_state=None)
    maps = tf.zeros([1, res, res, condition]) if condition else None
    self.discriminator(tf.zeros([1, res, res, 3]), tf.zeros([1, N_BINS, WINDOW_COLUMNS]), maps)
    if self.local_discriminator is not None:
      size = self.stu.local_crop_size
      self.local_discriminator(tf.zeros([1, size, size, 3]),
                               condition=tf.zeros([1, size, size, condition]) if condition
                               else None)
    # The discriminators' own Adam on the same schedule (loss-scaled like the generator's).
    self.d_optimizer = precision.wrap(tf.keras.optimizers.Adam(optimizer.learning_rate),
                                      self.config.mixed_precision)
    optimizer.build(self.model.trainable_variables)
    self.d_optimizer.build(self._discriminator_variables())
    self.optimizer = optimizer
    # The full-resolution D keeps the name of the single D of earlier runs, which resume.
    scales = self.discriminator.scales
    items = {"model": self.model, "discriminator": scales[0], "optimizer": optimizer,
             "d_optimizer": self.d_optimizer}
    items.update({f"discriminator_scale{i}": d for i, d in enumerate(scales[1:], 1)})
    if self.local_discriminator is not None:
      items["local_discriminator"] = self.local_discriminator
    return items

  def _pose_channels(self):
    return heatmap.num_channels(self.stu.heatmap_parts, self.stu.limb_maps)

  def _discriminator_variables(self):
    local = self.local_discriminator
    return (self.discriminator.trainable_variables +
            (local.trainable_variables if local is not None else []))

  def _dummy_inputs(self, batch, steps):
    res = self.config.resolution
    return {"coarse": tf.zeros([batch, steps, res, res, 3]),
            "heatmaps": tf.zeros([batch, steps, res, res,
                                  self._pose_channels()]),
            "keypoints": tf.zeros([batch, steps, NUM_KEYPOINTS, 3]),
            "audio": tf.zeros([batch, steps, N_BINS, WINDOW_COLUMNS])}

  def generator(self):
    """The trained pipeline for inference: a PerformanceGenerator of KP, CVG and this STU."""
    return performance_generator.PerformanceGenerator(
        stu=self.model, keypoint_predictor=self.kp, coarse_video_generator=self.cvg,
        heatmap_radius=self.stu.heatmap_radius, heatmap_parts=self.stu.heatmap_parts,
        limb_maps=self.stu.limb_maps, limb_width=self.stu.limb_width)

  # ---------------------------------------------------------------------------- inputs

  def stage_inputs(self, batch, random):
    """The STU's inputs from the frozen stages, and the real frames they should become.

    Args:
      batch: dict with frames uint8 [B, T, R, R, 3], audio [B, T, 84, 87] and keypoints
        [B, T, 67, 3].
      random: a `randomness.StepRandom` (the run's start, the coarse video's z, the pose
        augmentation).

    Returns:
      (inputs dict for the STU over L = `stu.rollout_frames` frames, real float
      [B, L, R, R, 3] in [0, 1], keypoints float [B, L, 67, 3]: the pose the frames are drawn
      from, or the real keypoints without heatmaps; the local crops follow them).
    """
    stu = self.stu
    frames = tf.cast(batch["frames"], tf.float32) / 255.0
    audio = batch["audio"]
    total = frames.shape[1]
    # A KP with a lookahead of D frames poses frame t from the windows up to t + D: the run
    # ends D frames before the window does.
    lookahead = self.kp.lookahead_frames if self.kp is not None else 0
    usable = total - lookahead
    length = min(stu.rollout_frames or usable - 1, usable - 1)
    start = random.integer("stu/crop", 1, usable - length + 1)

    def run(x):
      """The run's frames of x [B, T, ...], with its length static (XLA, grappler)."""
      x = tf.convert_to_tensor(x)[:, start:start + length]
      x.set_shape(x.shape[:1].concatenate([length]).concatenate(x.shape[2:]))
      return x

    inputs = {"audio": run(audio)}
    keypoints = tf.cast(run(batch["keypoints"]), tf.float32)
    if stu.use_heatmap:
      predicted = None
      if stu.train_keypoints == "predicted" or stu.predicted_fraction:
        predicted = run(self.kp(audio)[:, lookahead:])
        predicted = tf.concat([predicted, tf.ones_like(predicted[..., :1])], -1)
      if stu.train_keypoints == "predicted":
        keypoints = predicted
      else:
        keypoints = pose_augment.augment_keypoints(
            keypoints, random, jitter=stu.keypoint_jitter, drift=stu.keypoint_drift,
            drop=stu.keypoint_drop, fps=float(self.manifest["fps"]))
        if stu.predicted_fraction:
          keypoints = pose_augment.mix_predicted(keypoints, predicted, random,
                                                 stu.predicted_fraction)
      inputs["keypoints"] = keypoints
      inputs["heatmaps"] = heatmap.pose_heatmaps(
          keypoints, self.config.resolution, radius=stu.heatmap_radius,
          parts=stu.heatmap_parts, limbs=stu.limb_maps, line_width=stu.limb_width)
    if stu.use_coarse:
      batch_size = tf.shape(frames)[0]
      h, c, first = self.cvg.initial_state(batch_size)
      maps, _, _ = self.cvg.encode_audio(audio, h, c)
      if stu.coarse_start == "first_frame":
        # As at inference: the CVG has rolled out on its own frames from the stored first
        # frame since the window began, so the STU learns to refine the coarse video it will
        # be given (a conditional mean, blurred where the music does not fix the pose).
        noise = random.normal("stu/z", batch_size, [total, self.cvg.z_dim])
        inputs["coarse"] = run(self.cvg.rollout(maps, first, noise)[0])
      else:
        noise = random.normal("stu/z", batch_size, [length, self.cvg.z_dim])
        inputs["coarse"], _ = self.cvg.rollout(run(maps), frames[:, start - 1], noise)
    inputs = {k: tf.stop_gradient(v) for k, v in inputs.items()}
    return inputs, run(frames), tf.stop_gradient(keypoints)

  # ------------------------------------------------------------------------------ step

  def compute_losses(self, inputs, real, keypoints, global_batch_size):
    """Generator and discriminator losses (per replica, scaled to the global mean).

    Args:
      inputs: the STU's inputs (`stage_inputs`).
      real: float [B, L, R, R, 3] the target frames.
      keypoints: float [B, L, 67, 3] whose groups the local crops follow.
      global_batch_size: for `tf.nn.compute_average_loss`.

    Returns:
      (dict of scaled losses with "total" (generator) and "d_total" (discriminators), fake
      frames [B, L, R, R, 3]).
    """
    stu = self.stu
    shape = tf.shape(real)
    batch_size, steps = shape[0], shape[1]
    flat = lambda x: tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))
    per_example = lambda x: tf.reduce_mean(tf.reshape(x, [batch_size, steps]), 1)
    audio = flat(inputs["audio"])
    other = flat(losses.unpaired_audio(inputs["audio"]))
    # The real frame is judged against the maps the fake was drawn from, so the condition
    # tells D nothing about which is which (augmented or dropped points included): only
    # whether the frame draws that pose.
    condition = flat(inputs["heatmaps"]) if self.pose_condition else None
    fake = self.model(inputs, training=True)
    fake_flat, real_flat = flat(fake), flat(real)
    weights = self._pixel_weights(keypoints)
    l1 = tf.reduce_mean(weights * tf.abs(fake - real), axis=[1, 2, 3, 4])
    l2 = tf.reduce_mean(weights * tf.square(fake - real), axis=[1, 2, 3, 4])
    perceptual = per_example(losses.perceptual_loss(self.vgg, fake_flat, real_flat))
    # One pass of D over the fake frames serves both losses: the generator's tape
    # differentiates only its loss, the discriminators' tape only theirs with respect to
    # their own variables, so no gradient of eq. (6) reaches the generator.
    real_scores = self.discriminator(real_flat, audio, condition)
    fake_scores = self.discriminator(fake_flat, audio, condition)
    unpaired_scores = self.discriminator(real_flat, other, condition)
    mean = lambda values: tf.add_n(values) / len(values)
    adversarial = per_example(mean([
        losses.generator_adversarial_loss(logits, stu.adversarial_loss)
        for logits, _ in fake_scores]))
    d_loss = per_example(mean([
        losses.discriminator_adversarial_loss(r, f, u, stu.adversarial_loss)
        for (r, _), (f, _), (u, _) in zip(real_scores, fake_scores, unpaired_scores)]))
    total = (stu.l1_weight * l1 + stu.l2_weight * l2 + stu.perceptual_weight * perceptual +
             stu.adversarial_weight * adversarial)
    out = {"l1": l1, "l2": l2, "perceptual": perceptual, "adversarial": adversarial}
    if stu.feature_matching_weight:
      out["feature_matching"] = per_example(losses.feature_matching_loss(
          [f for _, f in real_scores], [f for _, f in fake_scores]))
      total += stu.feature_matching_weight * out["feature_matching"]
    if self.local_discriminator is not None:
      local = self._local_losses(real_flat, fake_flat, flat(keypoints), condition)
      out["local_adversarial"] = per_example(local["adversarial"])
      total += stu.local_disc_weight * out["local_adversarial"]
      if stu.feature_matching_weight:
        out["local_feature_matching"] = per_example(local["feature_matching"])
        total += stu.feature_matching_weight * out["local_feature_matching"]
      out["d_local"] = per_example(local["d"])
      d_loss += out["d_local"]
    out.update(total=total, d_total=d_loss)
    scale = lambda x: tf.nn.compute_average_loss(x, global_batch_size=global_batch_size)
    return {k: scale(v) for k, v in out.items()}, fake

  def _pixel_weights(self, keypoints):
    """The L1 and L2 loss's weight per pixel: 1, plus `stu.limb_loss_weight` on the arms and
    hands of the pose drawn (lines `stu.limb_loss_width` pixels wide, about 1 on them).

    Arms and hands are a few percent of the pixels of a frame but what a viewer watches; the
    augmented pose is within a pixel or two of the real one the target shows, inside the line.

    Args:
      keypoints: float [B, L, 67, 3].

    Returns:
      float [B, L, R, R, 1], or the scalar 1.0 when the weight is 0.
    """
    if not self.stu.limb_loss_weight:
      return 1.0
    res = self.config.resolution
    limbs = heatmap.limb_maps(keypoints[..., :2], res, res, line_width=self.stu.limb_loss_width,
                              weights=keypoints[..., 2])
    groups = list(heatmap.LIMB_GROUPS)
    moving = [groups.index(g) for g in ("left_arm", "right_arm", "left_hand", "right_hand")]
    mask = tf.reduce_max(tf.gather(limbs, moving, axis=-1), -1, keepdims=True)
    return tf.stop_gradient(1.0 + self.stu.limb_loss_weight * mask)

  def _local_losses(self, real, fake, keypoints, condition):
    """The local discriminator's terms on the arm and hand crops, per frame.

    Args:
      real, fake: float [N, R, R, 3].
      keypoints: float [N, 67, 3] whose groups the crops follow.
      condition: float [N, R, R, C] pose maps, or None.

    Returns:
      dict of float [N]: "adversarial" (eq. (5)), "feature_matching", "d" (eq. (6) without
      audio), each the sum over the frame's seen groups divided by the number of groups.
    """
    size = self.stu.local_crop_size
    boxes, valid = local_crops.crop_boxes(keypoints, self.crop_groups, self.config.resolution,
                                          size)
    cut = lambda x: local_crops.crop(x, boxes, size)
    maps = cut(condition) if condition is not None else None
    real_logits, real_features = self.local_discriminator(cut(real), condition=maps,
                                                          return_features=True)
    fake_logits, fake_features = self.local_discriminator(cut(fake), condition=maps,
                                                          return_features=True)
    kind = self.stu.adversarial_loss
    # A missing group's crop is cut from the frame's centre: masked out, over a fixed count.
    per_frame = lambda x: tf.reduce_mean(tf.reshape(x, tf.shape(valid)) * valid, 1)
    return {"adversarial": per_frame(losses.generator_adversarial_loss(fake_logits, kind)),
            "feature_matching": per_frame(losses.feature_matching_loss([real_features],
                                                                       [fake_features])),
            "d": per_frame(losses.discriminator_adversarial_loss(real_logits, fake_logits,
                                                                 kind=kind))}

  def train_step(self, batch, global_batch_size, random):
    """One generator and one discriminator update on a replica's batch."""
    inputs, real, keypoints = self.stage_inputs(batch, random)
    with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
      out, _ = self.compute_losses(inputs, real, keypoints, global_batch_size)
      g_loss = precision.scaled(self.optimizer, out["total"])
      d_loss = precision.scaled(self.d_optimizer, out["d_total"])
    precision.apply_gradients(self.optimizer, g_tape, g_loss, self.model.trainable_variables)
    precision.apply_gradients(self.d_optimizer, d_tape, d_loss,
                              self._discriminator_variables())
    return out

  def summary_images(self, batch, frames=4):
    """Real frames (top), coarse (middle, when used) and STU frames (bottom) of one example.

    Returns:
      uint8 [1, rows R, frames R, 3].
    """
    inputs, real, _ = self.stage_inputs({k: v[:1] for k, v in batch.items()},
                                        randomness.StepRandom(self.config.seed, 0, 1))
    fake = self.model(inputs)
    rows = [real[0]] + ([inputs["coarse"][0]] if "coarse" in inputs else []) + [fake[0]]
    steps = np.linspace(0, int(real.shape[1]) - 1, frames).astype(int)
    to_row = lambda x: np.concatenate(list(np.round(x.numpy()[steps] * 255).astype(np.uint8)), 1)
    return np.concatenate([to_row(r) for r in rows], 0)[None]


# ---------------------------------------------------------------------------- config

_NON_NEGATIVE = ("l1_weight", "l2_weight", "perceptual_weight", "adversarial_weight",
                 "limb_loss_weight",
                 "feature_matching_weight", "local_disc_weight", "keypoint_jitter",
                 "keypoint_drift")
_FRACTIONS = ("keypoint_drop", "predicted_fraction")


def check_config(config):
  """Raises one InputError naming the first bad `config.stu` value (checked before building).

  Args:
    config: the stage's resolved ConfigDict.
  """
  stu = config.stu
  choices = (("train_keypoints", TRAIN_KEYPOINTS), ("coarse_start", COARSE_STARTS),
             ("adversarial_loss", losses.ADVERSARIAL_LOSSES))
  for key, allowed in choices:
    if stu[key] not in allowed:
      raise InputError(f"stu.{key} is {stu[key]!r}; expected one of {', '.join(allowed)}")
  for key in _NON_NEGATIVE:
    if not stu[key] >= 0:
      raise InputError(f"stu.{key} is {stu[key]}; it must be 0 or more")
  for key in _FRACTIONS:
    if not 0 <= stu[key] <= 1:
      raise InputError(f"stu.{key} is {stu[key]}; it is a probability, in [0, 1]")
  for key in ("heatmap_radius", "limb_width", "limb_loss_width"):
    if not stu[key] > 0:
      raise InputError(f"stu.{key} is {stu[key]}; it is a width in pixels, above 0")
  res = config.resolution
  if int(stu.disc_scales) != stu.disc_scales or stu.disc_scales < 1:
    raise InputError(f"stu.disc_scales is {stu.disc_scales}; expected 1 (one discriminator) "
                     "or more (pix2pixHD's multi-scale: 2 or 3)")
  # Each D halves its input len(channels) times; on a smaller input its patches are the frame.
  coarsest, needed = res // 2**(stu.disc_scales - 1), 2**len(stu.disc_channels)
  if coarsest < needed:
    raise InputError(f"stu.disc_scales={stu.disc_scales} pools the {res}-pixel frames to "
                     f"{coarsest} pixels, fewer than the {needed} its "
                     f"{len(stu.disc_channels)} stride-2 convs need; lower stu.disc_scales")
  size = stu.local_crop_size
  if int(size) != size or not 1 <= size <= res:
    raise InputError(f"stu.local_crop_size is {size}; expected a whole number of pixels "
                     f"from 1 to the resolution, {res}")
  needed = 2**len(stu.local_disc_channels)
  if stu.local_disc_weight and size < needed:
    raise InputError(f"stu.local_crop_size is {size} pixels, fewer than the {needed} the "
                     f"local discriminator's {len(stu.local_disc_channels)} stride-2 convs "
                     "need; raise it or shorten stu.local_disc_channels")
