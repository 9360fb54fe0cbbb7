"""STU, the Structured Temporal UNet (paper Sec. III-C, Fig. 3).

Per video frame t, with x_t = [V^coarse_t, H^pred_t] (coarse frame and keypoint heatmaps):
  e^0_t .. e^L_t = Encoder(x_t)           a 3x3 conv, then L stride-2 convs; e^L [B, s, s, C_L]
  g_t = ConvGRU(e^L_t, g_{t-1})            inter-frame temporal consistency (the state)
  f_t = KeypointGCN(g_t, K^pred_t)         intra-frame structure: a GCN over the skeleton,
                                           read from and written back to the map
  a_t = Dense(AudioEncoder(A_t))           the audio feature as an s x s map
  d_t = Decoder([f_t, a_t]; skips e^{L-1}_t .. e^0_t)   joins at the first decoder layer
  V^hq_t = sigmoid(d_t + logit(V^coarse_t))

The decoder's last conv starts at zero, so the untrained STU returns the coarse frame and
learns the correction: the residual a refinement network should learn. Without a coarse video
(the paper's "w/o CVG") the base is a learnt canvas (logits of the mean training frame).

Switches for the paper's ablations (Tables I and III): `use_coarse` (w/o CVG), `use_heatmap`
(w/o KHP: no heatmap and no GCN), `use_gru` (w/o CNN-GRU: a plain 3x3 conv in its place, no
state), `use_gcn` (w/o GCN), `use_audio` (the per-frame pose-to-image baseline has none).
With `use_gru=False` and `use_gcn=False` it is a plain UNet (the paper's "w/o STU").

Frames are processed in parallel through the encoder, GCN and decoder ([B T] images), and
sequentially only through the ConvGRU at the s x s bottleneck, so a chunk of T frames costs
one batched pass. The state (the ConvGRU's g) is returned for streaming.
"""

import numpy as np
import tensorflow as tf

from apvg_tf.audio import N_BINS, WINDOW_COLUMNS
from apvg_tf.errors import InputError
from apvg_tf.models.coarse_video_generator import _logit  # pylint: disable=protected-access
from apvg_tf.models.conv_gru import ConvGRU
from apvg_tf.models.gcn_block import KeypointGCN
from apvg_tf.models.keypoint_predictor import KAIMING, MotionEncoder


def _flat(x):
  """[B, T, ...] -> [B T, ...]."""
  return tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))


def _unflat(x, batch, steps):
  """[B T, ...] -> [B, T, ...]."""
  return tf.reshape(x, tf.concat([[batch, steps], tf.shape(x)[1:]], 0))


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class StructuredTemporalUNet(tf.keras.Model):
  """Coarse frames, heatmaps, keypoints and audio to frames: [B, T, R, R, 3] out.

  Inputs (a dict; entries a switched-off branch does not use may be absent):
    coarse: float [B, T, R, R, 3] in [0, 1], the CVG's frames.
    heatmaps: float [B, T, R, R, heatmap_channels], the DLT's heatmaps of K^pred.
    keypoints: float [B, T, P, 2] (or [.., 3] with confidence), K^pred in [0, 1].
    audio: float [B, T, 84, 87], normalised audio windows.
  State: g, float [B, s, s, gru_filters] (zeros when `use_gru` is False).
  """

  def __init__(self, *, resolution=128, heatmap_channels=1, canvas=None,
               encoder_channels=(32, 64, 128, 128), gru_filters=128, gru_kernel=3,
               gcn_layers=2, gcn_output_initializer="glorot_uniform",
               audio_channels=(64, 128, 128), audio_embedding=256, audio_map_channels=32,
               use_coarse=True, use_heatmap=True, use_gru=True, use_gcn=True, use_audio=True,
               **kwargs):
    """Builds the STU.

    Args:
      resolution: R, the side of the frames.
      heatmap_channels: channels of the heatmaps (1, or 3 with per-part heatmaps).
      canvas: float [R, R, 3] in [0, 1] (or uint8): the base without a coarse video, e.g. the
        mean training frame. Default mid-grey.
      encoder_channels: channels of the full-resolution conv and of each stride-2 conv, so
        s = R / 2^(len - 1).
      gru_filters: channels of the ConvGRU state.
      gru_kernel: ConvGRU kernel size.
      gcn_layers: GCN layers of the structured block.
      gcn_output_initializer: initializer of its last layer's kernel; "zeros" starts the
        block as the identity, as the output conv starts the STU (gcn_block.py).
      audio_channels: channels of the audio encoder's 1D convs.
      audio_embedding: size of its output.
      audio_map_channels: the audio feature becomes an s x s x this map.
      use_coarse, use_heatmap, use_gru, use_gcn, use_audio: ablation switches (see the
        module docstring).

    Raises:
      InputError: if the sizes do not fit, or every input is switched off.
    """
    # autocast=False: the coarse frames stay float32 for the output's base (mixed precision);
    # the sublayers cast their own inputs.
    super().__init__(autocast=False, **kwargs)
    self.resolution, self.heatmap_channels = int(resolution), int(heatmap_channels)
    self.encoder_channels = tuple(int(c) for c in encoder_channels)
    self.gru_filters, self.gru_kernel = int(gru_filters), int(gru_kernel)
    self.gcn_layers = int(gcn_layers)
    self.gcn_output_initializer = gcn_output_initializer
    self.audio_channels, self.audio_embedding = tuple(audio_channels), int(audio_embedding)
    self.audio_map_channels = int(audio_map_channels)
    self.use_coarse, self.use_heatmap = bool(use_coarse), bool(use_heatmap)
    self.use_gru, self.use_gcn = bool(use_gru), bool(use_gcn) and bool(use_heatmap)
    self.use_audio = bool(use_audio)
    levels = len(self.encoder_channels) - 1
    self.map_size = self.resolution // 2**levels
    if levels < 1 or self.map_size * 2**levels != self.resolution:
      raise InputError(f"STU: resolution {self.resolution} is not divisible by 2^{levels} "
                       f"(stu.encoder_channels has {levels + 1} entries)")
    if not (self.use_coarse or self.use_heatmap):
      raise InputError("STU: with neither the coarse video nor the heatmaps it has no image "
                       "input; keep stu.use_coarse or stu.use_heatmap")
    shape = (self.resolution, self.resolution, 3)
    canvas = np.full(shape, 0.5, np.float32) if canvas is None else np.asarray(canvas)
    if canvas.shape != shape:
      raise InputError(f"STU canvas has shape {canvas.shape}, expected {shape}")
    canvas = canvas / 255.0 if canvas.dtype == np.uint8 else canvas
    self.canvas = self.add_weight(name="canvas", shape=shape, trainable=self.use_coarse is False,
                                  initializer=tf.keras.initializers.Constant(_logit(canvas)),
                                  experimental_autocast=False)

    conv = lambda c, k, s, name, act="relu": tf.keras.layers.Conv2D(
        c, k, strides=s, padding="same", activation=act, kernel_initializer=KAIMING, name=name)
    self.encoder = [conv(self.encoder_channels[0], 3, 1, "enc0")] + [
        conv(c, 4, 2, f"enc{i + 1}") for i, c in enumerate(self.encoder_channels[1:])]
    bottleneck = self.gru_filters if self.use_gru else self.encoder_channels[-1]
    if self.use_gru:
      self.gru = ConvGRU(filters=self.gru_filters, kernel_size=self.gru_kernel, name="conv_gru")
    else:
      self.no_gru = conv(bottleneck, self.gru_kernel, 1, "no_gru")
    if self.use_gcn:
      self.gcn = KeypointGCN(num_layers=self.gcn_layers,
                             output_initializer=self.gcn_output_initializer,
                             name="keypoint_gcn")
    if self.use_audio:
      self.audio_encoder = MotionEncoder(channels=self.audio_channels,
                                         embedding=self.audio_embedding, name="audio_encoder")
      self.audio_map = tf.keras.layers.Dense(self.map_size**2 * self.audio_map_channels,
                                             activation="relu", kernel_initializer=KAIMING,
                                             name="audio_map")
    self.decoder_fuse = conv(self.encoder_channels[-1], 3, 1, "dec_fuse")
    self.decoder_up, self.decoder_convs = [], []
    for i, c in reversed(list(enumerate(self.encoder_channels[:-1]))):
      self.decoder_up.append(tf.keras.layers.Conv2DTranspose(
          c, 4, strides=2, padding="same", activation="relu", kernel_initializer=KAIMING,
          name=f"dec_up{i}"))
      self.decoder_convs.append(conv(c, 3, 1, f"dec{i}"))
    self.out = tf.keras.layers.Conv2D(3, 3, padding="same", kernel_initializer="zeros",
                                      name="out")

  def zero_state(self, batch_size):
    """The ConvGRU state g_0: zeros [B, s, s, gru_filters]."""
    return tf.zeros([batch_size, self.map_size, self.map_size, self.gru_filters])

  def call(self, inputs, initial_state=None, return_state=False, training=False, valid=None):
    """Generates frames.

    Args:
      inputs: dict (see the class docstring).
      initial_state: optional g from a previous chunk (default zeros).
      return_state: also return the new state.
      training: unused (no dropout or batch norm), kept for the Keras signature.
      valid: optional bool [B, T]: frames that update the ConvGRU state (the others are
        drawn but leave g as it was; see `ConvGRU.call`).

    Returns:
      float [B, T, R, R, 3] in [0, 1]; with `return_state`, (frames, g).
    """
    del training
    first = inputs["coarse"] if self.use_coarse else inputs["heatmaps"]
    shape = tf.shape(first)
    batch, steps = shape[0], shape[1]
    images = []
    if self.use_coarse:
      coarse = _flat(tf.cast(inputs["coarse"], tf.float32))
      images.append(coarse)
    if self.use_heatmap:
      images.append(_flat(tf.cast(inputs["heatmaps"], tf.float32)))
    x = tf.concat(images, -1) if len(images) > 1 else images[0]
    x.set_shape([None, self.resolution, self.resolution, None])
    skips = []
    for layer in self.encoder:
      x = layer(x)
      skips.append(x)
    state = self.zero_state(batch) if initial_state is None else initial_state
    if self.use_gru:
      # The state is float32 outside, the compute dtype inside (float16, mixed precision).
      sequence, state = self.gru(_unflat(x, batch, steps),
                                 initial_state=tf.cast(state, x.dtype), valid=valid)
      x = _flat(sequence)
      state = tf.cast(state, tf.float32)
    else:
      x = self.no_gru(x)
    x.set_shape([None, self.map_size, self.map_size, x.shape[-1]])
    if self.use_gcn:
      keypoints = _flat(tf.cast(inputs["keypoints"], tf.float32))
      confidence = keypoints[..., 2] if keypoints.shape[-1] == 3 else None
      x = self.gcn(x, keypoints[..., :2], confidence)
    if self.use_audio:
      audio = _flat(tf.cast(inputs["audio"], tf.float32))
      audio.set_shape([None, N_BINS, WINDOW_COLUMNS])
      a = self.audio_map(self.audio_encoder(audio))
      x = tf.concat([x, tf.reshape(tf.cast(a, x.dtype), [-1, self.map_size, self.map_size,
                                                         self.audio_map_channels])], -1)
    x = self.decoder_fuse(x)
    for up, conv, skip in zip(self.decoder_up, self.decoder_convs, reversed(skips[:-1])):
      x = conv(tf.concat([up(x), skip], -1))
    base = _logit_tensor(coarse) if self.use_coarse else self.canvas[None]
    frames = _unflat(tf.sigmoid(tf.cast(self.out(x), tf.float32) + base), batch, steps)
    return (frames, state) if return_state else frames

  def get_config(self):
    return {"resolution": self.resolution, "heatmap_channels": self.heatmap_channels,
            "canvas": tf.sigmoid(self.canvas).numpy().tolist(),
            "encoder_channels": self.encoder_channels, "gru_filters": self.gru_filters,
            "gru_kernel": self.gru_kernel, "gcn_layers": self.gcn_layers,
            "gcn_output_initializer": self.gcn_output_initializer,
            "audio_channels": self.audio_channels, "audio_embedding": self.audio_embedding,
            "audio_map_channels": self.audio_map_channels, "use_coarse": self.use_coarse,
            "use_heatmap": self.use_heatmap, "use_gru": self.use_gru, "use_gcn": self.use_gcn,
            "use_audio": self.use_audio, "name": self.name}


def _logit_tensor(frames, eps=1.0 / 255):
  frames = tf.clip_by_value(frames, eps, 1.0 - eps)
  return tf.math.log(frames / (1.0 - frames))


def structured_temporal_unet_from_config(stu_config, resolution, heatmap_channels, canvas=None):
  """The config stops here: a StructuredTemporalUNet from `config.stu`."""
  return StructuredTemporalUNet(
      resolution=resolution, heatmap_channels=heatmap_channels, canvas=canvas,
      encoder_channels=stu_config.encoder_channels, gru_filters=stu_config.gru_filters,
      gru_kernel=stu_config.gru_kernel, gcn_layers=stu_config.gcn_layers,
      gcn_output_initializer=stu_config.gcn_output_initializer,
      audio_channels=stu_config.audio_channels, audio_embedding=stu_config.audio_embedding,
      audio_map_channels=stu_config.audio_map_channels, use_coarse=stu_config.use_coarse,
      use_heatmap=stu_config.use_heatmap, use_gru=stu_config.use_gru,
      use_gcn=stu_config.use_gcn, use_audio=stu_config.use_audio,
      name="structured_temporal_unet")
