"""the sync evaluator as a training task (`--config.stage=sync`).

Trained once per dataset, on its training split only, in a work directory of its own; the
KHP's evaluation (`sync_score`, `motion_fd`) and the pose perceptual loss read it from
`config.sync.evaluator_workdir`. Each step: a batch of `sync.window_frames`-frame windows,
each cut into consecutive `sync.sequence_frames`-frame sequences, their audio and keypoints
embedded, and the symmetric InfoNCE loss over all the batch's pairs (on several replicas,
each replica's pairs are one another's negatives).
"""

import numpy as np
import tensorflow as tf

from apvg_tf import data, losses, metrics
from apvg_tf.audio import N_BINS, WINDOW_COLUMNS
from apvg_tf.errors import InputError
from apvg_tf.models import sync_evaluator
from apvg_tf.skeleton import NUM_KEYPOINTS
from apvg_tf.training import precision
from apvg_tf.training.task import Task


class SyncTask(Task):
  """Contrastive training of the audio and motion encoders (Ren et al.'s evaluator)."""

  name = "sync"
  fields = ("audio", "keypoints")

  def __init__(self, config, manifest, frozen=None):
    super().__init__(config, manifest, frozen)  # Trains from the data alone.
    self._validation = None
    sync = config.sync
    if sync.window_frames % sync.sequence_frames:
      raise InputError(f"sync.window_frames ({sync.window_frames}) must be a multiple of "
                       f"sync.sequence_frames ({sync.sequence_frames})")

  def build(self, optimizer):
    """Creates the evaluator (inside the strategy scope) and returns what to checkpoint."""
    self.model = sync_evaluator.sync_evaluator_from_config(self.config.sync)
    # Create the weights.
    self.model(tf.zeros([1, 8, N_BINS, WINDOW_COLUMNS]), tf.zeros([1, 8, NUM_KEYPOINTS, 3]))
    optimizer.build(self.model.trainable_variables)
    self.optimizer = optimizer
    return {"model": self.model, "optimizer": optimizer}

  def compute_losses(self, batch, global_batch_size):
    """{"contrastive": scaled loss}, and the similarity matrix [N, N] of the N pairs."""
    length = self.config.sync.sequence_frames
    cut = lambda x: tf.reshape(x, [-1, length] + x.shape[2:].as_list())  # [B S, L, ...]
    audio, motion = self.model(cut(batch["audio"]), cut(batch["keypoints"]), training=True)
    loss = losses.contrastive_loss(audio, motion, self.config.sync.temperature)
    # Each window's sequences share its weight: the loss is the mean over all pairs.
    pairs = self.config.sync.window_frames // length
    return ({"contrastive": tf.nn.compute_average_loss(
        loss, global_batch_size=global_batch_size * pairs)},
            tf.matmul(motion, audio, transpose_b=True))

  def train_step(self, batch, global_batch_size, random):
    del random  # No dropout or noise.
    with tf.GradientTape() as tape:
      out, _ = self.compute_losses(batch, global_batch_size)
      loss = precision.scaled(self.optimizer, out["contrastive"])
    precision.apply_gradients(self.optimizer, tape, loss, self.model.trainable_variables)
    return out

  def summary_images(self, batch):
    """The batch's motion x audio cosine matrix (the diagonal should be bright): uint8."""
    _, cos = self.compute_losses(batch, 1)
    image = np.uint8(np.clip((cos.numpy() + 1.0) * 127.5, 0, 255))
    image = np.kron(image, np.ones((8, 8), np.uint8))
    return np.repeat(image[None, ..., None], 3, -1)

  def validation_score(self):
    """1 - accuracy at 1 of the true audio on the validation split (lower is better)."""
    if not self.manifest["splits"].get("validation"):
      return None
    if self._validation is None:
      clips = list(data.read_clips(self.config.dataset_dir, "validation", with_frames=False))
      length = self.config.sync.sequence_frames
      audio = metrics.cut_sequences([data.clip_windows(c, self.manifest) for c in clips],
                                      length)
      motion = metrics.cut_sequences([c["keypoints"] for c in clips], length)
      if len(audio) < 2:
        return None
      sets = metrics.candidate_sets(len(audio), min(self.config.sync.candidates, len(audio)))
      self._validation = audio, motion, sets
    audio, motion, sets = self._validation
    scores = metrics.retrieval_metrics(metrics.embed(self.model.embed_audio, audio),
                                         metrics.embed(self.model.embed_motion, motion), sets)
    return 1.0 - scores["sync_score"]

