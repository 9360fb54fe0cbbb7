"""Tests of the STU's layers: ConvGRU (cell and sequence) and the skeleton GCN block.

References are float64 NumPy versions of the documented equations; the layers run in float64
too (`_float64()`), so agreement is to ~1e-10.
"""

import contextlib
import os

import numpy as np
from absl.testing import parameterized

import apvg_tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf

from apvg_tf import skeleton
from apvg_tf.models import conv_gru, gcn_block

# A small skeleton: a chain 0-1-2-3 with a branch 1-4-5.
SMALL_BONES = ((0, 1), (1, 2), (2, 3), (1, 4), (4, 5))
SMALL_P = 6


@contextlib.contextmanager
def _float64():
  """Layers created (and built) inside run in float64, TF-GNN's inner Dense layers included."""
  old = tf.keras.backend.floatx()
  tf.keras.backend.set_floatx("float64")
  try:
    yield
  finally:
    tf.keras.backend.set_floatx(old)


def _randomize(layer, rng, scale=0.5):
  """Sets every weight of a built layer to normal noise; returns the list of arrays."""
  values = [scale * rng.standard_normal(w.shape) for w in layer.get_weights()]
  layer.set_weights(values)
  return values


# ----------------------------------------------------------------------------- NumPy references


def np_conv_same(x, kernel, bias):
  """'same' cross-correlation, stride 1, odd kernel: [B, H, W, I] -> [B, H, W, O]."""
  k = kernel.shape[0]
  pad = k // 2
  xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  height, width = x.shape[1:3]
  out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
  for dy in range(k):
    for dx in range(k):
      out += xp[:, dy:dy + height, dx:dx + width] @ kernel[dy, dx]
  return out + bias


def np_sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def np_conv_gru_cell(x, h, weights):
  """The ConvGRU equations; weights = [kz, bz, kr, br, kh, bh]."""
  kz, bz, kr, br, kh, bh = weights
  xh = np.concatenate([x, h], -1)
  z = np_sigmoid(np_conv_same(xh, kz, bz))
  r = np_sigmoid(np_conv_same(xh, kr, br))
  candidate = np.tanh(np_conv_same(np.concatenate([x, r * h], -1), kh, bh))
  return (1 - z) * h + z * candidate


def np_bilinear_taps(x, y, height, width):
  """Classic bilinear interpolation taps [(row, col, weight)] inside the frame.

  Pixel centres at (i + 0.5) / width, as apvg_tf.heatmap.
  """
  px, py = x * width - 0.5, y * height - 0.5
  x0, y0 = int(np.floor(px)), int(np.floor(py))
  fx, fy = px - x0, py - y0
  taps = []
  for row, wy in ((y0, 1 - fy), (y0 + 1, fy)):
    for col, wx in ((x0, 1 - fx), (x0 + 1, fx)):
      if 0 <= row < height and 0 <= col < width:
        taps.append((row, col, wy * wx))
  return taps


def np_keypoint_gcn(feature_map, keypoints, confidences, weights, bones, activation):
  """KeypointGCN, with masked nodes deleted from the graph; weights = [W0, b0, W1, b1, ...]."""
  out = np.array(feature_map, np.float64)
  height, width = feature_map.shape[1:3]
  for b in range(feature_map.shape[0]):
    kept = [p for p in range(keypoints.shape[1]) if confidences[b, p] > 0]
    new_index = {p: n for n, p in enumerate(kept)}
    taps = [np_bilinear_taps(*keypoints[b, p, :2], height, width) for p in kept]
    h = np.array([sum((w * feature_map[b, row, col] for row, col, w in t),
                      np.zeros(feature_map.shape[-1])) for t in taps])
    adjacency = np.eye(len(kept))  # A + I
    for i, j in bones:
      if i in new_index and j in new_index:
        adjacency[new_index[i], new_index[j]] += 1
        adjacency[new_index[j], new_index[i]] += 1
    degree = adjacency.sum(1)
    normalized = adjacency / np.sqrt(degree[:, None] * degree[None, :])
    num_layers = len(weights) // 2
    for layer in range(num_layers):
      h = normalized @ h @ weights[2 * layer] + weights[2 * layer + 1]
      if layer < num_layers - 1:
        h = activation(h)
    for t, update in zip(taps, h):
      for row, col, w in t:
        out[b, row, col] += w * update
  return out


def np_relu(x):
  return np.maximum(x, 0)


# ----------------------------------------------------------------------------------- ConvGRU


class ConvGRUTest(tf.test.TestCase, parameterized.TestCase):

  def test_zero_weights_halve_the_state(self):
    # All kernels and biases 0: z = r = sigmoid(0) = 0.5 and h~ = tanh(0) = 0, so
    # h' = (1 - 0.5) h + 0.5 * 0 = h / 2 whatever the input.
    cell = conv_gru.ConvGRUCell(filters=2, kernel_size=3, kernel_initializer="zeros")
    state = tf.reshape(tf.range(2 * 4 * 5 * 2, dtype=tf.float32), [2, 4, 5, 2])
    self.assertAllClose(cell(tf.ones([2, 4, 5, 3]), state), state / 2)

  def test_zero_state(self):
    cell = conv_gru.ConvGRUCell(filters=4)
    self.assertAllEqual(cell.zero_state(3, 5, 6), tf.zeros([3, 5, 6, 4]))

  @parameterized.named_parameters(("1x1", 1), ("3x3", 3), ("5x5", 5))
  def test_cell_equals_numpy(self, kernel_size):
    rng = np.random.default_rng(kernel_size)
    x = rng.standard_normal((2, 5, 6, 3))
    h = rng.standard_normal((2, 5, 6, 4))
    with _float64():
      cell = conv_gru.ConvGRUCell(filters=4, kernel_size=kernel_size)
      cell.build(x.shape)
      for weight, name in zip(cell.weights[::2], ("conv_z", "conv_r", "conv_h")):
        self.assertEndsWith(weight.name, f"{name}/kernel:0")
      weights = _randomize(cell, rng)
      got = cell(tf.constant(x), tf.constant(h))
    self.assertEqual(got.dtype, tf.float64)
    self.assertAllClose(got, np_conv_gru_cell(x, h, weights), atol=1e-12, rtol=1e-12)

  @parameterized.named_parameters(("eager", None), ("function", False), ("xla", True))
  def test_sequence_equals_steps(self, jit_compile):
    rng = np.random.default_rng(0)
    layer = conv_gru.ConvGRU(filters=3, kernel_size=3)
    inputs = tf.constant(rng.standard_normal((2, 4, 6, 5, 2)), tf.float32)
    initial = tf.constant(rng.standard_normal((2, 6, 5, 3)), tf.float32)
    layer(inputs)  # Builds.
    _randomize(layer, rng)
    run = layer
    if jit_compile is not None:
      run = tf.function(layer.__call__, jit_compile=jit_compile, input_signature=[
          tf.TensorSpec([None, None, 6, 5, 2]), tf.TensorSpec([None, 6, 5, 3])])
    sequence, final = run(inputs, initial)
    state, expected = initial, []
    for t in range(4):
      state = layer.cell(inputs[:, t], state)
      expected.append(state)
    self.assertAllClose(sequence, tf.stack(expected, 1), atol=1e-6)
    self.assertAllClose(final, state, atol=1e-6)

  def test_sequence_defaults_to_zero_state(self):
    layer = conv_gru.ConvGRU(filters=2, kernel_size=1)
    inputs = tf.random.stateless_normal([1, 3, 4, 4, 2], seed=(1, 2))
    _, final = layer(inputs)
    _, expected = layer(inputs, layer.zero_state(1, 4, 4))
    self.assertAllClose(final, expected)


# ------------------------------------------------------------------------------- KeypointGCN


def _small_inputs(rng, batch=2, height=7, width=9, channels=3, num_keypoints=SMALL_P):
  feature_map = rng.standard_normal((batch, height, width, channels))
  keypoints = rng.uniform(0.05, 0.95, (batch, num_keypoints, 2))
  return feature_map, keypoints


class KeypointGCNTest(tf.test.TestCase, parameterized.TestCase):

  def test_two_points_known_answer(self):
    # 4 x 4 map, one channel, F[0, 0] = 2 and F[2, 3] = 4. Keypoint 0 sits on the centre of
    # pixel (row 0, col 0): (x, y) = (0.5 / 4, 0.5 / 4); keypoint 1 on pixel (2, 3):
    # (3.5 / 4, 2.5 / 4); so v = (2, 4). One bone, self-loops: A + I = [[1, 1], [1, 1]],
    # degrees 2, A_hat = 1/2 everywhere; one linear layer with kernel 1 and no bias:
    # h' = (2 + 4) / 2 = 3 at both nodes, added at the two pixels: 2 + 3 = 5 and 4 + 3 = 7.
    layer = gcn_block.KeypointGCN(num_layers=1, use_bias=False, kernel_initializer="ones",
                                  bones=((0, 1),), num_keypoints=2)
    feature_map = np.zeros((1, 4, 4, 1), np.float32)
    feature_map[0, 0, 0, 0], feature_map[0, 2, 3, 0] = 2, 4
    keypoints = np.array([[[0.125, 0.125], [0.875, 0.625]]], np.float32)
    expected = feature_map.copy()
    expected[0, 0, 0, 0], expected[0, 2, 3, 0] = 5, 7
    self.assertAllClose(layer(feature_map, keypoints, tf.ones([1, 2])), expected)
    # Keypoint 1 missing: node 0 is alone, A_hat = [[1]], h' = 2: F[0, 0] becomes 4, and
    # nothing is written at keypoint 1.
    expected[0, 0, 0, 0], expected[0, 2, 3, 0] = 4, 4
    self.assertAllClose(layer(feature_map, keypoints, tf.constant([[1.0, 0.0]])), expected)

  @parameterized.named_parameters(
      ("one_layer", 1, None, SMALL_BONES, SMALL_P),
      ("two_layers", 2, 5, SMALL_BONES, SMALL_P),
      ("three_layers", 3, 4, SMALL_BONES, SMALL_P),
      ("skeleton", 2, None, skeleton.BONES, skeleton.NUM_KEYPOINTS))
  def test_equals_numpy(self, num_layers, units, bones, num_keypoints):
    rng = np.random.default_rng(num_layers)
    feature_map, keypoints = _small_inputs(rng, num_keypoints=num_keypoints)
    keypoints[0, 0] = (0.98, 0.02)  # Part of its kernel falls off the frame.
    confidences = rng.uniform(0.1, 1.0, (2, num_keypoints))
    confidences[0, 1] = confidences[1, [0, 3]] = 0.0
    with _float64():
      layer = gcn_block.KeypointGCN(num_layers=num_layers, units=units, bones=bones,
                                    num_keypoints=num_keypoints)
      layer(feature_map, keypoints, confidences)  # Builds.
      names = [w.name for w in layer.weights]
      for index in range(num_layers):
        self.assertIn(f"/gcn_{index}/", names[2 * index])
        self.assertTrue(names[2 * index].endswith("kernel:0"))
      weights = _randomize(layer, rng)
      got = layer(feature_map, keypoints, confidences)
    expected = np_keypoint_gcn(feature_map, keypoints, confidences, weights, bones, np_relu)
    self.assertAllClose(got, expected, atol=1e-10, rtol=1e-10)

  def test_masked_node_equals_graph_without_it(self):
    rng = np.random.default_rng(3)
    feature_map, keypoints = _small_inputs(rng, batch=1, height=8, width=12)
    keypoints[..., 0] *= 0.4  # The valid points sample the left half only.
    masked = 2  # The middle of the chain 1-2-3.
    confidences = np.ones((1, SMALL_P))
    confidences[0, masked] = 0
    keep = [p for p in range(SMALL_P) if p != masked]
    reduced_bones = tuple((keep.index(i), keep.index(j)) for i, j in SMALL_BONES
                          if masked not in (i, j))
    with _float64():
      full = gcn_block.KeypointGCN(num_layers=2, bones=SMALL_BONES, num_keypoints=SMALL_P)
      reduced = gcn_block.KeypointGCN(num_layers=2, bones=reduced_bones,
                                      num_keypoints=SMALL_P - 1)
      full(feature_map, keypoints, confidences)
      reduced(feature_map, keypoints[:, keep], confidences[:, keep])
      reduced.set_weights(_randomize(full, rng))
      base = full(feature_map, keypoints, confidences) - feature_map
      for position in ((0.8, 0.5), (1.7, -0.3), (np.nan, np.nan)):
        moved = keypoints.copy()
        moved[0, masked] = position
        bumped = feature_map.copy()
        bumped[0, 2:6, 7:11] += 100.0  # Right half, around the masked point (0.8, 0.5).
        for features in (feature_map, bumped):
          got = full(features, moved, confidences)
          self.assertAllClose(got, reduced(features, keypoints[:, keep], confidences[:, keep]),
                              atol=1e-12)
          # Nothing under the masked point is read: the update is unchanged.
          self.assertAllClose(got - features, base, atol=1e-12)
      # Even at NaN, the masked point gets a zero gradient and the others a finite one.
      moved = tf.constant(moved)
      with tf.GradientTape() as tape:
        tape.watch(moved)
        total = tf.reduce_sum(full(feature_map, moved, confidences) ** 2)
      gradient = tape.gradient(total, moved).numpy()
    self.assertAllEqual(gradient[0, masked], [0, 0])
    self.assertTrue(np.isfinite(gradient).all())
    self.assertGreater(np.abs(gradient).max(), 0)

  def test_no_message_passes_through_masked_node(self):
    # Chain 0 - 1 - 2 on pixel centres (1, 1), (4, 4), (7, 7) of a 9 x 9 map; two linear
    # layers, so with node 1 valid the output at node 0 depends on F under node 2.
    layer = gcn_block.KeypointGCN(num_layers=2, activation=None, bones=((0, 1), (1, 2)),
                                  num_keypoints=3)
    keypoints = tf.constant([[[1.5 / 9, 1.5 / 9], [4.5 / 9, 4.5 / 9], [7.5 / 9, 7.5 / 9]]])
    feature_map = tf.random.stateless_normal([1, 9, 9, 2], seed=(0, 1))
    layer(feature_map, keypoints)
    _randomize(layer, np.random.default_rng(4))
    for node_1_valid in (True, False):
      confidences = tf.constant([[1.0, float(node_1_valid), 1.0]])
      with tf.GradientTape() as tape:
        tape.watch(feature_map)
        out = layer(feature_map, keypoints, confidences)
        at_node_0 = tf.reduce_sum(out[0, 1, 1])
      gradient = tape.gradient(at_node_0, feature_map)
      if node_1_valid:
        self.assertGreater(float(tf.reduce_max(tf.abs(gradient[0, 7, 7]))), 1e-3)
      else:
        self.assertAllEqual(gradient[0, 7, 7], tf.zeros([2]))
        self.assertAllEqual(gradient[0, 4, 4], tf.zeros([2]))  # Node 1 sends nothing...
        self.assertAllEqual(out[0, 4, 4], feature_map[0, 4, 4])  # ...and receives nothing.

  def test_gradient_matches_finite_differences(self):
    rng = np.random.default_rng(5)
    feature_map, keypoints = _small_inputs(rng, batch=1, height=6, width=6, channels=2)
    # Interior points, away from pixel centres (where the tents have kinks).
    keypoints = (np.floor(rng.uniform(1, 5, (1, SMALL_P, 2))) + 0.5 + rng.uniform(
        0.1, 0.4, (1, SMALL_P, 2)) * rng.choice([-1, 1], (1, SMALL_P, 2))) / 6
    target = rng.standard_normal(feature_map.shape)
    with _float64():
      layer = gcn_block.KeypointGCN(num_layers=2, activation="tanh", bones=SMALL_BONES,
                                    num_keypoints=SMALL_P)
      layer(feature_map, keypoints)
      _randomize(layer, rng)

      def loss(f, k):
        return tf.reduce_sum(target * layer(f, k)) + 0.5 * tf.reduce_sum(layer(f, k) ** 2)

      f, k = tf.constant(feature_map), tf.constant(keypoints)
      with tf.GradientTape(persistent=True) as tape:
        tape.watch([f, k])
        value = loss(f, k)
      grad_k, grad_f = tape.gradient(value, k).numpy(), tape.gradient(value, f).numpy()
      eps = 1e-6
      numeric = np.zeros_like(grad_k)
      for index in np.ndindex(*keypoints.shape):
        delta = np.zeros(keypoints.shape)
        delta[index] = eps
        numeric[index] = (loss(f, k + delta) - loss(f, k - delta)).numpy() / (2 * eps)
    self.assertAllClose(grad_k, numeric, rtol=1e-5, atol=1e-7)
    self.assertGreater(np.abs(grad_k).min(), 0)
    self.assertGreater(np.abs(grad_f).max(), 0)

  @parameterized.named_parameters(("function", False), ("xla", True))
  def test_tf_function_with_unknown_batch(self, jit_compile):
    layer = gcn_block.KeypointGCN(num_layers=2, bones=SMALL_BONES, num_keypoints=SMALL_P)
    run = tf.function(layer.__call__, jit_compile=jit_compile, input_signature=[
        tf.TensorSpec([None, 7, 9, 3]), tf.TensorSpec([None, SMALL_P, 2]),
        tf.TensorSpec([None, SMALL_P])])
    rng = np.random.default_rng(6)
    for batch in (1, 3):
      feature_map, keypoints = _small_inputs(rng, batch=batch)
      feature_map, keypoints = np.float32(feature_map), np.float32(keypoints)
      confidences = np.float32(rng.random((batch, SMALL_P)) > 0.3)
      self.assertAllClose(run(feature_map, keypoints, confidences),
                          layer(feature_map, keypoints, confidences), atol=1e-5)

  def test_zero_output_initializer_starts_as_identity_and_learns(self):
    # The STU's setting: the block adds nothing until trained, yet its last kernel gets a
    # gradient, so it does learn (the hidden kernels stay random and get theirs once it moves).
    rng = np.random.default_rng(10)
    layer = gcn_block.KeypointGCN(num_layers=2, output_initializer="zeros", bones=SMALL_BONES,
                                  num_keypoints=SMALL_P)
    feature_map, keypoints = _small_inputs(rng)
    feature_map = tf.constant(feature_map, tf.float32)
    target = tf.constant(rng.standard_normal(feature_map.shape), tf.float32)
    with tf.GradientTape() as tape:
      out = layer(feature_map, np.float32(keypoints))
      loss = tf.reduce_sum(out * target)
    self.assertAllEqual(out, feature_map)
    kernels = [v for v in layer.trainable_variables if v.name.endswith("kernel:0")]
    self.assertLen(kernels, 2)
    self.assertGreater(float(tf.reduce_max(tf.abs(kernels[0]))), 0)  # Hidden: random.
    self.assertAllEqual(kernels[1], tf.zeros_like(kernels[1]))
    self.assertGreater(float(tf.reduce_max(tf.abs(tape.gradient(loss, kernels[1])))), 1e-3)

  def test_rejects_bad_configuration(self):
    with self.assertRaisesRegex(ValueError, "outside 0..2"):
      gcn_block.KeypointGCN(bones=((0, 3),), num_keypoints=3)
    with self.assertRaisesRegex(ValueError, "num_layers >= 1"):
      gcn_block.KeypointGCN(num_layers=0)
    layer = gcn_block.KeypointGCN(bones=SMALL_BONES, num_keypoints=SMALL_P)
    with self.assertRaisesRegex(ValueError, "configured for 6 keypoints"):
      layer(tf.zeros([1, 4, 4, 2]), tf.zeros([1, 5, 2]))


# ------------------------------------------------------------------------------ Serialization


def _gcn():
  return gcn_block.KeypointGCN(num_layers=2, units=5, activation="tanh",
                               kernel_initializer="he_normal", bones=SMALL_BONES,
                               num_keypoints=SMALL_P, name="gcn")


def _call_args(rng, layer):
  """Inputs for `layer` (built by the call) as float32 tensors."""
  if isinstance(layer, gcn_block.KeypointGCN):
    feature_map, keypoints = _small_inputs(rng)
    return [tf.constant(feature_map, tf.float32), tf.constant(keypoints, tf.float32),
            tf.constant(rng.random((2, SMALL_P)) > 0.3, tf.float32)]
  if isinstance(layer, conv_gru.ConvGRU):
    return [tf.constant(rng.standard_normal((2, 3, 5, 4, 2)), tf.float32)]
  return [tf.constant(rng.standard_normal((2, 5, 4, 2)), tf.float32),
          tf.constant(rng.standard_normal((2, 5, 4, 3)), tf.float32)]


class SerializationTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("conv_gru_cell", lambda: conv_gru.ConvGRUCell(filters=3, kernel_size=5,
                                                     bias_initializer="ones", name="cell")),
      ("conv_gru", lambda: conv_gru.ConvGRU(filters=3, kernel_size=1, name="gru")),
      ("keypoint_gcn", _gcn),
      ("keypoint_gcn_zero_output", lambda: gcn_block.KeypointGCN(
          num_layers=2, output_initializer="zeros", bones=SMALL_BONES,
          num_keypoints=SMALL_P, name="gcn")))
  def test_config_round_trip(self, make):
    rng = np.random.default_rng(7)
    layer = make()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    self.assertEqual(clone.get_config(), config)
    revived = tf.keras.layers.deserialize(tf.keras.layers.serialize(layer))
    self.assertIsInstance(revived, type(layer))
    self.assertEqual(revived.get_config(), config)
    args = _call_args(rng, layer)
    layer(*args)
    clone(*args)
    clone.set_weights(_randomize(layer, rng))
    self.assertAllClose(tf.nest.flatten(clone(*args)), tf.nest.flatten(layer(*args)))

  def test_saved_model_module(self):
    rng = np.random.default_rng(8)
    module = tf.Module()
    module.gcn, module.cell = _gcn(), conv_gru.ConvGRUCell(filters=3, name="cell")
    module.gru = conv_gru.ConvGRU(filters=3, name="gru")

    @tf.function(input_signature=[tf.TensorSpec([None, 7, 9, 3]),
                                  tf.TensorSpec([None, SMALL_P, 2]),
                                  tf.TensorSpec([None, SMALL_P]),
                                  tf.TensorSpec([None, 7, 9, 3])])
    def step(feature_map, keypoints, confidences, state):
      return module.cell(module.gcn(feature_map, keypoints, confidences), state)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 7, 9, 3])])
    def sequence(inputs):
      return module.gru(inputs)

    module.step, module.sequence = step, sequence
    feature_map, keypoints = _small_inputs(rng, batch=3)
    args = [np.float32(feature_map), np.float32(keypoints),
            np.float32(rng.random((3, SMALL_P)) > 0.3),
            np.float32(rng.standard_normal((3, 7, 9, 3)))]
    inputs = np.float32(rng.standard_normal((3, 2, 7, 9, 3)))
    expected_step, expected_sequence = step(*args), sequence(inputs)
    path = os.path.join(self.get_temp_dir(), "stu_layers")
    tf.saved_model.save(module, path)
    loaded = tf.saved_model.load(path)
    self.assertAllClose(loaded.step(*args), expected_step, atol=1e-6)
    self.assertAllClose(loaded.sequence(inputs), expected_sequence, atol=1e-6)

  def test_keras_saved_model(self):
    rng = np.random.default_rng(9)
    feature_map = tf.keras.Input([7, 9, 3])
    keypoints, confidences = tf.keras.Input([SMALL_P, 2]), tf.keras.Input([SMALL_P])
    state = tf.keras.Input([7, 9, 3])
    refined = _gcn()(feature_map, keypoints, confidences)
    new_state = conv_gru.ConvGRUCell(filters=3, name="cell")(refined, state)
    model = tf.keras.Model([feature_map, keypoints, confidences, state], new_state)
    _randomize(model, rng)
    feature_map, keypoints = _small_inputs(rng)
    args = [np.float32(feature_map), np.float32(keypoints),
            np.float32(rng.random((2, SMALL_P)) > 0.3),
            np.float32(rng.standard_normal((2, 7, 9, 3)))]
    path = os.path.join(self.get_temp_dir(), "stu_keras")
    model.save(path, save_format="tf")
    loaded = tf.keras.models.load_model(path)
    self.assertIsInstance(loaded.get_layer("gcn"), gcn_block.KeypointGCN)
    self.assertIsInstance(loaded.get_layer("cell"), conv_gru.ConvGRUCell)
    self.assertAllClose(loaded(args), model(args), atol=1e-6)


if __name__ == "__main__":
  tf.test.main()
