"""Tests of the video metrics a viewer would use: VGG-16 FID, the moving arm's sharpness and
motion, and whether each frame draws its pose (pose_render), with known answers."""

import json

import numpy as np
import pytest
import tensorflow as tf
from scipy import linalg, ndimage

from apvg_tf import data, metrics, skeleton
from apvg_tf.errors import InputError
from apvg_tf.evaluation import stu_eval
from apvg_tf.synth import render
from apvg_tf.synth.dataset import build_synth_dataset
from configs import default
from conftest import debug_config, write_random_dataset


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


# --------------------------------------------------------------------------- pose_render

# The tiny virtual-performer dataset: 12 s of cello at 64 px in three pieces, one per split
# (the test split: one clip of 120 frames); built in a few seconds.
SYNTH_RESOLUTION = 64
# Frames of the test clip the pure-function test scores (drawing costs ~8 ms a frame).
PART_FRAMES = 60
# The stand-in KP's poses are the real ones of 0.2 s earlier (6 frames, rolled over the clip):
# the bow arm is elsewhere, the body nearly where it was. Against the drawing of those poses
# the real frames of the test clip score 32 to 36 dB whole and 19.5 to 23 dB in the arm box,
# SSIM 0.93 to 0.95 (measured: 60 and 120 frames, 64 and 32 px); their floor is exact.
LAG = 6
MAX_LAGGED_PSNR = {"pose_render_psnr": 45.0, "pose_render_psnr_arm": 30.0}


@pytest.fixture(scope="module")
def synth_dataset(tmp_path_factory):
  """(dataset folder, its test clip) of a tiny virtual-performer dataset."""
  path = str(tmp_path_factory.mktemp("synth") / "data")
  build_synth_dataset(path, instrument="cello", minutes=0.2, resolution=SYNTH_RESOLUTION,
                      fps=30.0, seed=3, audio_backend="harmonic", workers=0, progress=False,
                      command="test")
  return path, next(data.read_clips(path, "test"))


def _lagged(keypoints):
  return np.roll(keypoints, LAG, axis=0)


def _drawn(keypoints, resolution):
  """The dataset's drawing of a pose track, resized as evaluation resizes the real frames."""
  frames = render.draw_pose(keypoints, "cello", SYNTH_RESOLUTION, performer=0)
  return data.resize_frames(frames, resolution)


def _pooled(parts):
  """pose_render_parts' terms of one clip as the split's numbers."""
  per_frame, box_totals = parts
  out = {k: float(np.mean(v)) for k, v in per_frame.items()}
  out.update({k: metrics.psnr_from_squared_error(*v) for k, v in box_totals.items()})
  return out


def test_psnr_from_squared_error_known_values():
  real = np.zeros((2, 4, 4, 3), np.uint8)
  off = real.copy()
  off[0, 1, 2] = 51  # One pixel, three values off by 51, inside the box below.
  # 3 x 51^2 over 2 x 16 x 3 values: MSE 51^2 / 32 = 255^2 / 800, so 10 log10(800) dB.
  assert metrics.squared_error(off, real) == (3 * 51.0**2, 96)
  assert metrics.psnr_from_squared_error(*metrics.squared_error(off, real)) == pytest.approx(
      10 * np.log10(800), rel=1e-12)
  # In the box (x 1..3, y 0..2): 2 frames x 2 x 2 pixels x 3 values.
  assert metrics.squared_error(off, real, (1, 0, 3, 2)) == (3 * 51.0**2, 24)
  assert metrics.squared_error(off, real, (0, 2, 4, 4)) == (0.0, 48)
  assert metrics.psnr_from_squared_error(0.0, 48) == metrics.PSNR_CEILING


@pytest.mark.parametrize("resolution", [SYNTH_RESOLUTION, 32])
def test_pose_render_scores_the_pose_the_video_was_generated_from(synth_dataset, resolution):
  _, clip = synth_dataset
  keypoints = clip["keypoints"][:PART_FRAMES]
  real = data.resize_frames(clip["frames"][:PART_FRAMES], resolution)
  box = metrics.arm_box(keypoints, "cello", resolution)
  lagged = _lagged(keypoints)
  score = lambda video, kp: _pooled(stu_eval.pose_render_parts(
      {"": video}, kp, real, keypoints, instrument="cello", performer=0, box=box,
      drawn_resolution=SYNTH_RESOLUTION))
  # A renderer that draws the lagged poses exactly, and one that returns the real frames
  # whatever its poses: the first follows its poses, the second does not. Scored against
  # the real keypoints instead, both verdicts would flip.
  exact, ignores = score(_drawn(lagged, resolution), lagged), score(real, lagged)
  # The dataset's frames are lossless PNGs of this drawing: the floor is exact, also after
  # resizing (drawn directly at 32 px, the room's texture differs and it would be 27 dB).
  for name in ("pose_render_psnr_floor", "pose_render_psnr_arm_floor"):
    assert exact[name] == metrics.PSNR_CEILING
  assert exact["pose_render_ssim_floor"] == pytest.approx(1.0)
  for name in ("pose_render_psnr", "pose_render_psnr_arm", "pose_render_ssim"):
    assert exact[name] >= exact[name + "_floor"]
  for name, bound in MAX_LAGGED_PSNR.items():
    assert ignores[name] < bound
  assert ignores["pose_render_ssim"] < exact["pose_render_ssim_floor"] - 0.02
  # Without the generated poses, only the floors.
  per_frame, box_totals = stu_eval.pose_render_parts(
      {"": real}, None, real, keypoints, instrument="cello", performer=0, box=None,
      drawn_resolution=SYNTH_RESOLUTION)
  assert sorted(per_frame) == ["pose_render_psnr_floor", "pose_render_ssim_floor"]
  assert not box_totals


class _Replay(tf.Module):
  """A stand-in PerformanceGenerator: replays one clip's frames and poses (no lookahead).

  With given keypoints (the oracle) it returns them as its poses, as the real one does.
  """

  def __init__(self, frames, keypoints, coarse=None):
    super().__init__()
    self.table = {"frames": tf.constant(frames, tf.float32) / 255.0,
                  "keypoints": tf.constant(keypoints[..., :2], tf.float32)}
    if coarse is not None:
      self.table["coarse"] = tf.constant(coarse, tf.float32) / 255.0
    self.kp, self.lookahead, self.z_dim = "replayed", 0, 1

  def initial_state(self, batch_size):
    return {"position": tf.zeros([batch_size], tf.int32)}

  def step(self, audio, state, noise=None, keypoints=None):
    del noise
    index = state["position"][0] + tf.range(tf.shape(audio)[1])
    out = {k: tf.gather(v, index)[None] for k, v in self.table.items()}
    if keypoints is not None:
      out["keypoints"] = tf.cast(keypoints, tf.float32)[..., :2]
    return out, {"position": state["position"] + tf.shape(audio)[1]}


def _eval_config(dataset, resolution, **overrides):
  config = debug_config(dataset)
  config.resolution = resolution
  config.eval.max_clips, config.eval.fid_max_frames = 1, 4
  for key, value in overrides.items():
    config.eval[key] = value
  return config


def test_evaluate_stu_reports_pose_render_on_the_virtual_performer(synth_dataset):
  path, clip = synth_dataset
  resolution = 32  # Below the dataset's 64 px: the drawings are resized as the frames are.
  real = data.resize_frames(clip["frames"], resolution)
  lagged = _lagged(clip["keypoints"])
  # The final video draws the KP's (lagged) poses; the coarse one is the real video.
  generator = _Replay(_drawn(lagged, resolution), lagged, coarse=real)
  result = stu_eval.evaluate_stu(generator, _eval_config(path, resolution), "test")
  assert result["clips"] == 1 and result["frames"] == len(real)
  for name in ("pose_render_psnr", "pose_render_psnr_arm"):
    assert result[name] == result[name + "_floor"] == metrics.PSNR_CEILING
    assert result[name + "_coarse"] < MAX_LAGGED_PSNR[name]
  assert result["pose_render_ssim"] == pytest.approx(1.0)
  assert result["pose_render_ssim_coarse"] < result["pose_render_ssim_floor"] - 0.02
  # The real video's PSNR says the opposite: it rewards the coarse video, not the pose.
  assert result["psnr"] < result["psnr_coarse"]
  for name in ("psnr", "ssim", "flicker", "fid_vgg16", "sharpness_arm", "motion_energy_arm"):
    assert name in result and name + "_coarse" in result
  # The oracle: the STU is given the real poses, which the replayed real frames draw.
  oracle = stu_eval.evaluate_stu(_Replay(real, lagged), _eval_config(
      path, resolution, stu_keypoints="real"), "test")
  assert oracle["pose_render_psnr"] == oracle["pose_render_psnr_arm"] == metrics.PSNR_CEILING
  assert "pose_render_psnr_coarse" not in oracle
  # Identical frames report the ceiling, not infinity: metrics.json stays standard JSON.
  json.dumps({k: v for k, v in result.items() if k.startswith("pose_render")}, allow_nan=False)


def test_evaluate_stu_has_no_pose_render_on_other_datasets(tmp_path):
  path = write_random_dataset(tmp_path / "data", splits=("train", "test"), seconds=1.0)
  clip = next(data.read_clips(path, "test"))
  result = stu_eval.evaluate_stu(_Replay(clip["frames"], clip["keypoints"]),
                                 _eval_config(path, 32), "test")
  assert "psnr" in result and not [k for k in result if k.startswith("pose_render")]
