"""The discriminators of the STU's GAN (paper Sec. III-C, eqs. (5)-(6), and pix2pixHD's).

D(frame, A) scores whether a frame is real *and* goes with the audio window A: it must reject
generated frames and real frames paired with another moment's audio (the paper's "unpaired
audio and video"), so the generator is pushed toward frames that match the sound.

  v = Convs([frame, M])             4x4 stride-2 convs, LeakyReLU: [N, R / 2^L, R / 2^L, C]
  a = Dense(AudioEncoder(A))        tiled over the map (without audio: absent)
  D = Conv3x3(LeakyReLU(Conv3x3([v, a])))   patch logits [N, R / 2^L, R / 2^L, 1]

M is an optional condition (the pose heatmaps the frame was drawn from, pix2pixHD's label
map): with it D judges whether the frame draws *that* pose, not only whether it looks real.
A patch discriminator (pix2pix's): each logit sees a receptive field of a part of the frame,
which keeps it sharp on textures and cheap at any resolution. Every LeakyReLU output is also
returned, for pix2pixHD's feature-matching loss (`losses.feature_matching_loss`).

`MultiScaleDiscriminator` is pix2pixHD's: one such D per scale, on the frame (and condition)
average-pooled to 1/2, 1/4, ..., so the coarsest D sees the whole body's layout and the
finest the texture. The local discriminator of the STU task is an `AudioVideoDiscriminator`
without audio on crops (`apvg_tf/local_crops.py`).
"""

import tensorflow as tf

from apvg_tf.models.keypoint_predictor import KAIMING, MotionEncoder


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class AudioVideoDiscriminator(tf.keras.Model):
  """(frames [N, R, R, 3] in [0, 1], audio [N, 84, 87], condition [N, R, R, C]) -> logits."""

  def __init__(self, *, channels=(32, 64, 128, 128), audio_channels=(64, 128, 128),
               audio_embedding=128, condition_channels=0, **kwargs):
    """Builds the discriminator.

    Args:
      channels: channels of the stride-2 convs over the frame (r = R / 2^len).
      audio_channels: channels of the audio encoder's 1D convs.
      audio_embedding: size of the audio feature tiled over the map; 0: no audio input.
      condition_channels: channels of the condition maps concatenated to the frame (0: none).
    """
    super().__init__(**kwargs)
    self.channels, self.audio_channels = tuple(channels), tuple(audio_channels)
    self.audio_embedding = int(audio_embedding)
    self.condition_channels = int(condition_channels)
    self.convs = [tf.keras.layers.Conv2D(c, 4, strides=2, padding="same",
                                         kernel_initializer=KAIMING, name=f"conv{i}")
                  for i, c in enumerate(self.channels)]
    if self.audio_embedding:
      self.audio_encoder = MotionEncoder(channels=self.audio_channels,
                                         embedding=self.audio_embedding, name="audio_encoder")
    self.joint = tf.keras.layers.Conv2D(self.channels[-1], 3, padding="same",
                                        kernel_initializer=KAIMING, name="joint")
    self.logits = tf.keras.layers.Conv2D(1, 3, padding="same", name="logits")

  def call(self, frames, audio=None, condition=None, return_features=False, training=False):
    """Scores (frame, audio) pairs.

    Args:
      frames: float [N, R, R, 3] in [0, 1].
      audio: float [N, 84, 87] normalised audio windows (ignored without an audio encoder).
      condition: float [N, R, R, condition_channels], with condition_channels > 0.
      return_features: also return the intermediate activations.
      training: unused.

    Returns:
      float32 [N, R / 2^L, R / 2^L, 1] patch logits (high: real and paired); with
      `return_features`, (logits, list of the L + 1 LeakyReLU outputs [N, r_i, r_i, C_i]).

    Raises:
      ValueError: if the condition is missing or given against `condition_channels`.
    """
    del training
    if (condition is None) != (self.condition_channels == 0):
      raise ValueError(f"{self.name}: condition_channels={self.condition_channels}, called "
                       f"{'without' if condition is None else 'with'} a condition")
    x = tf.cast(frames, tf.float32) * 2.0 - 1.0
    if condition is not None:
      x = tf.concat([x, tf.cast(condition, tf.float32)], -1)
    features = []
    for conv in self.convs:
      x = tf.nn.leaky_relu(conv(x), 0.2)
      features.append(x)
    if self.audio_embedding:
      a = self.audio_encoder(tf.cast(audio, tf.float32))
      shape = tf.shape(x)
      a = tf.tile(a[:, None, None, :], [1, shape[1], shape[2], 1])
      x = tf.concat([x, tf.cast(a, x.dtype)], -1)
    x = tf.nn.leaky_relu(self.joint(x), 0.2)
    features.append(x)
    logits = tf.cast(self.logits(x), tf.float32)  # Losses are float32 (mixed precision).
    return (logits, features) if return_features else logits

  def get_config(self):
    return {"channels": self.channels, "audio_channels": self.audio_channels,
            "audio_embedding": self.audio_embedding,
            "condition_channels": self.condition_channels, "name": self.name}


def _halve(x):
  """2 x 2 average pooling: [N, S, S, C] -> [N, S / 2, S / 2, C]."""
  return tf.nn.avg_pool2d(x, 2, 2, "VALID")


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class MultiScaleDiscriminator(tf.keras.Model):
  """pix2pixHD's multi-scale D: `num_scales` AudioVideoDiscriminators at R, R / 2, R / 4, ...

  Scale i sees the frame and the condition average-pooled i times (2 x 2 each); every scale
  hears the same audio window. `scales[0]` on its own is the paper's single D.
  """

  def __init__(self, *, num_scales=1, channels=(32, 64, 128, 128),
               audio_channels=(64, 128, 128), audio_embedding=128, condition_channels=0,
               **kwargs):
    """Builds one discriminator per scale (see AudioVideoDiscriminator for the arguments)."""
    super().__init__(**kwargs)
    self.num_scales = int(num_scales)
    self.channels, self.audio_channels = tuple(channels), tuple(audio_channels)
    self.audio_embedding = int(audio_embedding)
    self.condition_channels = int(condition_channels)
    self.scales = [AudioVideoDiscriminator(
        channels=self.channels, audio_channels=self.audio_channels,
        audio_embedding=self.audio_embedding, condition_channels=self.condition_channels,
        name=f"scale{i}") for i in range(self.num_scales)]

  def call(self, frames, audio=None, condition=None, training=False):
    """Scores a batch at every scale.

    Args:
      frames: float [N, R, R, 3] in [0, 1].
      audio: float [N, 84, 87].
      condition: float [N, R, R, condition_channels] or None.
      training: unused.

    Returns:
      list over scales of (logits float32 [N, r_i, r_i, 1], list of features), where scale i
      has r_i = R / 2^(i + L).
    """
    del training
    out = []
    for i, scale in enumerate(self.scales):
      if i:
        frames = _halve(frames)
        condition = None if condition is None else _halve(condition)
      out.append(scale(frames, audio, condition, return_features=True))
    return out

  def get_config(self):
    return {"num_scales": self.num_scales, "channels": self.channels,
            "audio_channels": self.audio_channels, "audio_embedding": self.audio_embedding,
            "condition_channels": self.condition_channels, "name": self.name}


def frame_discriminator_from_config(stu_config, condition_channels=0):
  """The config stops here: the STU's frame discriminator(s) from `config.stu`.

  Args:
    stu_config: `config.stu` (disc_scales, disc_channels, audio_channels,
      disc_audio_embedding).
    condition_channels: channels of the pose maps it is conditioned on (0: none).
  """
  return MultiScaleDiscriminator(num_scales=stu_config.disc_scales,
                                 channels=stu_config.disc_channels,
                                 audio_channels=stu_config.audio_channels,
                                 audio_embedding=stu_config.disc_audio_embedding,
                                 condition_channels=condition_channels,
                                 name="audio_video_discriminator")


def local_discriminator_from_config(stu_config, condition_channels=0):
  """The local discriminator of the arm and hand crops (no audio: the full frame's D hears it,
  and the crop's pose maps already say what the crop must show)."""
  return AudioVideoDiscriminator(channels=stu_config.local_disc_channels, audio_embedding=0,
                                 condition_channels=condition_channels,
                                 name="local_discriminator")
