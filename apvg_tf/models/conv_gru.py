"""The ConvGRU of the STU: a GRU whose dense layers are 'same'-padded convolutions.

The STU fuses each frame's UNet bottleneck feature x_t with the previous frame's state h_{t-1}
(DESIGN.md, "The pipeline"). With [a, b] the channel concatenation and * the elementwise
product:

    z_t  = sigmoid(conv_z([x_t, h_{t-1}]))          update gate
    r_t  = sigmoid(conv_r([x_t, h_{t-1}]))          reset gate
    h~_t = tanh(conv_h([x_t, r_t * h_{t-1}]))       candidate state
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t

Every conv has `filters` output channels, a `kernel_size` window, stride 1 and 'same' padding,
so the state keeps the input's height and width: x_t [B, H, W, Cin], h_t [B, H, W, filters].
`ConvGRUCell` is one step (the STU runs frame by frame and carries the state itself);
`ConvGRU` runs the cell over a time axis with `tf.scan`, which traces once and compiles under
XLA.
"""

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class ConvGRUCell(tf.keras.layers.Layer):
  """One ConvGRU step: (x [B, H, W, Cin], h [B, H, W, filters]) -> h' [B, H, W, filters].

  See the module docstring for the equations. Sublayers: `conv_z`, `conv_r`, `conv_h`.
  """

  def __init__(self, *, filters: int, kernel_size: int = 3,
               kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
    """Builds the cell.

    Args:
      filters: channels of the state (and of each gate's conv).
      kernel_size: side of the square conv window (odd, so 'same' padding is centred).
      kernel_initializer: initializer of the three conv kernels.
      bias_initializer: initializer of the three conv biases.
      **kwargs: passed to `tf.keras.layers.Layer` (name, dtype, ...).
    """
    super().__init__(**kwargs)
    self.filters, self.kernel_size = int(filters), int(kernel_size)
    self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
    self.bias_initializer = tf.keras.initializers.get(bias_initializer)

    def conv(name):
      return tf.keras.layers.Conv2D(
          self.filters, self.kernel_size, padding="same",
          kernel_initializer=tf.keras.initializers.get(
              tf.keras.initializers.serialize(self.kernel_initializer)),  # A fresh seed each.
          bias_initializer=self.bias_initializer, dtype=self.dtype_policy, name=name)

    self.conv_z, self.conv_r, self.conv_h = conv("conv_z"), conv("conv_r"), conv("conv_h")

  def build(self, input_shape):
    # Built eagerly here (not on first call) so ConvGRU can build the cell before its scan:
    # variables cannot be created inside a while loop.
    input_shape = tf.TensorShape(input_shape)
    concat_shape = input_shape[:-1].concatenate([input_shape[-1] + self.filters])
    for conv in (self.conv_z, self.conv_r, self.conv_h):
      with tf.name_scope(conv.name):  # Which __call__ would have opened.
        conv.build(concat_shape)
    super().build(input_shape)

  def zero_state(self, batch, height, width):
    """The initial state: zeros [batch, height, width, filters] in the compute dtype."""
    return tf.zeros([batch, height, width, self.filters], dtype=self.compute_dtype)

  def call(self, inputs, state):
    """One step.

    Args:
      inputs: float [B, H, W, Cin], x_t.
      state: float [B, H, W, filters], h_{t-1}.

    Returns:
      float [B, H, W, filters], h_t.
    """
    state = tf.cast(state, self.compute_dtype)
    xh = tf.concat([inputs, state], -1)
    update = tf.sigmoid(self.conv_z(xh))
    reset = tf.sigmoid(self.conv_r(xh))
    candidate = tf.tanh(self.conv_h(tf.concat([inputs, reset * state], -1)))
    return (1.0 - update) * state + update * candidate

  def get_config(self):
    return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
            "kernel_initializer": tf.keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": tf.keras.initializers.serialize(self.bias_initializer)}


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class ConvGRU(tf.keras.layers.Layer):
  """A ConvGRUCell over time: [B, T, H, W, Cin] -> ([B, T, H, W, filters], [B, H, W, filters]).

  h_0 is `initial_state` (zeros by default); the sequence holds h_1 .. h_T and the second
  output is h_T, to pass as the next chunk's `initial_state`. Sublayer: `cell`.
  """

  def __init__(self, *, filters: int, kernel_size: int = 3,
               kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
    """Builds the layer; the arguments are those of `ConvGRUCell`."""
    super().__init__(**kwargs)
    self.cell = ConvGRUCell(filters=filters, kernel_size=kernel_size,
                            kernel_initializer=kernel_initializer,
                            bias_initializer=bias_initializer, dtype=self.dtype_policy,
                            name="cell")
    self.unroll = False  # Export switch (see `call`); not part of the config.

  def build(self, input_shape):
    input_shape = tf.TensorShape(input_shape)
    with tf.name_scope(self.cell.name):
      self.cell.build(input_shape[:1].concatenate(input_shape[2:]))
    super().build(input_shape)

  def zero_state(self, batch, height, width):
    """The initial state: zeros [batch, height, width, filters]."""
    return self.cell.zero_state(batch, height, width)

  def call(self, inputs, initial_state=None, valid=None):
    """Runs the cell over the time axis.

    Args:
      inputs: float [B, T, H, W, Cin].
      initial_state: optional float [B, H, W, filters], h_0 (default zeros).
      valid: optional bool [B, T]: where False, the step keeps the state it was given
        (h_t = h_{t-1}), so steps that are not part of the sequence (a stream's positions
        before its first frame) leave no trace.

    Returns:
      (sequence float [B, T, H, W, filters], final state float [B, H, W, filters]).
    """
    shape = tf.shape(inputs)
    if initial_state is None:
      initial_state = self.zero_state(shape[0], shape[2], shape[3])
    initial_state = tf.cast(initial_state, self.compute_dtype)
    if valid is not None:
      valid = tf.convert_to_tensor(valid, tf.bool)

    def step(state, t_input):
      x, keep = t_input if valid is not None else (t_input, None)
      new = self.cell(x, state)
      return new if keep is None else tf.where(keep[:, None, None, None], new, state)

    if self.unroll:
      # Export switch: a Python loop over a static T (no while loop in the graph).
      states, state = [], initial_state
      for t in range(inputs.shape[1]):
        state = step(state, inputs[:, t] if valid is None else (inputs[:, t], valid[:, t]))
        states.append(state)
      return tf.stack(states, 1), state
    time_major = tf.transpose(inputs, [1, 0, 2, 3, 4])
    elems = time_major if valid is None else (time_major, tf.transpose(valid))
    states = tf.scan(step, elems, initializer=initial_state)
    sequence = tf.transpose(states, [1, 0, 2, 3, 4])
    return sequence, states[-1]  # Needs T >= 1, as any recurrent layer does.

  def get_config(self):
    cell_config = self.cell.get_config()
    return {**super().get_config(),
            **{key: cell_config[key] for key in (
                "filters", "kernel_size", "kernel_initializer", "bias_initializer")}}
