"""The audio-video discriminator of the STU's GAN (paper Sec. III-C, eqs. (5)-(6)).

D(frame, A) scores whether a frame is real *and* goes with the audio window A: it must reject
generated frames and real frames paired with another moment's audio (the paper's "unpaired
audio and video"), so the generator is pushed toward frames that match the sound.

  v = Convs(frame)                  4x4 stride-2 convs, LeakyReLU: [N, R / 2^L, R / 2^L, C]
  a = Dense(AudioEncoder(A))        tiled over the map
  D = Conv3x3(LeakyReLU(Conv3x3([v, a])))   patch logits [N, R / 2^L, R / 2^L, 1]

A patch discriminator (pix2pix's): each logit sees a receptive field of a part of the frame,
which keeps it sharp on textures and cheap at any resolution.
"""

import tensorflow as tf

from apvg_tf.models.keypoint_predictor import KAIMING, MotionEncoder


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class AudioVideoDiscriminator(tf.keras.Model):
  """(frames [N, R, R, 3] in [0, 1], audio windows [N, 84, 87]) -> logits [N, r, r, 1]."""

  def __init__(self, *, channels=(32, 64, 128, 128), audio_channels=(64, 128, 128),
               audio_embedding=128, **kwargs):
    """Builds the discriminator.

    Args:
      channels: channels of the stride-2 convs over the frame (r = R / 2^len).
      audio_channels: channels of the audio encoder's 1D convs.
      audio_embedding: size of the audio feature tiled over the map.
    """
    super().__init__(**kwargs)
    self.channels, self.audio_channels = tuple(channels), tuple(audio_channels)
    self.audio_embedding = int(audio_embedding)
    self.convs = [tf.keras.layers.Conv2D(c, 4, strides=2, padding="same",
                                         kernel_initializer=KAIMING, name=f"conv{i}")
                  for i, c in enumerate(self.channels)]
    self.audio_encoder = MotionEncoder(channels=self.audio_channels,
                                       embedding=self.audio_embedding, name="audio_encoder")
    self.joint = tf.keras.layers.Conv2D(self.channels[-1], 3, padding="same",
                                        kernel_initializer=KAIMING, name="joint")
    self.logits = tf.keras.layers.Conv2D(1, 3, padding="same", name="logits")

  def call(self, frames, audio, training=False):
    """Scores (frame, audio) pairs.

    Args:
      frames: float [N, R, R, 3] in [0, 1].
      audio: float [N, 84, 87] normalised audio windows.
      training: unused.

    Returns:
      float [N, R / 2^L, R / 2^L, 1] patch logits (high: real and paired).
    """
    del training
    x = tf.cast(frames, tf.float32) * 2.0 - 1.0
    for conv in self.convs:
      x = tf.nn.leaky_relu(conv(x), 0.2)
    a = self.audio_encoder(tf.cast(audio, tf.float32))
    shape = tf.shape(x)
    a = tf.tile(a[:, None, None, :], [1, shape[1], shape[2], 1])
    x = tf.nn.leaky_relu(self.joint(tf.concat([x, a], -1)), 0.2)
    return tf.cast(self.logits(x), tf.float32)  # Losses are float32 (mixed precision).

  def get_config(self):
    return {"channels": self.channels, "audio_channels": self.audio_channels,
            "audio_embedding": self.audio_embedding, "name": self.name}


def discriminator_from_config(stu_config):
  """The config stops here: an AudioVideoDiscriminator from `config.stu`."""
  return AudioVideoDiscriminator(channels=stu_config.disc_channels,
                                 audio_channels=stu_config.audio_channels,
                                 audio_embedding=stu_config.disc_audio_embedding,
                                 name="audio_video_discriminator")
