"""Tests of the DLT (eq. (1)) against a float64 NumPy implementation."""

import numpy as np
import pytest
import tensorflow as tf

from apvg_tf import heatmap, skeleton


def numpy_eq1(keypoints, height, width, radius=1.0, weights=None):
  """Eq. (1) written as the paper's triple sum, in float64."""
  out = np.zeros((height, width), np.float64)
  for s, (x, y) in enumerate(np.asarray(keypoints, np.float64)):
    kx, ky = x * width - 0.5, y * height - 0.5
    w = 1.0 if weights is None else weights[s]
    for j in range(height):
      for i in range(width):
        out[j, i] += w * max(0.0, 1 - abs(i - kx) / radius) * max(0.0, 1 - abs(j - ky) / radius)
  return out


@pytest.mark.parametrize("radius", [1.0, 2.5])
def test_equals_numpy_equation_1(radius):
  rng = np.random.default_rng(0)
  kp = rng.uniform(-0.05, 1.05, (2, 67, 2))  # A few points fall off the frame.
  weights = (rng.random((2, 67)) > 0.2).astype(np.float64)
  got = heatmap.render_heatmaps(tf.constant(kp), 12, 16, radius=radius,
                                weights=tf.constant(weights)).numpy()
  assert got.shape == (2, 12, 16, 1) and got.dtype == np.float64
  for b in range(2):
    np.testing.assert_allclose(got[b, ..., 0], numpy_eq1(kp[b], 12, 16, radius, weights[b]),
                               atol=1e-12)


def test_single_point_is_a_bilinear_tent():
  # x = 0.3 of 10 px -> kx = 2.5: columns 2 and 3 at 0.5 each; y = 0.55 -> ky = 5.0: row 5.
  got = heatmap.render_heatmaps([[0.3, 0.55]], 10, 10)[..., 0].numpy()
  expected = np.zeros((10, 10))
  expected[5, 2] = expected[5, 3] = 0.5
  np.testing.assert_allclose(got, expected, atol=1e-6)


def test_parts_channels_sum_to_single_map():
  kp = np.random.default_rng(1).random((3, 67, 2)).astype(np.float32)
  parts = heatmap.render_heatmaps(kp, 8, 8, parts=True).numpy()
  single = heatmap.render_heatmaps(kp, 8, 8).numpy()
  assert parts.shape == (3, 8, 8, 3)
  np.testing.assert_allclose(parts.sum(-1, keepdims=True), single, atol=1e-5)
  # The left-hand channel holds exactly the left hand's points.
  np.testing.assert_allclose(parts[..., 1], heatmap.render_heatmaps(
      kp[:, skeleton.LEFT_HAND], 8, 8).numpy()[..., 0], atol=1e-6)


def test_gradient_matches_finite_differences():
  rng = np.random.default_rng(2)
  kp = tf.constant(rng.uniform(0.1, 0.9, (5, 2)))
  target = tf.constant(rng.random((16, 16, 1)))

  def loss(k):
    return tf.reduce_sum(tf.abs(heatmap.render_heatmaps(k, 16, 16, radius=2.0) - target) ** 2)

  with tf.GradientTape() as tape:
    tape.watch(kp)
    value = loss(kp)
  grad = tape.gradient(value, kp).numpy()
  eps = 1e-6
  numeric = np.zeros_like(grad)
  for index in np.ndindex(*grad.shape):
    delta = np.zeros(grad.shape)
    delta[index] = eps
    numeric[index] = (loss(kp + delta) - loss(kp - delta)).numpy() / (2 * eps)
  np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)
  assert np.abs(grad).max() > 0


def test_zero_weight_point_contributes_nothing_and_has_no_gradient():
  kp = tf.Variable([[0.2, 0.2], [0.7, 0.6]], dtype=tf.float32)
  weights = tf.constant([1.0, 0.0])
  with tf.GradientTape() as tape:
    maps = heatmap.render_heatmaps(kp, 10, 10, weights=weights)
    loss = tf.reduce_sum(maps * tf.random.uniform(maps.shape))
  only_first = heatmap.render_heatmaps(kp[:1], 10, 10)
  np.testing.assert_allclose(maps.numpy(), only_first.numpy(), atol=1e-7)
  np.testing.assert_array_equal(tape.gradient(loss, kp).numpy()[1], 0)


def test_layer_serializes():
  layer = heatmap.LandmarkTransformer(height=8, width=6, radius=1.5, parts=True)
  clone = heatmap.LandmarkTransformer.from_config(layer.get_config())
  kp = np.random.default_rng(3).random((2, 67, 2)).astype(np.float32)
  np.testing.assert_array_equal(layer(kp).numpy(), clone(kp).numpy())
  assert clone(kp).shape == (2, 8, 6, 3)


# ---------------------------------------------------------------------------- limb maps


def _one_bone(a, b, name="right_elbow", other="right_wrist", confidence=1.0):
  kp = np.full((67, 2), 0.5, np.float32)
  weights = np.zeros(67, np.float32)
  kp[skeleton.INDEX[name]], kp[skeleton.INDEX[other]] = a, b
  weights[skeleton.INDEX[name]] = weights[skeleton.INDEX[other]] = confidence
  return kp, weights


def test_a_bone_is_a_line_of_height_one_in_its_limb_channel_only():
  # 64 px: the forearm from pixel (10.0, 20.0) to (50.0, 20.0), on pixel centres.
  kp, weights = _one_bone([10.5 / 64, 20.5 / 64], [50.5 / 64, 20.5 / 64])
  maps = heatmap.limb_maps(kp, 64, 64, line_width=1.0, weights=weights).numpy()
  assert maps.shape == (64, 64, len(heatmap.LIMB_GROUPS))
  arm = list(heatmap.LIMB_GROUPS).index("right_arm")
  others = [c for c in range(maps.shape[-1]) if c != arm]
  assert np.abs(maps[..., others]).max() == 0
  line = maps[20, 12:49, arm]
  np.testing.assert_allclose(line, 1.0, atol=0.12)  # The tents' sum along the line.
  assert maps[18, :, arm].max() == 0 and maps[22, :, arm].max() == 0  # 2 px off: nothing.
  assert maps[:, :9, arm].max() == 0 and maps[:, 52:, arm].max() == 0  # Past its ends.
  # Its area: the length times the tent's integral across (line_width), within 10%.
  assert maps[..., arm].sum() == pytest.approx(40.0, rel=0.1)


def test_a_diagonal_bone_lights_the_pixels_near_its_segment():
  kp, weights = _one_bone([0.2, 0.2], [0.7, 0.6])
  maps = heatmap.limb_maps(kp, 48, 48, line_width=1.5, weights=weights).numpy()[
      ..., list(heatmap.LIMB_GROUPS).index("right_arm")]
  a, b = np.array([0.2, 0.2]) * 48 - 0.5, np.array([0.7, 0.6]) * 48 - 0.5
  rows, cols = np.mgrid[:48, :48]
  p = np.stack([cols, rows], -1).astype(np.float64)
  t = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
  distance = np.linalg.norm(p - (a + t[..., None] * (b - a)), axis=-1)
  assert maps[distance > 2.2].max() == 0  # Tents of 1.5 px reach 1.5 * sqrt(2) at most.
  assert maps[distance < 0.3].min() > 0.5


def test_a_bone_with_a_missing_end_draws_nothing():
  kp, weights = _one_bone([0.2, 0.2], [0.7, 0.6])
  weights[skeleton.INDEX["right_wrist"]] = 0.0
  assert heatmap.limb_maps(kp, 32, 32, weights=weights).numpy().max() == 0


def test_pose_maps_with_limbs_append_the_limb_channels():
  kp = np.random.default_rng(4).uniform(0.1, 0.9, (2, 3, 67, 3)).astype(np.float32)
  maps = heatmap.pose_heatmaps(kp, 32, radius=1.5, parts=True, limbs=True, line_width=1.2)
  assert maps.shape == (2, 3, 32, 32, heatmap.num_channels(True, True)) == (2, 3, 32, 32, 8)
  np.testing.assert_allclose(maps[..., :3], heatmap.pose_heatmaps(kp, 32, radius=1.5,
                                                                   parts=True), atol=1e-6)
  np.testing.assert_allclose(maps[..., 3:], heatmap.limb_maps(
      kp[..., :2], 32, 32, line_width=1.2, weights=kp[..., 2]), atol=1e-6)
  assert heatmap.num_channels(False, True) == 6


def test_limb_maps_have_gradients_and_export_to_onnx(tmp_path):
  import onnxruntime  # pylint: disable=g-import-not-at-top
  import tf2onnx  # pylint: disable=g-import-not-at-top
  kp = tf.Variable(np.random.default_rng(5).uniform(0.2, 0.8, (1, 2, 67, 3)).astype(np.float32))
  with tf.GradientTape() as tape:
    maps = heatmap.pose_heatmaps(kp, 24, parts=True, limbs=True)
    loss = tf.reduce_sum(maps * tf.random.stateless_uniform(maps.shape, [1, 2]))
  grad = tape.gradient(loss, kp).numpy()
  assert np.all(np.isfinite(grad)) and np.abs(grad[..., :2]).max() > 0
  spec = [tf.TensorSpec([1, None, 67, 3], tf.float32, name="keypoints")]
  path = str(tmp_path / "maps.onnx")
  function = tf.function(lambda k: heatmap.pose_heatmaps(k, 24, parts=True, limbs=True))
  tf2onnx.convert.from_function(function, input_signature=spec, opset=17, output_path=path)
  session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
  got = session.run(None, {"keypoints": kp.numpy()})[0]
  np.testing.assert_allclose(got, maps.numpy(), atol=1e-5)
