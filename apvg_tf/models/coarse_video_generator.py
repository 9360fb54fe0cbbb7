"""CVG, the coarse video generator (paper Sec. III-B, Fig. 2b, eq. (4)).

Per video frame t, from the audio window A_t and the previous coarse frame V_{t-1}:
  audio feature   F^a_t = LSTM(AudioEncoder(A_t), h_{t-1})      AudioEncoder: 1D CNN (KP's)
  image feature   F^v_{t-1} = Convs(VGG_conv1_1..conv3_1(V_{t-1}))   VGG frozen by default
  V_t = sigmoid(canvas + ImageDecoder([Dense(F^a_t) as a map, F^v_{t-1}, z_t]))
with z_t ~ N(0, I) tiled over the bottleneck map. The recurrent state is (h, c, V_{t-1}), so a
long piece streams chunk by chunk; a rollout starts from a first frame stored in the model (a
training frame of the performer, `config.cvg.first_frame`).

Three choices beyond the paper (the first two for a CPU budget):
- VGG sees the previous frame downscaled to `vgg_input_size` (64 for 128x128 video): its five
  conv layers cost 0.46 GMAC at 64x64 against 1.84 GMAC at 128x128, and the previous frame only
  has to tell the decoder where the performer is, not its texture.
- `canvas` is a learnt image in logit space that the decoder output is added to, initialised
  with the mean training frame (the CVG task computes it), and the decoder's last layer
  starts at zero: so the untrained model outputs the mean frame, the static room is learnt as
  one bias per pixel instead of being painted from an 8x8 map, and the decoder spends its
  capacity on what moves.
- VGG's conv3_1 features are multiplied by `vgg_feature_scale` (default 1/25) before the
  trainable convs. On frames in [0, 1] with Caffe preprocessing they have a std of about 25
  (max about 450), against about 0.15 for the audio map they are concatenated with: unscaled,
  the previous frame drowns the audio in the fusion conv, the first Adam steps overshoot,
  and the CVG learns little more than its canvas (measured: a 2 x 16-frame batch of a moving
  square, 150 teacher-forced steps, L2 1.3e-3 unscaled against 4e-5 scaled).
"""

import numpy as np
import tensorflow as tf

from apvg_tf.errors import InputError
from apvg_tf.models import vgg as vgg_lib
from apvg_tf.models.keypoint_predictor import KAIMING, MotionEncoder, run_lstm


def antialiased_resize(frames, size):
  """tf.image.resize(bilinear, antialias=True) to size x size: [N, H, W, C] -> [N, s, s, C].

  For an even integer factor f = H / size (128 -> 64 and 256 -> 64 here) it is computed as
  the same separable triangle filter (width 2f, stride f, renormalised at the borders) with
  a depthwise convolution, equal to tf.image.resize to float rounding: tf.image.resize's
  ScaleAndTranslate op has no ONNX counterpart, a convolution has. Other sizes use
  tf.image.resize.
  """
  height, width = frames.shape[1], frames.shape[2]
  factor = height // size if height and height % size == 0 else 0
  if not factor or factor % 2 or width != height:
    return tf.image.resize(frames, [size, size], method="bilinear", antialias=True)
  taps = 1.0 - np.abs(np.arange(2 * factor) + 0.5 - factor) / factor
  channels = frames.shape[-1]
  kernel = tf.constant(np.outer(taps, taps)[:, :, None, None], frames.dtype)
  pad = [[0, 0], [factor // 2] * 2, [factor // 2] * 2, [0, 0]]
  strides = [1, factor, factor, 1]
  total = tf.nn.depthwise_conv2d(tf.pad(frames, pad), tf.tile(kernel, [1, 1, channels, 1]),
                                 strides, "VALID")
  # The weight that fell inside the frame, as tf.image.resize renormalises at the borders.
  weight = tf.nn.depthwise_conv2d(tf.pad(tf.ones_like(frames[:1, ..., :1]), pad), kernel,
                                  strides, "VALID")
  return total / weight


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class ImageEncoder(tf.keras.layers.Layer):
  """The previous frame to a feature map: [N, R, R, 3] -> [N, s, s, channels[-1]].

  The frame is resized (bilinear, antialiased) to `vgg_input_size`, passed through VGG
  conv1_1..conv3_1 (side / 4, 256 channels), scaled by `feature_scale` to about unit std (see
  the module docstring), then two trainable 3x3 convs with `strides`.
  So s = vgg_input_size / 4 / prod(strides).
  """

  def __init__(self, *, backbone="vgg16_bundled", vgg_weights_path=None, pretrained_vgg=True,
               freeze_vgg=True, vgg_input_size=64, channels=(128, 128), strides=(2, 1),
               feature_scale=1.0 / 25, **kwargs):
    super().__init__(**kwargs)
    if len(channels) != len(strides):
      raise InputError(f"image encoder: {len(channels)} channels for {len(strides)} strides")
    self.backbone, self.vgg_weights_path = backbone, vgg_weights_path
    self.pretrained_vgg, self.freeze_vgg = bool(pretrained_vgg), bool(freeze_vgg)
    self.vgg_input_size = int(vgg_input_size)
    self.channels, self.strides = tuple(channels), tuple(strides)
    self.feature_scale = float(feature_scale)
    self.vgg = vgg_lib.VGGFeatures(backbone=backbone, output_layers=vgg_lib.FIRST_FIVE[-1:],
                                   weights_path=vgg_weights_path, pretrained=pretrained_vgg,
                                   trainable=not self.freeze_vgg, name="vgg")
    self.convs = [tf.keras.layers.Conv2D(c, 3, strides=s, padding="same", activation="relu",
                                         kernel_initializer=KAIMING, name=f"conv{i}")
                  for i, (c, s) in enumerate(zip(self.channels, self.strides))]

  @property
  def output_size(self):
    return self.vgg_input_size // 4 // int(np.prod(self.strides))

  def call(self, frames):
    size = self.vgg_input_size
    if frames.shape[1] != size or frames.shape[2] != size:
      frames = antialiased_resize(frames, size)
    x = self.vgg(frames)[vgg_lib.FIRST_FIVE[-1]]
    if self.freeze_vgg:
      # Nothing upstream is trained through a frozen VGG: skip its backward pass.
      x = tf.stop_gradient(x)
    x = x * self.feature_scale
    for conv in self.convs:
      x = conv(x)
    return x

  def get_config(self):
    return {**super().get_config(), "backbone": self.backbone,
            "vgg_weights_path": self.vgg_weights_path, "pretrained_vgg": self.pretrained_vgg,
            "freeze_vgg": self.freeze_vgg, "vgg_input_size": self.vgg_input_size,
            "channels": self.channels, "strides": self.strides,
            "feature_scale": self.feature_scale}


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class ImageDecoder(tf.keras.layers.Layer):
  """Bottleneck map to frame logits: [N, s, s, C] -> [N, s * 2^(len(channels) + 1), ..., 3].

  A 3x3 fusion conv to channels[0]; per entry of `channels` a 4x4 transposed conv of stride 2
  (ReLU); a last 4x4 transposed conv of stride 2 to 3 logits, zero-initialised. Transposed
  convs compute at the input side: on 2 CPU cores this decoder trains 3.6x faster than
  nearest upsampling + 3x3 convs at the output side (measured, 128x128).
  """

  def __init__(self, *, channels=(128, 64, 32), **kwargs):
    super().__init__(**kwargs)
    self.channels = tuple(channels)
    self.fuse = tf.keras.layers.Conv2D(self.channels[0], 3, padding="same", activation="relu",
                                       kernel_initializer=KAIMING, name="fuse")
    self.convs = [tf.keras.layers.Conv2DTranspose(c, 4, strides=2, padding="same",
                                                  activation="relu", kernel_initializer=KAIMING,
                                                  name=f"deconv{i}")
                  for i, c in enumerate(self.channels)]
    self.out = tf.keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same",
                                               kernel_initializer="zeros", name="out")

  def call(self, x):
    x = self.fuse(x)
    for conv in self.convs:
      x = conv(x)
    return self.out(x)

  def get_config(self):
    return {**super().get_config(), "channels": self.channels}


def _image(image, shape, what):
  """float32 [R, R, 3] in [0, 1] from a float or uint8 image; InputError on a wrong shape."""
  image = np.asarray(image)
  if image.shape != shape:
    raise InputError(f"{what} has shape {image.shape}, expected {shape}")
  return (image / 255.0 if image.dtype == np.uint8 else image).astype(np.float32)


def _logit(frame, eps=1.0 / 255):
  frame = np.clip(np.asarray(frame, np.float32), eps, 1 - eps)
  return np.log(frame / (1 - frame))


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class CoarseVideoGenerator(tf.keras.Model):
  """Audio windows and a previous frame to coarse frames: [B, T, 84, 87] -> [B, T, R, R, 3].

  State (for streaming and for the recurrence): [h, c, previous_frame] with h, c
  [B, lstm_units] and previous_frame float [B, R, R, 3] in [0, 1].
  """

  def __init__(self, *, resolution=128, first_frame=None, canvas=None, backbone="vgg16_bundled",
               vgg_weights_path=None, pretrained_vgg=True, freeze_vgg=True, vgg_input_size=64,
               vgg_feature_scale=1.0 / 25, image_channels=(128, 128), image_strides=(2, 1),
               audio_channels=(64, 128, 128), audio_embedding=256, lstm_units=256,
               audio_map_channels=32, z_dim=16, decoder_channels=(128, 64, 32), **kwargs):
    """Builds the generator.

    Args:
      resolution: R, the side of the frames.
      first_frame: float [R, R, 3] in [0, 1] (or uint8): where rollouts start, and the
        canvas's initial value; stored in the model (non-trainable) so exports carry it.
        Default mid-grey.
      canvas: float [R, R, 3] in [0, 1] (or uint8), the initial canvas (see the module
        docstring), e.g. the mean training frame. Default: the first frame.
      backbone: VGG backbone (see apvg_tf.models.vgg.BACKBONES).
      vgg_weights_path: override of the VGG weights file.
      pretrained_vgg: load VGG weights (False only for tests and ablations).
      freeze_vgg: keep VGG fixed (the paper's "pretrained" encoder).
      vgg_input_size: side the previous frame is resized to before VGG.
      vgg_feature_scale: VGG's features are multiplied by this (see the module docstring).
      image_channels: channels of the two trainable convs after VGG.
      image_strides: their strides.
      audio_channels: channels of the audio encoder's 1D convs.
      audio_embedding: size of the audio encoder's output.
      lstm_units: LSTM state size.
      audio_map_channels: the LSTM output becomes an s x s x this map (a dense layer).
      z_dim: channels of the noise z, tiled over the s x s map.
      decoder_channels: channels of the decoder's 2x upsamplings before the last one to RGB:
        R = s * 2^(len(decoder_channels) + 1).

    Raises:
      InputError: if the sizes do not fit together, or the VGG weights cannot be loaded.
    """
    super().__init__(**kwargs)
    self.resolution = int(resolution)
    self.backbone, self.vgg_weights_path = backbone, vgg_weights_path
    self.pretrained_vgg, self.freeze_vgg = bool(pretrained_vgg), bool(freeze_vgg)
    self.vgg_input_size = int(vgg_input_size)
    self.vgg_feature_scale = float(vgg_feature_scale)
    self.image_channels, self.image_strides = tuple(image_channels), tuple(image_strides)
    self.audio_channels, self.audio_embedding = tuple(audio_channels), int(audio_embedding)
    self.lstm_units, self.audio_map_channels = int(lstm_units), int(audio_map_channels)
    self.z_dim, self.decoder_channels = int(z_dim), tuple(decoder_channels)
    self.map_size = self.vgg_input_size // 4 // int(np.prod(self.image_strides))
    if (self.vgg_input_size % (4 * int(np.prod(self.image_strides))) or
        self.map_size * 2**(len(self.decoder_channels) + 1) != self.resolution):
      raise InputError(
          f"CVG sizes do not fit: VGG input {self.vgg_input_size} / 4 / strides "
          f"{self.image_strides} gives a {self.map_size}x{self.map_size} map, and "
          f"{len(self.decoder_channels) + 1} decoder upsamplings make it "
          f"{self.map_size * 2**(len(self.decoder_channels) + 1)}, not the resolution "
          f"{self.resolution}; change cvg.vgg_input_size, cvg.image_strides or the number of "
          "cvg.decoder_channels")
    shape = (self.resolution, self.resolution, 3)
    first_frame = _image(np.full(shape, 0.5) if first_frame is None else first_frame, shape,
                         "first frame")
    canvas = first_frame if canvas is None else _image(canvas, shape, "canvas")
    self.first_frame = self.add_weight(
        name="first_frame", shape=shape, trainable=False,
        initializer=tf.keras.initializers.Constant(first_frame), experimental_autocast=False)
    self.canvas = self.add_weight(
        name="canvas", shape=shape, trainable=True,
        initializer=tf.keras.initializers.Constant(_logit(canvas)),
        experimental_autocast=False)  # Frames are float32 under mixed precision too.
    self.audio_encoder = MotionEncoder(channels=self.audio_channels,
                                       embedding=self.audio_embedding, name="audio_encoder")
    self.lstm = tf.keras.layers.LSTM(self.lstm_units, return_sequences=True, return_state=True,
                                     name="lstm")
    self.audio_map = tf.keras.layers.Dense(self.map_size**2 * self.audio_map_channels,
                                           activation="relu", kernel_initializer=KAIMING,
                                           name="audio_map")
    self.image_encoder = ImageEncoder(
        backbone=backbone, vgg_weights_path=vgg_weights_path, pretrained_vgg=pretrained_vgg,
        freeze_vgg=freeze_vgg, vgg_input_size=self.vgg_input_size,
        feature_scale=self.vgg_feature_scale, channels=self.image_channels,
        strides=self.image_strides, name="image_encoder")
    self.image_decoder = ImageDecoder(channels=self.decoder_channels, name="image_decoder")
    # Export switch: Python loops over a static T instead of while loops (the ONNX step).
    self.unroll = False

  # ------------------------------------------------------------------------------ state

  def initial_state(self, batch_size, first_frame=None):
    """[h, c, previous_frame]: zero LSTM state and the stored (or given) first frame."""
    frame = self.first_frame if first_frame is None else tf.convert_to_tensor(first_frame)
    frame = tf.broadcast_to(tf.cast(frame, tf.float32), [batch_size] + [self.resolution] * 2 + [3])
    return [tf.zeros([batch_size, self.lstm_units]), tf.zeros([batch_size, self.lstm_units]),
            frame]

  # ---------------------------------------------------------------------------- pieces

  def encode_audio(self, audio, h, c):
    """Audio windows [B, T, 84, 87] -> audio maps [B, T, s, s, Ca] and the new (h, c)."""
    shape = tf.shape(audio)
    batch, steps = shape[0], shape[1]
    features = self.audio_encoder(tf.reshape(audio, [-1, audio.shape[2], audio.shape[3]]))
    features = tf.reshape(features, [batch, steps, self.audio_embedding])
    hidden, h, c = run_lstm(self.lstm, features, [h, c], self.unroll)
    maps = tf.reshape(self.audio_map(hidden),
                      [batch, steps, self.map_size, self.map_size, self.audio_map_channels])
    return maps, h, c

  def decode_frame(self, audio_map, previous_frame, noise):
    """One frame: audio map [N, s, s, Ca], previous frame [N, R, R, 3], z [N, z_dim] -> frame.

    Returns:
      float [N, R, R, 3] in [0, 1].
    """
    image = self.image_encoder(previous_frame)
    z = tf.tile(tf.cast(noise, image.dtype)[:, None, None, :],
                [1, self.map_size, self.map_size, 1])
    logits = self.image_decoder(tf.concat([tf.cast(audio_map, image.dtype), image, z], -1))
    return tf.sigmoid(tf.cast(logits, tf.float32) + self.canvas)

  def decode_parallel(self, audio_maps, previous_frames, noise):
    """Frames from given previous frames (teacher forcing), all time steps at once.

    Args:
      audio_maps: [B, T, s, s, Ca].
      previous_frames: [B, T, R, R, 3], the frame before each target.
      noise: [B, T, z_dim].

    Returns:
      float [B, T, R, R, 3].
    """
    shape = tf.shape(audio_maps)
    flat = lambda x: tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))
    frames = self.decode_frame(flat(audio_maps), flat(previous_frames), flat(noise))
    return tf.reshape(frames, tf.concat([shape[:2], tf.shape(frames)[1:]], 0))

  def rollout(self, audio_maps, previous_frame, noise, real_previous=None, feed_own=None):
    """Autoregressive decoding over time (a tf.while_loop, so it is one graph node for any T).

    Args:
      audio_maps: [B, T, s, s, Ca].
      previous_frame: [B, R, R, 3], the frame before the first step.
      noise: [B, T, z_dim].
      real_previous: optional [B, T, R, R, 3] real frames before each step (training).
      feed_own: optional bool [B, T]: where True (or where `real_previous` is None) the step
        gets the model's own previous output, through tf.stop_gradient (scheduled sampling:
        each step's gradient stays within the step, so memory and backward cost are those of
        teacher forcing); elsewhere the real frame.

    Returns:
      frames [B, T, R, R, 3] and the last frame [B, R, R, 3].
    """
    steps = tf.shape(audio_maps)[1]
    maps_t = tf.transpose(audio_maps, [1, 0, 2, 3, 4])
    noise_t = tf.transpose(noise, [1, 0, 2])
    if real_previous is not None:
      real_t = tf.transpose(tf.cast(real_previous, tf.float32), [1, 0, 2, 3, 4])
      own_t = tf.transpose(feed_own, [1, 0])

    def body(t, previous, outputs):
      if real_previous is not None:
        previous = tf.where(own_t[t][:, None, None, None], previous, real_t[t])
      frame = self.decode_frame(maps_t[t], previous, noise_t[t])
      return t + 1, tf.stop_gradient(frame), outputs.write(t, frame)

    if self.unroll and real_previous is None:
      frames, previous = [], tf.cast(previous_frame, tf.float32)
      for t in range(audio_maps.shape[1]):
        previous = self.decode_frame(maps_t[t], previous, noise_t[t])
        frames.append(previous)
      return tf.stack(frames, 1), previous

    outputs = tf.TensorArray(tf.float32, size=steps,
                             element_shape=[None, self.resolution, self.resolution, 3])
    _, last, outputs = tf.while_loop(
        lambda t, *_: t < steps, body,
        (tf.constant(0), tf.cast(previous_frame, tf.float32), outputs))
    return tf.transpose(outputs.stack(), [1, 0, 2, 3, 4]), last

  # ------------------------------------------------------------------------------ call

  def call(self, audio, initial_state=None, return_state=False, noise=None, training=False):
    """Generates coarse frames autoregressively (the inference mode, streamable).

    Args:
      audio: float [B, T, 84, 87] normalised audio windows.
      initial_state: optional [h, c, previous_frame] from a previous chunk (default: zeros
        and the stored first frame).
      return_state: also return the new state.
      noise: optional z [B, T, z_dim] (default: standard normal).
      training: unused (no dropout or batch norm), kept for the Keras signature.

    Returns:
      float [B, T, R, R, 3] frames in [0, 1]; with `return_state`, (frames, [h, c, frame]).
    """
    del training
    shape = tf.shape(audio)
    if initial_state is None:
      initial_state = self.initial_state(shape[0])
    h, c, previous = initial_state
    if noise is None:
      noise = tf.random.normal([shape[0], shape[1], self.z_dim])
    maps, h, c = self.encode_audio(audio, h, c)
    frames, last = self.rollout(maps, previous, noise)
    return (frames, [h, c, last]) if return_state else frames

  def get_config(self):
    return {"resolution": self.resolution, "first_frame": self.first_frame.numpy().tolist(),
            "backbone": self.backbone, "vgg_weights_path": self.vgg_weights_path,
            "pretrained_vgg": self.pretrained_vgg, "freeze_vgg": self.freeze_vgg,
            "vgg_input_size": self.vgg_input_size,
            "vgg_feature_scale": self.vgg_feature_scale, "image_channels": self.image_channels,
            "image_strides": self.image_strides, "audio_channels": self.audio_channels,
            "audio_embedding": self.audio_embedding, "lstm_units": self.lstm_units,
            "audio_map_channels": self.audio_map_channels, "z_dim": self.z_dim,
            "decoder_channels": self.decoder_channels, "name": self.name}


def coarse_video_generator_from_config(cvg_config, resolution, first_frame=None, canvas=None):
  """The config stops here: a CoarseVideoGenerator from `config.cvg` and the resolution."""
  return CoarseVideoGenerator(
      resolution=resolution, first_frame=first_frame, canvas=canvas,
      backbone=cvg_config.backbone,
      vgg_weights_path=cvg_config.vgg_weights or None, freeze_vgg=cvg_config.freeze_vgg,
      vgg_input_size=cvg_config.vgg_input_size,
      vgg_feature_scale=cvg_config.vgg_feature_scale,
      image_channels=cvg_config.image_channels,
      image_strides=cvg_config.image_strides, audio_channels=cvg_config.audio_channels,
      audio_embedding=cvg_config.audio_embedding, lstm_units=cvg_config.lstm_units,
      audio_map_channels=cvg_config.audio_map_channels, z_dim=cvg_config.z_dim,
      decoder_channels=cvg_config.decoder_channels, name="coarse_video_generator")
