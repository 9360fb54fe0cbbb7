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
