"""The CVG stage as a training task: the coarse video generator, eq. (4), scheduled sampling.

Each training window of T frames gives T-1 targets: frame t is generated from the audio window
A_t (the LSTM has run over the window from A_0) and a previous frame that is either the real
frame t-1 (teacher forcing) or the model's own frame t-1 (scheduled sampling, Bengio et al.
2015), chosen per example and step with a probability that rises linearly from 0 at
`cvg.sampling_start` to `cvg.sampling_max_prob` at `cvg.sampling_end` (fractions of
`num_train_steps`). Own frames are fed through tf.stop_gradient, so exposure to the model's
own errors costs no backward pass through time.

The model's canvas starts at the mean of 512 training frames (`mean_training_frame`), and its
rollouts at `cvg.first_frame` (`load_first_frame`); both are stored in the checkpoint.

`cvg.rollout_start` sets where a training rollout starts: "real", the window's first real frame
(teacher forcing's convention), or "first_frame", the stored first frame that every inference
rollout starts from. With "real" the best a model can do over a 16-frame run is to copy and
shift its (real) start, so it learns to keep whatever pose it is given; at inference that pose
is the first frame's, held for minutes, and a held pose scores below the mean frame. From
the stored first frame the start says nothing about the target, and the L2-optimal frame is
the conditional mean given the music: the performer where the sound fixes it (the left hand
follows pitch), a blur where it does not (docs/pipeline.md, the CVG; experiments/results/cvg.md).

Validation: every `eval_every_steps` the trainer scores the first `cvg.validation_frames`
frames of each validation clip, generated as at inference (score: minus their mean PSNR), and
keeps the best checkpoint.
"""

import os

import numpy as np
import tensorflow as tf

from apvg_tf import data, metrics, streaming
from apvg_tf.data import pipeline, reader
from apvg_tf.audio import N_BINS, WINDOW_COLUMNS
from apvg_tf.errors import InputError
from apvg_tf.models import coarse_video_generator
from apvg_tf.training import precision
from apvg_tf.training.task import Task


def load_first_frame(config, manifest=None):
  """The frame rollouts start from: `config.cvg.first_frame` = (split, clip index, frame).

  Args:
    config: the run's config (dataset_dir, resolution, cvg.first_frame).
    manifest: the dataset's manifest (read if not given).

  Returns:
    uint8 [R, R, 3], resized (area) to `config.resolution` exactly as the pipeline does.

  Raises:
    InputError: if the split, clip or frame does not exist.
  """
  manifest = manifest or data.load_manifest(config.dataset_dir)
  split, clip_index, frame_index = config.cvg.first_frame
  clips = data.split_clips(manifest, split)
  if not 0 <= int(clip_index) < len(clips):
    raise InputError(f"cvg.first_frame: split {split!r} has {len(clips)} clips, no clip "
                     f"{clip_index}")
  clip = clips[int(clip_index)]
  if not 0 <= int(frame_index) < clip["num_frames"]:
    raise InputError(f"cvg.first_frame: clip {clip['clip_id']!r} has {clip['num_frames']} "
                     f"frames, no frame {frame_index}")
  for segment in reader.read_segments(os.path.join(config.dataset_dir, clip["file"])):
    offset = int(frame_index) - int(segment["frame_start"])
    if 0 <= offset < int(segment["frames"].shape[0]):
      resolution = config.resolution if config.resolution != manifest["resolution"] else None
      return pipeline.decode_frames(segment["frames"][offset:offset + 1], resolution)[0].numpy()
  raise InputError(f"cvg.first_frame: frame {frame_index} of clip {clip['clip_id']!r} is in "
                   "no segment of its shard; the dataset is damaged, run preprocess.py again")


def mean_training_frame(config, manifest=None, num_frames=512):
  """The mean of `num_frames` training frames spread evenly over the train split.

  Only the chosen frames are decoded (a few seconds at 128x128).

  Returns:
    float32 [R, R, 3] in [0, 1], at `config.resolution`.
  """
  manifest = manifest or data.load_manifest(config.dataset_dir)
  clips = data.split_clips(manifest, "train")
  stride = max(1, sum(c["num_frames"] for c in clips) // num_frames)
  resolution = config.resolution if config.resolution != manifest["resolution"] else None
  total, count = 0.0, 0
  for clip in clips:
    for segment in reader.read_segments(os.path.join(config.dataset_dir, clip["file"])):
      # Frames whose index in the clip is a multiple of the stride.
      first = -int(segment["frame_start"]) % stride
      encoded = segment["frames"][first::stride]
      if encoded.shape[0]:
        frames = pipeline.decode_frames(encoded, resolution).numpy()
        total, count = total + frames.astype(np.float64).sum(0), count + len(frames)
  return (total / (255.0 * count)).astype(np.float32)


class CVGTask(Task):
  """Coarse video generation (paper Sec. III-B)."""

  name = "cvg"
  fields = ("frames", "audio")

  def __init__(self, config, manifest, frozen=None):
    super().__init__(config, manifest, frozen)  # Trains from the data alone.
    self.cvg = config.cvg
    if self.cvg.rollout_start not in ("real", "first_frame"):
      raise InputError(f"cvg.rollout_start is {self.cvg.rollout_start!r}; expected 'real' or "
                       "'first_frame'")
    self._validation, self._step = None, None  # Validation clips and step, made once.

  def build(self, optimizer):
    """Creates the model (inside the strategy scope) and returns what to checkpoint."""
    self.model = coarse_video_generator.coarse_video_generator_from_config(
        self.cvg, self.config.resolution, first_frame=load_first_frame(self.config, self.manifest),
        canvas=mean_training_frame(self.config, self.manifest))
    # Create the weights (outside any tf.while_loop).
    self.model(tf.zeros([1, 2, N_BINS, WINDOW_COLUMNS]))
    optimizer.build(self.model.trainable_variables)
    self.optimizer = optimizer
    return {"model": self.model, "optimizer": optimizer}

  def sampling_probability(self, step):
    """Probability of feeding the model its own previous frame at `step` (a scalar tensor)."""
    progress = tf.cast(step, tf.float32) / max(self.config.num_train_steps, 1)
    ramp = (progress - self.cvg.sampling_start) / max(
        self.cvg.sampling_end - self.cvg.sampling_start, 1e-6)
    return self.cvg.sampling_max_prob * tf.clip_by_value(ramp, 0.0, 1.0)

  def _crop(self, batch, random):
    """A random run of `cvg.rollout_frames` consecutive frames of the batch's windows."""
    frames, audio = batch["frames"], batch["audio"]
    length, total = self.cvg.rollout_frames, frames.shape[1]
    if not length or total is None or length >= total:
      return frames, audio
    start = random.integer("cvg/crop", 0, total - length + 1)
    return frames[:, start:start + length], audio[:, start:start + length]

  def compute_losses(self, batch, global_batch_size, random, feed_own_probability=0.0):
    """Per-replica losses, scaled so that their sum over replicas is the global mean.

    Args:
      batch: dict with frames uint8 [B, T, R, R, 3] and audio float [B, T, 84, 87].
      global_batch_size: the global batch size.
      random: the step's `randomness.StepRandom` (crop, z, scheduled sampling draws).
      feed_own_probability: scheduled sampling probability (scalar).

    Returns:
      (dict of scaled losses, coarse frames float [B, T-1, R, R, 3] for frames 1..T-1).
    """
    frames, audio = self._crop(batch, random)
    frames = tf.cast(frames, tf.float32) / 255.0
    shape = tf.shape(frames)
    batch_size, steps = shape[0], shape[1] - 1
    h, c, _ = self.model.initial_state(batch_size)
    maps, _, _ = self.model.encode_audio(audio, h, c)
    noise = random.normal("cvg/z", batch_size, [steps, self.cvg.z_dim])
    feed_own = random.uniform("cvg/feed_own", batch_size, [steps]) < feed_own_probability
    if self.cvg.rollout_start == "first_frame":
      # As at inference: frames[:, 0] is the target of no step, and the first step sees the
      # stored first frame unless teacher forcing gives it the real one.
      start = self.model.initial_state(batch_size)[2]
    else:
      start = frames[:, 0]
    coarse, _ = self.model.rollout(maps[:, 1:], start, noise,
                                   real_previous=frames[:, :-1], feed_own=feed_own)
    # Eq. (4): L1 between real and coarse frames, averaged over frames and pixels, and an L2
    # term; the config uses L2 alone: L1's optimum is the per-pixel median, which erases
    # anything that moves (an arm present at a pixel less than half the time), L2's is the
    # conditional mean (docs/pipeline.md, the CVG).
    error = frames[:, 1:] - coarse
    l1 = tf.reduce_mean(tf.abs(error), axis=[1, 2, 3, 4])
    l2 = tf.reduce_mean(tf.square(error), axis=[1, 2, 3, 4])
    scale = lambda x: tf.nn.compute_average_loss(x, global_batch_size=global_batch_size)
    total = self.cvg.l1_weight * l1 + self.cvg.l2_weight * l2
    out = {"l1": scale(l1), "l2": scale(l2), "total": scale(total),
           "sampling_prob": scale(tf.fill([batch_size], tf.cast(feed_own_probability, tf.float32)))}
    return out, coarse

  def train_step(self, batch, global_batch_size, random):
    """One optimisation step on a replica's batch; returns its scaled losses."""
    probability = self.sampling_probability(self.optimizer.iterations)
    with tf.GradientTape() as tape:
      out, _ = self.compute_losses(batch, global_batch_size, random, probability)
      loss = precision.scaled(self.optimizer, out["total"])
    precision.apply_gradients(self.optimizer, tape, loss, self.model.trainable_variables)
    return out

  def summary_images(self, batch, frames=4):
    """Real frames (top) over coarse frames (bottom) of the first example.

    The coarse row is an autoregressive rollout from the window's first real frame, as at
    inference.

    Args:
      batch: a (local) batch dict.
      frames: how many frames of the window to show, left to right.

    Returns:
      uint8 [1, 2 R, frames R, 3].
    """
    real = batch["frames"][:1]
    first = tf.cast(real[:, 0], tf.float32) / 255.0
    h, c, _ = self.model.initial_state(1)
    coarse = self.model(batch["audio"][:1, 1:], initial_state=[h, c, first])
    coarse = np.round(coarse.numpy()[0] * 255).astype(np.uint8)
    real = real.numpy()[0, 1:]
    steps = np.linspace(0, len(real) - 1, frames).astype(int)
    return np.concatenate([np.concatenate(list(real[steps]), 1),
                           np.concatenate(list(coarse[steps]), 1)], 0)[None]

  def validation_score(self):
    """Minus the mean PSNR of generated validation frames (lower is better), or None.

    Each validation clip's first `cvg.validation_frames` frames are generated as at
    inference (from the stored first frame, noise seeded by the clip's index).
    """
    if not self.manifest["splits"].get("validation") or not self.cvg.validation_frames:
      return None
    if self._validation is None:
      self._validation = []
      n = int(self.cvg.validation_frames)
      for clip in data.read_clips(self.config.dataset_dir, "validation"):
        windows = data.clip_windows(clip, self.manifest)[:n]
        real = data.resize_frames(clip["frames"][:n], self.config.resolution)
        self._validation.append((windows, real))
      self._step = streaming.coarse_step(self.model)
    psnr = [metrics.frame_scores(
        streaming.generate_coarse(self.model, windows, self.config.eval.chunk_frames,
                               step=self._step, seed=index), real)[0]
            for index, (windows, real) in enumerate(self._validation)]
    return -float(np.mean(np.concatenate(psnr)))
