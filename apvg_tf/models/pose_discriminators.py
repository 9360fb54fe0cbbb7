"""The two keypoint discriminators of Ren et al.'s motion prior.

  FramePoseDiscriminator      D_f(K_t): is one pose a real pose of the performer?
                              MLP over the 67 x 2 coordinates (centred), LeakyReLU.
  SequencePoseDiscriminator   D_s(K_1..T, A_1..T): is the motion real *and* does it go with
                              the music? 1D convolutions across frames over each frame's
                              pose and its audio (the CQT column at the window's centre, the
                              sound at that frame), patch logits [B, T / 4, 1].
The frame discriminator judges shapes (a bent bow arm, a hand off the neck); the sequence
discriminator judges how poses follow one another and the sound (strokes, timing).
"""

import tensorflow as tf

from apvg_tf import skeleton
from apvg_tf.models.keypoint_predictor import KAIMING


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class FramePoseDiscriminator(tf.keras.Model):
  """Poses [N, P, 2] -> logits [N]."""

  def __init__(self, *, units=(256, 256), **kwargs):
    super().__init__(**kwargs)
    self.units = tuple(int(u) for u in units)
    self.hidden = [tf.keras.layers.Dense(u, kernel_initializer=KAIMING, name=f"dense{i}")
                   for i, u in enumerate(self.units)]
    self.logit = tf.keras.layers.Dense(1, name="logit")

  def call(self, poses, training=False):
    del training
    x = tf.reshape(tf.cast(poses[..., :2], tf.float32) - 0.5, [tf.shape(poses)[0], -1])
    for layer in self.hidden:
      x = tf.nn.leaky_relu(layer(x), 0.2)
    return tf.cast(self.logit(x)[:, 0], tf.float32)

  def get_config(self):
    return {"units": self.units, "name": self.name}


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class SequencePoseDiscriminator(tf.keras.Model):
  """(keypoints [B, T, P, 2], audio windows [B, T, 84, 87]) -> patch logits [B, T / 4, 1]."""

  def __init__(self, *, channels=(128, 128, 128), strides=(1, 2, 2),
               num_keypoints=skeleton.NUM_KEYPOINTS, **kwargs):
    super().__init__(**kwargs)
    self.channels = tuple(int(c) for c in channels)
    self.strides = tuple(int(s) for s in strides)
    self.num_keypoints = int(num_keypoints)
    self.convs = [tf.keras.layers.Conv1D(c, 5, strides=s, padding="same",
                                         kernel_initializer=KAIMING, name=f"conv{i}")
                  for i, (c, s) in enumerate(zip(self.channels, self.strides))]
    self.logits = tf.keras.layers.Conv1D(1, 3, padding="same", name="logits")

  def call(self, keypoints, audio, training=False):
    del training
    shape = tf.shape(keypoints)
    poses = tf.reshape(tf.cast(keypoints[..., :2], tf.float32) - 0.5,
                       [shape[0], shape[1], 2 * self.num_keypoints])
    # The window's centre column: the sound at the frame itself.
    sound = tf.cast(audio[:, :, :, audio.shape[3] // 2], tf.float32)  # [B, T, 84]
    # Velocities too: a 1D conv could difference positions itself, but given them it
    # judges motion from the first layer.
    velocity = tf.concat([tf.zeros_like(poses[:, :1]), poses[:, 1:] - poses[:, :-1]], 1)
    x = tf.concat([poses, 10.0 * velocity, sound], -1)
    for conv in self.convs:
      x = tf.nn.leaky_relu(conv(x), 0.2)
    return tf.cast(self.logits(x), tf.float32)

  def get_config(self):
    return {"channels": self.channels, "strides": self.strides,
            "num_keypoints": self.num_keypoints, "name": self.name}
