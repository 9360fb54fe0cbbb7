"""The STU stage as a training task: a GAN of the STU and the audio-video discriminator.

Per training window (audio, real frames and keypoints of T consecutive frames):
  1. The frozen KP runs over the whole window (K^pred; its LSTM gets the window as context)
     and the DLT renders K^pred at the video resolution (H^pred).
  2. The frozen CVG encodes the whole window's audio and rolls out autoregressively, as at
     inference, from the stored first frame over the window (`stu.coarse_start`
     "first_frame"; "real": from the real frame before the run, a coarse video better than
     inference will give); V^coarse is a random run of `stu.rollout_frames` of its frames.
  3. The STU generates those frames from (V^coarse, H^pred, K^pred, A).
  4. Generator loss: l1_weight * L1 + l2_weight * L2 + perceptual_weight * eq. (7) +
     adversarial_weight * eq. (5); discriminator loss: eq. (6) with the unpaired term (real
     frames with another example's audio, or with the window's audio reversed in time when a
     replica holds one example).
One tape per network (STYLE.md), losses averaged over the global batch.
"""

import numpy as np
import tensorflow as tf

from apvg_tf import heatmap, losses
from apvg_tf.audio import N_BINS, WINDOW_COLUMNS
from apvg_tf.errors import InputError
from apvg_tf.models import discriminator as discriminator_lib
from apvg_tf.models import performance_generator, structured_temporal_unet, vgg as vgg_lib
from apvg_tf.skeleton import NUM_KEYPOINTS
from apvg_tf.training import cvg_task, precision, randomness
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
    if self.stu.train_keypoints not in TRAIN_KEYPOINTS:
      raise InputError(f"stu.train_keypoints is {self.stu.train_keypoints!r}; expected one of "
                       f"{', '.join(TRAIN_KEYPOINTS)}")
    if self.stu.coarse_start not in COARSE_STARTS:
      raise InputError(f"stu.coarse_start is {self.stu.coarse_start!r}; expected one of "
                       f"{', '.join(COARSE_STARTS)}")
    self.kp = self.cvg = None

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
        self.stu, self.config.resolution, heatmap.num_channels(self.stu.heatmap_parts),
        canvas=cvg_task.mean_training_frame(self.config, self.manifest))
    self.discriminator = discriminator_lib.discriminator_from_config(self.stu)
    self.vgg = vgg_lib.VGGFeatures(backbone=self.config.cvg.backbone,
                                   output_layers=self.stu.perceptual_layers,
                                   weights_path=self.config.cvg.vgg_weights or None,
                                   trainable=False, name="perceptual_vgg")
    res = self.config.resolution
    self.model(self._dummy_inputs(1, 1), initial_state=None)
    self.discriminator(tf.zeros([1, res, res, 3]), tf.zeros([1, N_BINS, WINDOW_COLUMNS]))
    # The discriminator's own Adam on the same schedule (loss-scaled like the generator's).
    self.d_optimizer = precision.wrap(tf.keras.optimizers.Adam(optimizer.learning_rate),
                                      self.config.mixed_precision)
    optimizer.build(self.model.trainable_variables)
    self.d_optimizer.build(self.discriminator.trainable_variables)
    self.optimizer = optimizer
    return {"model": self.model, "discriminator": self.discriminator,
            "optimizer": optimizer, "d_optimizer": self.d_optimizer}

  def _dummy_inputs(self, batch, steps):
    res = self.config.resolution
    return {"coarse": tf.zeros([batch, steps, res, res, 3]),
            "heatmaps": tf.zeros([batch, steps, res, res,
                                  heatmap.num_channels(self.stu.heatmap_parts)]),
            "keypoints": tf.zeros([batch, steps, NUM_KEYPOINTS, 3]),
            "audio": tf.zeros([batch, steps, N_BINS, WINDOW_COLUMNS])}

  def generator(self):
    """The trained pipeline for inference: a PerformanceGenerator of KP, CVG and this STU."""
    return performance_generator.PerformanceGenerator(
        stu=self.model, keypoint_predictor=self.kp, coarse_video_generator=self.cvg,
        heatmap_radius=self.stu.heatmap_radius, heatmap_parts=self.stu.heatmap_parts)

  # ---------------------------------------------------------------------------- inputs

  def stage_inputs(self, batch, random):
    """The STU's inputs from the frozen stages, and the real frames they should become.

    Args:
      batch: dict with frames uint8 [B, T, R, R, 3], audio [B, T, 84, 87] and keypoints
        [B, T, 67, 3].
      random: a `randomness.StepRandom` (the run's start, the coarse video's z).

    Returns:
      (inputs dict for the STU over L = `stu.rollout_frames` frames, real float
      [B, L, R, R, 3] in [0, 1]).
    """
    frames = tf.cast(batch["frames"], tf.float32) / 255.0
    audio = batch["audio"]
    total = frames.shape[1]
    # A KP with a lookahead of D frames poses frame t from the windows up to t + D: the run
    # ends D frames before the window does.
    lookahead = self.kp.lookahead_frames if self.kp is not None else 0
    usable = total - lookahead
    length = min(self.stu.rollout_frames or usable - 1, usable - 1)
    start = random.integer("stu/crop", 1, usable - length + 1)
    run = slice(None), slice(start, start + length)
    inputs = {"audio": audio[run]}
    if self.stu.use_heatmap:
      if self.stu.train_keypoints == "predicted":
        keypoints = self.kp(audio)[:, lookahead:][run]
        keypoints = tf.concat([keypoints, tf.ones_like(keypoints[..., :1])], -1)
      else:
        keypoints = batch["keypoints"][run]
      inputs["keypoints"] = keypoints
      inputs["heatmaps"] = heatmap.pose_heatmaps(
          keypoints, self.config.resolution, radius=self.stu.heatmap_radius,
          parts=self.stu.heatmap_parts)
    if self.stu.use_coarse:
      batch_size = tf.shape(frames)[0]
      h, c, first = self.cvg.initial_state(batch_size)
      maps, _, _ = self.cvg.encode_audio(audio, h, c)
      if self.stu.coarse_start == "first_frame":
        # As at inference: the CVG has rolled out on its own frames from the stored first
        # frame since the window began, so the STU learns to refine the coarse video it will
        # be given (a conditional mean, blurred where the music does not fix the pose).
        noise = random.normal("stu/z", batch_size, [total, self.cvg.z_dim])
        inputs["coarse"] = self.cvg.rollout(maps, first, noise)[0][run]
      else:
        noise = random.normal("stu/z", batch_size, [length, self.cvg.z_dim])
        inputs["coarse"], _ = self.cvg.rollout(maps[run], frames[:, start - 1], noise)
    return {k: tf.stop_gradient(v) for k, v in inputs.items()}, frames[run]

  # ------------------------------------------------------------------------------ step

  def compute_losses(self, inputs, real, global_batch_size):
    """Generator and discriminator losses (per replica, scaled to the global mean).

    Returns:
      (dict of scaled losses with "total" (generator) and "d_total", fake frames
      [B, L, R, R, 3]).
    """
    stu = self.stu
    shape = tf.shape(real)
    batch_size, steps = shape[0], shape[1]
    flat = lambda x: tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))
    per_example = lambda x: tf.reduce_mean(tf.reshape(x, [batch_size, steps]), 1)
    audio = flat(inputs["audio"])
    other = losses.unpaired_audio(inputs["audio"])
    fake = self.model(inputs, training=True)
    fake_flat, real_flat = flat(fake), flat(real)
    l1 = tf.reduce_mean(tf.abs(fake - real), axis=[1, 2, 3, 4])
    l2 = tf.reduce_mean(tf.square(fake - real), axis=[1, 2, 3, 4])
    perceptual = per_example(losses.perceptual_loss(self.vgg, fake_flat, real_flat))
    adversarial = per_example(losses.generator_adversarial_loss(
        self.discriminator(fake_flat, audio), stu.adversarial_loss))
    total = (stu.l1_weight * l1 + stu.l2_weight * l2 + stu.perceptual_weight * perceptual +
             stu.adversarial_weight * adversarial)
    d_loss = per_example(losses.discriminator_adversarial_loss(
        self.discriminator(real_flat, audio),
        self.discriminator(tf.stop_gradient(fake_flat), audio),
        self.discriminator(real_flat, flat(other)), stu.adversarial_loss))
    scale = lambda x: tf.nn.compute_average_loss(x, global_batch_size=global_batch_size)
    return {"l1": scale(l1), "l2": scale(l2), "perceptual": scale(perceptual),
            "adversarial": scale(adversarial), "total": scale(total),
            "d_total": scale(d_loss)}, fake

  def train_step(self, batch, global_batch_size, random):
    """One generator and one discriminator update on a replica's batch."""
    inputs, real = self.stage_inputs(batch, random)
    with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
      out, _ = self.compute_losses(inputs, real, global_batch_size)
      g_loss = precision.scaled(self.optimizer, out["total"])
      d_loss = precision.scaled(self.d_optimizer, out["d_total"])
    g_vars = self.model.trainable_variables
    d_vars = self.discriminator.trainable_variables
    precision.apply_gradients(self.optimizer, g_tape, g_loss, g_vars)
    precision.apply_gradients(self.d_optimizer, d_tape, d_loss, d_vars)
    return out

  def summary_images(self, batch, frames=4):
    """Real frames (top), coarse (middle, when used) and STU frames (bottom) of one example.

    Returns:
      uint8 [1, rows R, frames R, 3].
    """
    inputs, real = self.stage_inputs({k: v[:1] for k, v in batch.items()},
                                     randomness.StepRandom(self.config.seed, 0, 1))
    fake = self.model(inputs)
    rows = [real[0]] + ([inputs["coarse"][0]] if "coarse" in inputs else []) + [fake[0]]
    steps = np.linspace(0, int(real.shape[1]) - 1, frames).astype(int)
    to_row = lambda x: np.concatenate(list(np.round(x.numpy()[steps] * 255).astype(np.uint8)), 1)
    return np.concatenate([to_row(r) for r in rows], 0)[None]
