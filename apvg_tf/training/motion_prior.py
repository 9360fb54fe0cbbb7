"""The KP's motion prior from Ren et al.: pose perceptual loss and two discriminators.

Options of the KHP stage (`config.khp`), each off at weight 0:
  pose_perceptual_weight   sum over the motion encoder's layers k of mean |f^k(K^pred) -
                           f^k(K^real)|, f the frozen motion encoder of the trained
                           sync evaluator (`config.sync.evaluator_workdir`; Ren et
                           al.'s pretrained graph network). Compares motions by the features
                           in which motion is matched to music, not point by point.
  adversarial_weight       the generator terms of a frame discriminator D_f (single poses)
                           and a sequence discriminator D_s (pose sequence with its audio),
                           `adversarial_loss` bce | lsgan | hinge; D_s also rejects real
                           motion with another window's audio (as the STU's discriminator).
The predicted keypoints take the real keypoints' confidences (and, in D's real inputs, a
missing real point takes the predicted one), so missing detections count on neither side.
"""

import tensorflow as tf

from apvg_tf import losses
from apvg_tf.audio import N_BINS, WINDOW_COLUMNS
from apvg_tf.errors import InputError
from apvg_tf.models import pose_discriminators
from apvg_tf.skeleton import NUM_KEYPOINTS
from apvg_tf.training import precision


def _frames(keypoints):
  """[B, T, P, 2] -> [B T, P, 2]."""
  return tf.reshape(keypoints, [-1, keypoints.shape[2], keypoints.shape[3]])


class MotionPrior:
  """Builds and computes the motion prior's losses for a KHPTask."""

  def __init__(self, config, motion_encoder=None):
    """Args: config (the run's), motion_encoder (the trained sync evaluator's motion
    encoder, frozen; needed when `khp.pose_perceptual_weight` > 0)."""
    self.config = config
    self.khp = config.khp
    self.perceptual = self.khp.pose_perceptual_weight > 0
    self.adversarial = self.khp.adversarial_weight > 0
    self.encoder = motion_encoder  # Frozen: not in the KP's variables.
    self.frame_d = self.sequence_d = self.d_optimizer = None

  def build(self, optimizer):
    """Creates its networks; returns what to checkpoint with the KP.

    Without the motion encoder (a KP restored for evaluation or export) the pose
    perceptual term cannot be computed; `generator_losses` then refuses to run.
    """
    items = {}
    if self.adversarial:
      self.frame_d = pose_discriminators.FramePoseDiscriminator(name="frame_discriminator")
      self.sequence_d = pose_discriminators.SequencePoseDiscriminator(
          name="sequence_discriminator")
      self.frame_d(tf.zeros([1, NUM_KEYPOINTS, 2]))
      self.sequence_d(tf.zeros([1, 8, NUM_KEYPOINTS, 2]), tf.zeros([1, 8, N_BINS, WINDOW_COLUMNS]))
      self.d_optimizer = precision.wrap(tf.keras.optimizers.Adam(optimizer.learning_rate),
                                        self.config.mixed_precision)
      self.d_optimizer.build(self.discriminator_variables)
      items = {"frame_discriminator": self.frame_d,
               "sequence_discriminator": self.sequence_d, "d_optimizer": self.d_optimizer}
    return items

  @property
  def discriminator_variables(self):
    return self.frame_d.trainable_variables + self.sequence_d.trainable_variables

  def generator_losses(self, pred, keypoints, audio):
    """Per-example generator terms, unweighted.

    Args:
      pred: float [B, T, P, 2] predicted keypoints.
      keypoints: float [B, T, P, 3] real keypoints with confidences.
      audio: float [B, T, 84, 87] audio windows.

    Returns:
      dict: "pose_perceptual" and/or "adversarial", each float [B].
    """
    out = {}
    if self.perceptual:
      if self.encoder is None:
        raise InputError("the pose perceptual loss needs the sync evaluator's motion encoder "
                         "(stages.make_task(..., for_training=True) restores it)")
      fake = tf.concat([pred, keypoints[..., 2:]], -1)
      _, fake_features = self.encoder(fake)
      _, real_features = self.encoder(keypoints)
      out["pose_perceptual"] = tf.add_n([
          tf.reduce_mean(tf.abs(f - tf.stop_gradient(r)), axis=[1, 2])
          for f, r in zip(fake_features, real_features)])
    if self.adversarial:
      kind = self.khp.adversarial_loss
      batch, steps = tf.shape(pred)[0], tf.shape(pred)[1]
      frame_logits = tf.reshape(self.frame_d(_frames(pred)),
                                [batch, steps])
      out["adversarial"] = (losses.generator_adversarial_loss(frame_logits, kind) +
                            losses.generator_adversarial_loss(self.sequence_d(pred, audio),
                                                              kind))
    return out

  def discriminator_loss(self, pred, keypoints, audio):
    """Per-example loss of both discriminators (eq. (6)'s form): float [B]."""
    kind = self.khp.adversarial_loss
    pred = tf.stop_gradient(pred)
    real = tf.where(keypoints[..., 2:] > 0, keypoints[..., :2], pred)
    batch, steps = tf.shape(pred)[0], tf.shape(pred)[1]
    frame = lambda k: tf.reshape(self.frame_d(_frames(k)), [batch, steps])
    fake_frames = frame(pred)
    frame_loss = losses.discriminator_adversarial_loss(frame(real), fake_frames, fake_frames,
                                                       kind)
    sequence_loss = losses.discriminator_adversarial_loss(
        self.sequence_d(real, audio), self.sequence_d(pred, audio),
        self.sequence_d(real, losses.unpaired_audio(audio)), kind)
    return frame_loss + sequence_loss
