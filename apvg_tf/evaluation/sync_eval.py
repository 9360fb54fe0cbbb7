"""Cross-modal evaluation (`sync_score`) and the motion-statistics distance (`motion_fd`).

A test split is cut into non-overlapping sequences of `config.sync.sequence_frames` frames. For
each sequence i, the trained evaluator (apvg_tf/models/cross_modal.py) ranks its own audio
among N = `config.sync.candidates` candidates (its own and N - 1 others drawn from the other
sequences, the same draw for every motion source) by the cosine between the motion's and each
audio's embedding:
  sync_score       accuracy at 1: the true audio ranks first (chance 1 / N)
  sync_score_top5  accuracy at 5
  sync_margin      mean over i of cos(m_i, a_i) - mean_{j != i} cos(m_i, a_j)
Equal cosines (candidates whose audio embeddings coincide, e.g. silences) are ties, broken
at random in expectation: the true audio's place is uniform among the tied ones. A motion
that is the same for all music (the mean pose) scores chance: the audio nearest to its one
embedding is the true one for about 1 / N of the sequences.
`motion_fd` is the Frechet distance between Gaussians fitted to the motion encoder's
embeddings of generated and of real sequences (overlapping, every quarter sequence).
"""

import numpy as np

from apvg_tf import data
from apvg_tf.errors import InputError


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


def sync_metrics(evaluator, windows, motions, config):
  """sync_score (at 1, at 5, margin) and motion_fd of several motion sources on one split.

  Args:
    evaluator: a trained CrossModalEvaluator.
    windows: list of float32 [T_c, 84, 87] normalised audio windows, one per clip.
    motions: dict suffix -> list of float32 [T_c, P, 3] keypoints (with confidences), one per
      clip; suffix "_real" is the ground truth the others' motion_fd is measured against.
    config: the run's config (`config.sync`).

  Returns:
    dict: for each suffix s, sync_score{s}, sync_score_top5{s}, sync_margin{s}, and, for
    every s but "_real", motion_fd{s}.

  Raises:
    InputError: if the split has fewer sequences than candidates.
  """
  length = config.sync.sequence_frames
  audio = cut_sequences(windows, length)
  sets = candidate_sets(len(audio), config.sync.candidates, seed=config.seed)
  audio_embeddings = embed(evaluator.embed_audio, audio)
  result = {}
  features = {}
  for suffix, clips in motions.items():
    motion = cut_sequences(clips, length)
    result.update(retrieval_metrics(audio_embeddings, embed(evaluator.embed_motion, motion),
                                    sets, suffix))
    # motion_fd on the encoder's embedding before normalisation, every quarter sequence.
    features[suffix] = embed(lambda k: evaluator.motion_encoder(k)[0],
                             cut_sequences(clips, length, max(1, length // 4)))
  for suffix, values in features.items():
    if suffix != "_real":
      result[f"motion_fd{suffix}"] = frechet_distance(values, features["_real"])
  return result


def evaluate_sync(evaluator, config, split, out_dir=None):
  """The evaluator's own test: does it find the true music of real motion on held-out pieces?

  Args:
    evaluator: a trained CrossModalEvaluator.
    config: the run's config.
    split: the split to score (its pieces must not be in the training split).
    out_dir: unused (the metrics go to metrics.json).

  Returns:
    dict: sync_score_real (and _top5, margin), the same for the mean pose
    (sync_score_mean_pose: chance), frames and clips.
  """
  del out_dir
  from apvg_tf.evaluation import khp_eval  # pylint: disable=g-import-not-at-top  (cycle)
  manifest = data.load_manifest(config.dataset_dir)
  data.split_clips(manifest, split)  # InputError if the split is missing or empty.
  mean_pose = np.asarray(manifest["mean_pose"], np.float32)
  windows, real, mean = [], [], []
  for clip in data.read_clips(config.dataset_dir, split, with_frames=False):
    windows.append(khp_eval.clip_windows(clip, manifest))
    real.append(clip["keypoints"])
    mean.append(with_confidence(np.broadcast_to(mean_pose[:, :2], real[-1][..., :2].shape),
                                real[-1]))
  result = sync_metrics(evaluator, windows, {"_real": real, "_mean_pose": mean}, config)
  return {**result, "frames": int(sum(len(k) for k in real)), "clips": len(real)}


def with_confidence(coordinates, real):
  """Predicted [T, P, 2] with the real keypoints' confidences [T, P, 3]: the same points count."""
  return np.concatenate([coordinates, real[..., 2:3]], -1).astype(np.float32)
