"""The sync evaluator: Ren et al.'s cross-modal audio-motion evaluator.

Two encoders map a sequence of T frames into one embedding space, trained contrastively on
the (audio, motion) pairs of a dataset's training split:
  a = normalize(AudioSequenceEncoder(A_1..T))      CNN over every `audio_stride`-th 84x87
                                                    window, 1D convolutions across them
  m = normalize(PoseSequenceEncoder(K_1..T))       TF-GNN over each frame's skeleton, 1D
                                                    convolutions across frames
  loss = InfoNCE over the batch in both directions (`losses.contrastive_loss`)
A motion that goes with its music is closer to that music than to other music: `sync_score`
(apvg_tf/evaluation/sync_eval.py) ranks each test sequence's true audio among N candidates.
"""

import tensorflow as tf

from apvg_tf.models.keypoint_predictor import KAIMING, MotionEncoder
from apvg_tf.models.pose_encoder import PoseSequenceEncoder


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class AudioSequenceEncoder(tf.keras.layers.Layer):
  """Audio windows [B, T, 84, 87] -> embedding [B, E]."""

  def __init__(self, *, channels=(32, 64, 64), window_embedding=128, temporal_channels=128,
               embedding=128, stride=4, **kwargs):
    """Configures the encoder.

    Args:
      channels: channels of the per-window 1D CNN (the KP's motion encoder design).
      window_embedding: size of each window's feature.
      temporal_channels: channels of the two 1D convolutions across windows.
      embedding: size of the sequence embedding.
      stride: every stride-th frame's window is encoded (windows span 0.5 s, so neighbours
        overlap almost entirely).
    """
    super().__init__(**kwargs)
    self.channels, self.window_embedding = tuple(channels), int(window_embedding)
    self.temporal_channels, self.embedding = int(temporal_channels), int(embedding)
    self.stride = int(stride)
    self.window_encoder = MotionEncoder(channels=self.channels, embedding=self.window_embedding,
                                        name="window_encoder")
    self.temporal = [tf.keras.layers.Conv1D(self.temporal_channels, 3, padding="same",
                                            activation="relu", kernel_initializer=KAIMING,
                                            name=f"temporal_{i}") for i in range(2)]
    self.project = tf.keras.layers.Dense(self.embedding, name="project")

  def call(self, audio, training=False):
    del training
    audio = tf.cast(audio, tf.float32)[:, ::self.stride]
    shape = tf.shape(audio)
    x = self.window_encoder(tf.reshape(audio, [-1, audio.shape[2], audio.shape[3]]))
    x = tf.reshape(x, [shape[0], shape[1], self.window_embedding])
    for conv in self.temporal:
      x = conv(x)
    return self.project(tf.reduce_mean(x, 1))

  def get_config(self):
    return {**super().get_config(), "channels": self.channels,
            "window_embedding": self.window_embedding,
            "temporal_channels": self.temporal_channels, "embedding": self.embedding,
            "stride": self.stride}


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class SyncEvaluator(tf.keras.Model):
  """(audio [B, T, 84, 87], keypoints [B, T, P, 3]) -> unit embeddings ([B, E], [B, E])."""

  def __init__(self, *, embedding=128, audio_channels=(32, 64, 64), audio_stride=4,
               node_units=64, gcn_layers=2, pool_heads=8, temporal_channels=(128, 128, 128),
               temporal_strides=(1, 2, 2), **kwargs):
    """Builds the two encoders (see the module docstring for the arguments' roles)."""
    super().__init__(**kwargs)
    self.embedding = int(embedding)
    self.audio_channels, self.audio_stride = tuple(audio_channels), int(audio_stride)
    self.node_units, self.gcn_layers = int(node_units), int(gcn_layers)
    self.pool_heads = int(pool_heads)
    self.temporal_channels = tuple(temporal_channels)
    self.temporal_strides = tuple(temporal_strides)
    self.audio_encoder = AudioSequenceEncoder(channels=self.audio_channels,
                                              embedding=self.embedding,
                                              stride=self.audio_stride, name="audio_encoder")
    self.motion_encoder = PoseSequenceEncoder(node_units=self.node_units,
                                              gcn_layers=self.gcn_layers,
                                              pool_heads=self.pool_heads,
                                              temporal_channels=self.temporal_channels,
                                              temporal_strides=self.temporal_strides,
                                              embedding=self.embedding, name="motion_encoder")

  def embed_audio(self, audio):
    """[B, T, 84, 87] -> unit vectors [B, E]."""
    return tf.math.l2_normalize(self.audio_encoder(audio), -1)

  def embed_motion(self, keypoints):
    """[B, T, P, 3] -> unit vectors [B, E]."""
    return tf.math.l2_normalize(self.motion_encoder(keypoints)[0], -1)

  def call(self, audio, keypoints, training=False):
    del training
    return self.embed_audio(audio), self.embed_motion(keypoints)

  def get_config(self):
    return {"embedding": self.embedding, "audio_channels": self.audio_channels,
            "audio_stride": self.audio_stride, "node_units": self.node_units,
            "gcn_layers": self.gcn_layers, "pool_heads": self.pool_heads,
            "temporal_channels": self.temporal_channels,
            "temporal_strides": self.temporal_strides, "name": self.name}


def sync_evaluator_from_config(sync_config):
  """The config stops here: a SyncEvaluator from `config.sync`."""
  return SyncEvaluator(embedding=sync_config.embedding,
                             audio_channels=sync_config.audio_channels,
                             audio_stride=sync_config.audio_stride,
                             node_units=sync_config.node_units,
                             gcn_layers=sync_config.gcn_layers,
                             pool_heads=sync_config.pool_heads,
                             temporal_channels=sync_config.temporal_channels,
                             temporal_strides=sync_config.temporal_strides,
                             name="sync_evaluator")
