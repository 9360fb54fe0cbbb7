"""The metrics of `metrics.json` (DESIGN.md, "Metrics").

Keypoint metrics take float [T, 67, 2] predictions and [T, 67, 3] ground truth (confidence
in the last column); points with confidence 0 never count. Video metrics take uint8
[T, R, R, 3] generated and real frames (PSNR and SSIM are TensorFlow's).
"""

import numpy as np
import tensorflow as tf
from scipy import ndimage, signal

from apvg_tf import skeleton
from apvg_tf.errors import InputError


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
