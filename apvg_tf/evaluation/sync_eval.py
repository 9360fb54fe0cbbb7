"""Sync evaluation (`sync_score`: cross-modal retrieval) and `motion_fd`.

A test split is cut into non-overlapping sequences of `config.sync.sequence_frames` frames. For
each sequence i, the trained evaluator (apvg_tf/models/sync_evaluator.py) ranks its own audio
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

from apvg_tf import data, metrics


def sync_metrics(evaluator, windows, motions, config):
  """sync_score (at 1, at 5, margin) and motion_fd of several motion sources on one split.

  Args:
    evaluator: a trained SyncEvaluator.
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
  audio = metrics.cut_sequences(windows, length)
  sets = metrics.candidate_sets(len(audio), config.sync.candidates, seed=config.seed)
  audio_embeddings = metrics.embed(evaluator.embed_audio, audio)
  result = {}
  features = {}
  for suffix, clips in motions.items():
    motion = metrics.cut_sequences(clips, length)
    result.update(metrics.retrieval_metrics(
        audio_embeddings, metrics.embed(evaluator.embed_motion, motion),
                                    sets, suffix))
    # motion_fd on the encoder's embedding before normalisation, every quarter sequence.
    features[suffix] = metrics.embed(lambda k: evaluator.motion_encoder(k)[0],
                             metrics.cut_sequences(clips, length, max(1, length // 4)))
  for suffix, values in features.items():
    if suffix != "_real":
      result[f"motion_fd{suffix}"] = metrics.frechet_distance(values, features["_real"])
  return result


def evaluate_sync(evaluator, config, split, out_dir=None):
  """The evaluator's own test: does it find the true music of real motion on held-out pieces?

  Args:
    evaluator: a trained SyncEvaluator.
    config: the run's config.
    split: the split to score (its pieces must not be in the training split).
    out_dir: unused (the metrics go to metrics.json).

  Returns:
    dict: sync_score_real (and _top5, margin), the same for the mean pose
    (sync_score_mean_pose: chance), frames and clips.
  """
  del out_dir
  manifest = data.load_manifest(config.dataset_dir)
  data.split_clips(manifest, split)  # InputError if the split is missing or empty.
  mean_pose = np.asarray(manifest["mean_pose"], np.float32)
  windows, real, mean = [], [], []
  for clip in data.read_clips(config.dataset_dir, split, with_frames=False):
    windows.append(data.clip_windows(clip, manifest))
    real.append(clip["keypoints"])
    mean.append(metrics.with_confidence(np.broadcast_to(mean_pose[:, :2], real[-1][..., :2].shape),
                                real[-1]))
  result = sync_metrics(evaluator, windows, {"_real": real, "_mean_pose": mean}, config)
  return {**result, "frames": int(sum(len(k) for k in real)), "clips": len(real)}

