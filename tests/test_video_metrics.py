"""Tests of the video metrics a viewer would use: VGG-16 FID and the moving arm's sharpness and
motion, with known answers."""

import numpy as np
import pytest
from scipy import linalg, ndimage

from apvg_tf import metrics, skeleton
from apvg_tf.errors import InputError
from apvg_tf.evaluation import stu_eval
from configs import default


def _with_moments(rng, count, mean, cov):
  """count rows whose sample mean and covariance (ddof 1) are exactly `mean` and `cov`."""
  x = rng.standard_normal((count, len(mean)))
  x -= x.mean(0)
  values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))
  white = x @ vectors / np.sqrt(values)  # Sample covariance I.
  values, vectors = np.linalg.eigh(cov)
  return white @ (vectors * np.sqrt(values)).T + mean


def _reference_frechet(mu_a, cov_a, mu_b, cov_b):
  """|mu_a - mu_b|^2 + tr(A + B - 2 sqrtm(A B)), with SciPy's matrix square root."""
  cross = linalg.sqrtm(cov_a @ cov_b).real
  return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * cross))


# --------------------------------------------------------------------------- Frechet distance

def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
  rng = np.random.default_rng(0)
  mu_a, mu_b = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, 0.5])
  s_a, s_b = np.array([1.0, 4.0, 0.25, 2.0]), np.array([9.0, 1.0, 0.25, 0.5])
  a = _with_moments(rng, 300, mu_a, np.diag(s_a))
  b = _with_moments(rng, 200, mu_b, np.diag(s_b))
  # |mu_a - mu_b|^2 = 1 + 0 + 4 + 0 = 5; sum (sqrt s_a - sqrt s_b)^2 = 4 + 1 + 0 + 0.5 = 5.5.
  expected = np.sum((mu_a - mu_b) ** 2) + np.sum(s_a + s_b - 2 * np.sqrt(s_a * s_b))
  assert expected == pytest.approx(10.5)
  assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
  assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_matches_scipy_on_full_covariances():
  rng = np.random.default_rng(1)
  mixing_a, mixing_b = rng.standard_normal((2, 6, 6))
  cov_a, cov_b = mixing_a @ mixing_a.T, mixing_b @ mixing_b.T + np.eye(6)
  mu_a, mu_b = rng.standard_normal((2, 6))
  a, b = _with_moments(rng, 100, mu_a, cov_a), _with_moments(rng, 80, mu_b, cov_b)
  assert metrics.frechet_distance(a, b) == pytest.approx(
      _reference_frechet(mu_a, cov_a, mu_b, cov_b), rel=1e-8)


def test_frechet_distance_with_fewer_rows_than_dimensions():
  # 5 rows in 300 dimensions: both covariances are singular (rank 4). A shift by c leaves the
  # covariance as it is, so the distance is |c|^2 exactly; sqrtm-based FID code goes complex
  # or NaN here.
  rng = np.random.default_rng(2)
  a = rng.standard_normal((5, 300)) * 10
  shift = rng.standard_normal(300)
  scale = np.trace(np.cov(a, rowvar=False))
  assert abs(metrics.frechet_distance(a, a)) < 1e-6 * scale
  assert metrics.frechet_distance(a, a + shift) == pytest.approx(np.sum(shift ** 2),
                                                                 abs=1e-6 * scale)


# --------------------------------------------------------------------------- VGG-16 FID

@pytest.fixture(scope="module")
def extractor():
  return metrics.fid_feature_extractor()


def _frames(count, size=32, seed=0):
  """Smooth random colour frames (blobs, so the VGG sees shapes, not only noise)."""
  rng = np.random.default_rng(seed)
  x = ndimage.gaussian_filter(rng.random((count, size, size, 3)), (0, 2, 2, 0))
  x = (x - x.min()) / (x.max() - x.min())
  return np.round(255 * x).astype(np.uint8)


def test_vgg16_features_are_pooled_conv4_3_and_conv5_3(extractor):
  frames = _frames(3)
  features = metrics.vgg16_features(frames, extractor)
  assert features.shape == (3, metrics.FID_FEATURES) and features.dtype == np.float64
  assert np.all(features >= 0)  # Means of ReLU outputs.
  # Batched or not, each frame has the same features.
  np.testing.assert_allclose(metrics.vgg16_features(frames, extractor, batch=1), features,
                             rtol=1e-4, atol=1e-4)
  assert metrics.vgg16_features(frames[:0], extractor).shape == (0, metrics.FID_FEATURES)


def test_fid_vgg16_of_frames_with_themselves_is_zero(extractor):
  frames, others = _frames(4, seed=0), _frames(4, seed=1)
  features = metrics.vgg16_features(frames, extractor)
  scale = np.trace(np.cov(features, rowvar=False))  # The size of the terms that cancel.
  assert abs(metrics.fid_vgg16(frames, frames, extractor)) < 1e-6 * scale
  inverted = 255 - frames  # Other content: well above the rounding floor.
  assert metrics.fid_vgg16(frames, inverted, extractor) > 1e-2 * scale
  assert metrics.fid_vgg16(frames, others, extractor) == pytest.approx(
      metrics.fid_vgg16(others, frames, extractor), rel=1e-6)


def test_fid_vgg16_needs_two_frames_per_set(extractor):
  with pytest.raises(InputError, match="at least 2 frames"):
    metrics.fid_vgg16(_frames(1), _frames(3), extractor)


# --------------------------------------------------------------------------- the moving arm

def _keypoints(points, frames=1):
  """float [frames, 67, 3]: the given {name: (x, y, confidence)}, every other point missing."""
  kp = np.zeros((frames, skeleton.NUM_KEYPOINTS, 3), np.float32)
  for name, value in points.items():
    kp[:, skeleton.INDEX[name]] = value
  return kp


def test_arm_box_covers_the_bow_arm_from_its_seen_points():
  kp = _keypoints({"right_elbow": (0.25, 0.5, 1.0), "right_wrist": (0.5, 0.25, 0.9),
                   "right_hand_index_4": (0.6, 0.3, 0.5),
                   "right_hand_wrist": (0.0, 0.0, 0.0),  # Missing: ignored.
                   "right_shoulder": (0.9, 0.9, 1.0),  # Not part of the arm's box.
                   "left_wrist": (0.95, 0.95, 1.0)},  # The stopping arm.
                  frames=2)
  kp[1, skeleton.INDEX["right_wrist"]] = (0.5, 0.125, 1.0)  # The second frame reaches higher.
  # x: 0.25 * 64 = 16 - pad 4 = 12 .. 0.6 * 64 = 38.4 + 4 -> pixel 42, so x1 = 43.
  # y: 0.125 * 64 = 8 - 4 = 4 .. 0.5 * 64 = 32 + 4 = 36 -> pixel 36, so y1 = 37.
  assert metrics.arm_box(kp, "cello", 64, pad=4 / 64) == (12, 4, 43, 37)
  assert metrics.arm_box(kp, "vc", 64, pad=4 / 64) == (12, 4, 43, 37)  # URMP's name.
  assert metrics.arm_box(kp, "trombone", 64, pad=4 / 64) == (12, 4, 43, 37)  # The slide arm.
  # A flautist moves both hands: the left wrist joins the box (0.95 * 64 = 60.8 -> 64).
  assert metrics.arm_box(kp, "flute", 64, pad=4 / 64) == (12, 4, 64, 64)
  # Clipped to the frame; no seen point of the arm: no box.
  assert metrics.arm_box(kp, "cello", 64, pad=0.5) == (0, 0, 64, 64)
  assert metrics.arm_box(_keypoints({"left_wrist": (0.5, 0.5, 1.0)}), "cello", 64) is None
  with pytest.raises(InputError, match="unknown instrument"):
    metrics.arm_box(kp, "kazoo", 64)


def _step_and_ramp(size=16):
  """A vertical step edge 0 -> 255 and the same rise as a ramp over 5 pixels of 51."""
  step = np.zeros((1, size, size, 3), np.uint8)
  step[:, :, 8:] = 255
  ramp = np.zeros_like(step)
  for k in range(1, 6):
    ramp[:, :, 5 + k] = 51 * k  # Columns 6..10: 51, 102, ..., 255.
  ramp[:, :, 11:] = 255
  return step, ramp


def test_sharpness_of_a_step_edge_over_a_ramp_is_its_width():
  step, ramp = _step_and_ramp()
  box = (0, 0, 16, 16)
  # Per row: one difference of 1 (step) against five of 1/5 (ramp): 1 / (5 / 25) = 5.
  assert metrics.sharpness_arm(step, ramp, box) == pytest.approx(5.0, rel=1e-12)
  assert metrics.gradient_energy(step, box) == (pytest.approx(16.0), 256)
  assert metrics.sharpness_arm(step, step, box) == 1.0
  # Only the box counts: noise outside it changes nothing.
  noisy = step.copy()
  noisy[:, :, :4] = np.random.default_rng(0).integers(0, 256, noisy[:, :, :4].shape)
  assert metrics.sharpness_arm(noisy, step, (4, 0, 16, 16)) == 1.0


def test_a_blurred_copy_is_less_sharp():
  image = _frames(2, size=48, seed=3)
  image = np.where(image > 127, 255, 0).astype(np.uint8)  # Hard edges.
  blurred = np.round(ndimage.gaussian_filter(image.astype(np.float64), (0, 1.5, 1.5, 0)))
  ratio = metrics.sharpness_arm(blurred.astype(np.uint8), image, (8, 8, 40, 40))
  assert 0 < ratio < 0.5


def test_motion_energy_known_values():
  box = (2, 2, 10, 10)
  rng = np.random.default_rng(0)
  clip = rng.integers(0, 256, (6, 12, 12, 3), np.uint8)
  still = np.repeat(clip[:1], 6, axis=0)
  assert metrics.temporal_std(still, box) == (0.0, 6 * 64)
  assert metrics.motion_energy_arm(still, clip, box) == 0.0
  assert metrics.motion_energy_arm(clip, clip, box) == 1.0
  # Grey flashing 0/255 has a per-pixel std of 0.5; flashing 0/51 of 0.1: the ratio is 0.2.
  flash = np.zeros((4, 12, 12, 3), np.uint8)
  flash[1::2] = 255
  dim = (flash // 5).astype(np.uint8)
  total, count = metrics.temporal_std(flash, box)
  assert total / count == pytest.approx(0.5, rel=1e-12)
  assert metrics.motion_energy_arm(dim, flash, box) == pytest.approx(0.2, rel=1e-12)
  assert np.isnan(metrics.motion_energy_arm(clip, still, box))  # Nothing real to compare.


def test_stu_evaluation_refuses_fewer_than_two_fid_frames():
  config = default.get_config()
  config.eval.fid_max_frames = 1
  with pytest.raises(InputError, match="fid_max_frames is 1"):
    stu_eval.evaluate_stu(None, config, "test")  # Refused before anything is read.
