"""KP, the keypoint predictor of the KHP stage (paper Sec. III-A, Fig. 2a).

Per video frame t:
  motion feature     m_t = MotionEncoder(A_t)              1D CNN over the 84 x 87 window
  instrument feature p   = Dense(mean training pose)        the same for every frame
  h_t = LSTM([m_t, p], h_{t-1});   K_t = mean_pose + Dense(h_t)    ([67, 2] coordinates)
Dropout (training only) on m_t and h_t regularises: the motion of a performer is only partly
determined by the sound (which way the bow goes), and without it the model memorises the
training pieces' bowing instead of predicting its conditional mean.
With `mean_pose_condition=False` (the paper's baseline) p is absent and K_t = Dense(h_t).
With `arm_units` > 0, the points of `arm_points` (the arm that follows the pitch) come from a
second path of their own (encoder, instrument feature, LSTM, head) which can hear other
music in training: the unshifted windows when the rest learns from transposed ones. The two
states are concatenated, so callers see one [h, c].
The LSTM state can be passed in and returned, so long music streams chunk by chunk.
"""

import numpy as np
import tensorflow as tf

from apvg_tf import skeleton
from apvg_tf.audio import augment

KAIMING = "he_normal"  # The paper's Kaiming initialisation.


def run_lstm(lstm, inputs, initial_state, unroll=False):
  """Runs a Keras LSTM layer: ([B, T, F], [h, c]) -> (outputs [B, T, U], h, c).

  With `unroll`, the layer's cell runs in a Python loop over a static T: the same weights and
  values, but no while loop in the graph, which is how the ONNX export gets a loop-free step.
  The state is float32 outside (chunk loops, exports) whatever the layer computes in
  (float16 under mixed precision).
  """
  h, c = [tf.cast(s, inputs.dtype) for s in initial_state]
  if not unroll:
    outputs, h, c = lstm(inputs, initial_state=[h, c])
  else:
    outputs = []
    for t in range(inputs.shape[1]):
      output, (h, c) = lstm.cell(inputs[:, t], [h, c])
      outputs.append(output)
    outputs = tf.stack(outputs, 1)
  return outputs, tf.cast(h, tf.float32), tf.cast(c, tf.float32)


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class MotionEncoder(tf.keras.layers.Layer):
  """1D CNN over one audio window: [N, 84, 87] (bins, columns) -> [N, embedding].

  Convolves along the 87 time columns with the 84 CQT bins as channels; each conv halves the
  time axis. The result is flattened (not pooled) so the feature keeps where in the window
  an onset happened: the window is centred on the frame, and that position is the timing.
  """

  def __init__(self, *, channels=(64, 128, 128), embedding=256, **kwargs):
    super().__init__(**kwargs)
    self.channels, self.embedding = tuple(channels), int(embedding)
    self.convs = [tf.keras.layers.Conv1D(c, 5, strides=2, padding="same", activation="relu",
                                         kernel_initializer=KAIMING, name=f"conv{i}")
                  for i, c in enumerate(self.channels)]
    self.flatten = tf.keras.layers.Flatten(name="flatten")
    self.dense = tf.keras.layers.Dense(self.embedding, activation="relu",
                                       kernel_initializer=KAIMING, name="dense")

  def call(self, windows):
    x = tf.transpose(windows, [0, 2, 1])  # [N, columns, bins]
    for conv in self.convs:
      x = conv(x)
    return self.dense(self.flatten(x))

  def get_config(self):
    return {**super().get_config(), "channels": self.channels, "embedding": self.embedding}


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class KeypointPredictor(tf.keras.Model):
  """Audio windows to keypoints: [B, T, 84, 87] -> [B, T, 67, 2] in [0, 1] coordinates."""

  def __init__(self, *, mean_pose=None, mean_pose_condition=True, encoder_channels=(64, 128, 128),
               audio_embedding=256, pose_embedding=128, lstm_units=256, dropout=0.0,
               input_noise=0.0, lookahead_frames=0, num_keypoints=skeleton.NUM_KEYPOINTS,
               arm_points=(), arm_units=0, **kwargs):
    """Builds the predictor.

    Args:
      mean_pose: float [P, 2] or [P, 3], the training set's mean pose (the instrument-related
        feature); stored in the model (a non-trainable weight) so exports carry it.
      mean_pose_condition: feed the mean pose and predict offsets from it (the paper's "avg.
        condition"); False gives the paper's baseline.
      encoder_channels: channels of the motion encoder's 1D convolutions.
      audio_embedding: size of the motion feature.
      pose_embedding: size of the instrument feature.
      lstm_units: LSTM state size.
      dropout: dropout rate on the motion feature and the LSTM output during training.
      input_noise: std of Gaussian noise added to the (normalised) audio windows during
        training, so the model cannot recognise a training piece by its exact spectrum.
      lookahead_frames: D >= 0. The output at step t is the pose of frame t - D, so the LSTM
        has heard D frames of music past the pose it draws (see `streaming.predict_keypoints`).
      num_keypoints: P.
      arm_points: indices of the points the arm path predicts (with `arm_units` > 0).
      arm_units: 0, or the arm path's LSTM state size (also its motion feature's size).
    """
    super().__init__(**kwargs)
    self.arm_points, self.arm_units = tuple(int(i) for i in arm_points), int(arm_units)
    if self.arm_units and not self.arm_points:
      raise ValueError("arm_units > 0 needs arm_points: the points the arm path predicts")
    if int(lookahead_frames) < 0:
      raise ValueError(f"lookahead_frames is {lookahead_frames}; it must be 0 or more")
    self.lookahead_frames = int(lookahead_frames)
    self.num_keypoints = int(num_keypoints)
    self.mean_pose_condition = bool(mean_pose_condition)
    self.encoder_channels = tuple(encoder_channels)
    self.audio_embedding, self.pose_embedding = int(audio_embedding), int(pose_embedding)
    self.lstm_units = int(lstm_units)
    self.dropout_rate = float(dropout)
    self.input_noise = float(input_noise)
    init = np.full((self.num_keypoints, 2), 0.5, np.float32) if mean_pose is None else \
        np.asarray(mean_pose, np.float32)[:, :2]
    self.mean_pose = self.add_weight(
        name="mean_pose", shape=(self.num_keypoints, 2), trainable=False,
        initializer=tf.keras.initializers.Constant(init),
        experimental_autocast=False)  # float32 even under mixed precision.
    self.motion_encoder = MotionEncoder(channels=self.encoder_channels,
                                        embedding=self.audio_embedding, name="motion_encoder")
    self.pose_dense = tf.keras.layers.Dense(self.pose_embedding, activation="relu",
                                            kernel_initializer=KAIMING, name="pose_dense")
    self.noise = tf.keras.layers.GaussianNoise(self.input_noise, name="input_noise")
    self.feature_dropout = tf.keras.layers.Dropout(self.dropout_rate, name="feature_dropout")
    self.hidden_dropout = tf.keras.layers.Dropout(self.dropout_rate, name="hidden_dropout")
    self.lstm = tf.keras.layers.LSTM(self.lstm_units, return_sequences=True, return_state=True,
                                     name="lstm")
    # The head starts at zero offsets: the first prediction is the mean pose (or the origin
    # plus a learnt bias for the baseline) rather than Kaiming-scaled noise of size ~1.
    self.head = tf.keras.layers.Dense(self.num_keypoints * 2, kernel_initializer="zeros",
                                      name="head")
    if self.arm_units:
      self.arm_encoder = MotionEncoder(channels=self.encoder_channels, embedding=self.arm_units,
                                       name="arm_encoder")
      self.arm_pose_dense = tf.keras.layers.Dense(self.pose_embedding, activation="relu",
                                                  kernel_initializer=KAIMING,
                                                  name="arm_pose_dense")
      self.arm_lstm = tf.keras.layers.LSTM(self.arm_units, return_sequences=True,
                                           return_state=True, name="arm_lstm")
      self.arm_head = tf.keras.layers.Dense(len(self.arm_points) * 2, kernel_initializer="zeros",
                                            name="arm_head")
      # Point p of the output is row order[p] of [main head's P points, arm head's points].
      order = np.arange(self.num_keypoints)
      order[list(self.arm_points)] = self.num_keypoints + np.arange(len(self.arm_points))
      self.point_order = order
    self.unroll = False  # Export switch (see `run_lstm`); not part of the config.

  def zero_state(self, batch_size):
    """LSTM state [h, c], each [B, lstm_units + arm_units] of zeros."""
    units = self.lstm_units + self.arm_units
    return [tf.zeros([batch_size, units]), tf.zeros([batch_size, units])]

  def _path(self, audio, encoder, embedding, pose_dense, lstm, state, dropout, prefix=""):
    """Encoder, instrument feature and LSTM of one path: ([B, T, 84, 87], [h, c]) ->
    (hidden [B, T, U] after dropout, h, c)."""
    shape = tf.shape(audio)
    features = encoder(tf.reshape(audio, [-1, audio.shape[2], audio.shape[3]]))
    features = tf.reshape(features, [shape[0], shape[1], embedding])
    features = dropout(prefix + "feature_dropout", features)
    if self.mean_pose_condition:
      pose = pose_dense(tf.reshape(self.mean_pose, [1, -1]))  # [1, E]
      features = tf.concat([features, tf.tile(pose[:, None], [shape[0], shape[1], 1])], -1)
    hidden, h, c = run_lstm(lstm, features, state, self.unroll)
    return dropout(prefix + "hidden_dropout", hidden), h, c

  def call(self, audio, initial_state=None, return_state=False, training=False, random=None,
           arm_audio=None):
    """Predicts keypoints.

    Args:
      audio: float [B, T, 84, 87] normalised audio windows.
      initial_state: optional [h, c] from a previous chunk (default zeros).
      return_state: also return the final [h, c].
      training: apply dropout (and input noise).
      random: optional `training.randomness.StepRandom`: in training, dropout masks and input
        noise are drawn from it (exact resume, the same numbers on any number of replicas)
        instead of from Keras's stateful RNG.
      arm_audio: optional float [B, T, 84, 87], the windows the arm path hears (default
        `audio`; training gives it the unshifted ones).

    Returns:
      float [B, T, P, 2] keypoints; with `return_state`, (keypoints, [h, c]).
    """
    shape = tf.shape(audio)
    batch, steps = shape[0], shape[1]
    # Keras casts the first input to the compute dtype (float16 under mixed precision) only.
    arm_audio = audio if arm_audio is None else tf.cast(arm_audio, audio.dtype)
    keyed = training and random is not None
    if keyed and self.input_noise:
      noise = tf.cast(self.input_noise * random.normal("kp/input_noise", batch, shape[1:]),
                      audio.dtype)
      audio, arm_audio = audio + noise, arm_audio + noise
    elif not keyed:
      audio, arm_audio = self.noise(audio, training=training), self.noise(arm_audio,
                                                                         training=training)
    # The arm path's layers share the main path's dropout layers (they hold no weights).
    dropout = lambda name, x: (random.dropout(f"kp/{name}", x, self.dropout_rate) if keyed else
                               getattr(self, name.removeprefix("arm_"))(x, training=training))
    if initial_state is None:
      initial_state = self.zero_state(batch)
    units = self.lstm_units
    main_state = [s[:, :units] for s in initial_state] if self.arm_units else initial_state
    hidden, h, c = self._path(audio, self.motion_encoder, self.audio_embedding, self.pose_dense,
                              self.lstm, main_state, dropout)
    offsets = tf.reshape(self.head(hidden), [batch, steps, self.num_keypoints, 2])
    if self.arm_units:
      arm_hidden, arm_h, arm_c = self._path(
          arm_audio, self.arm_encoder, self.arm_units, self.arm_pose_dense, self.arm_lstm,
          [s[:, units:] for s in initial_state], dropout, prefix="arm_")
      arm = tf.reshape(self.arm_head(arm_hidden), [batch, steps, len(self.arm_points), 2])
      offsets = tf.gather(tf.concat([offsets, arm], 2), self.point_order, axis=2)
      h, c = tf.concat([h, arm_h], 1), tf.concat([c, arm_c], 1)
    offsets = tf.cast(offsets, tf.float32)  # Losses and the DLT run in float32.
    keypoints = offsets + self.mean_pose if self.mean_pose_condition else offsets
    return (keypoints, [h, c]) if return_state else keypoints

  def get_config(self):
    return {"mean_pose": self.mean_pose.numpy().tolist(),
            "mean_pose_condition": self.mean_pose_condition,
            "encoder_channels": self.encoder_channels, "audio_embedding": self.audio_embedding,
            "pose_embedding": self.pose_embedding, "lstm_units": self.lstm_units,
            "dropout": self.dropout_rate, "input_noise": self.input_noise,
            "lookahead_frames": self.lookahead_frames,
            "num_keypoints": self.num_keypoints, "arm_points": list(self.arm_points),
            "arm_units": self.arm_units, "name": self.name}


def keypoint_predictor_from_config(khp_config, mean_pose, instrument=None):
  """The config stops here: builds a KeypointPredictor from `config.khp` and a mean pose.

  With `khp.pitch_arm_units` > 0 the arm path predicts the arms of `instrument` that follow
  the pitch (`audio.augment.pitch_arms`).
  """
  if khp_config.pitch_arm_units and instrument is None:
    raise ValueError("khp.pitch_arm_units > 0 needs the instrument, whose pitch arm it predicts")
  arm_points = augment.pitch_arms(instrument) if khp_config.pitch_arm_units else ()
  return KeypointPredictor(mean_pose=mean_pose,
                           mean_pose_condition=khp_config.mean_pose_condition,
                           encoder_channels=khp_config.encoder_channels,
                           audio_embedding=khp_config.audio_embedding,
                           pose_embedding=khp_config.pose_embedding,
                           lstm_units=khp_config.lstm_units, dropout=khp_config.dropout,
                           input_noise=khp_config.input_noise,
                           lookahead_frames=khp_config.lookahead_frames,
                           arm_points=arm_points,
                           arm_units=khp_config.pitch_arm_units, name="keypoint_predictor")
