"""Evaluation of the KHP stage: keypoint distance, its baselines, beat alignment, and the motion
metrics (FID_k, FID_g, diversity, strokes, onsets, travel: `motion_metrics`)."""

import os

import numpy as np

from apvg_tf import data, metrics, skeleton, streaming, video_io
from apvg_tf.errors import InputError
from apvg_tf.evaluation import motion_events, motion_metrics, sync_eval

PARTS = ("body", "left_hand", "right_hand")
# The motion metrics reported for the baselines too (suffixed _mean_pose, _nn).
BASELINE_MOTION_KEYS = ("fid_k", "fid_g", "div_k", "div_g", "stroke_f1", "onset_hit",
                        "travel_ratio")


def _pooled(pairs):
  total, count = np.sum([p[0] for p in pairs]), np.sum([p[1] for p in pairs])
  return float(total / max(count, 1))


def _train_reference(dataset_dir, manifest, max_frames=20000):
  """Audio windows and keypoints of training frames (subsampled to `max_frames`)."""
  windows, keypoints = [], []
  for clip in data.read_clips(dataset_dir, "train", with_frames=False):
    windows.append(data.clip_windows(clip, manifest))
    keypoints.append(clip["keypoints"])
  windows, keypoints = np.concatenate(windows), np.concatenate(keypoints)
  stride = max(1, int(np.ceil(len(windows) / max_frames)))
  return windows[::stride].reshape(-1, windows[0].size), keypoints[::stride]


def skeleton_frames(real, pred, frames=None, size=256):
  """Side-by-side frames: real skeleton (left) and predicted skeleton (right).

  Args:
    real: float [T, 67, 3] ground-truth keypoints.
    pred: float [T, 67, 2] predicted keypoints.
    frames: optional uint8 [T, R, R, 3] video to draw on (default: a dark background).
    size: side of each half, in pixels.

  Yields:
    uint8 [size, 2 * size, 3] frames.
  """
  import cv2  # pylint: disable=g-import-not-at-top
  blank = np.full((size, size, 3), 24, np.uint8)
  for t in range(len(real)):
    base = blank if frames is None else cv2.resize(frames[t], (size, size),
                                                   interpolation=cv2.INTER_AREA)
    yield np.concatenate([skeleton.draw_skeleton(base, real[t], thickness=2, radius=2),
                          skeleton.draw_skeleton(base, pred[t], thickness=2, radius=2)], 1)


def evaluate_khp(model, config, split, out_dir=None, evaluator=None):
  """Computes the KHP metrics of `model` on a split.

  Args:
    model: a trained KeypointPredictor.
    config: the run's config (dataset_dir, eval.chunk_frames, eval.max_clips).
    split: the split to evaluate.
    out_dir: if set, predictions.npz and the Fig. 4 PCA plot are written there, and with
      `config.eval.video` also `skeletons.mp4`: real | predicted skeletons over the first
      clip's frames, with its music.
    evaluator: optional trained SyncEvaluator: adds sync_score (and _top5, margin) and
      motion_fd for the prediction, the ground truth (sync_score_real ...), the mean pose and
      the nearest neighbour (sync_score_mean_pose, sync_score_nn ...); see sync_eval.

  Returns:
    dict of metrics (DESIGN.md names): kp_distance (and per part), kp_distance_mean_pose,
    kp_distance_nn, beat_align, beat_align_real, frames, clips, and the motion metrics of
    `motion_metrics.motion_metrics` (fid_k, fid_g, div_k, div_g with their _real floors,
    stroke_f1 with precision and recall, onset_hit, onset_hit_real, travel_ratio), the
    baselines' with suffixes _mean_pose and _nn (`_motion_scores`).

  Raises:
    InputError: if the split has no clips.
  """
  manifest = data.load_manifest(config.dataset_dir)
  data.split_clips(manifest, split)  # InputError if the split is missing or empty.
  mean_pose = np.asarray(manifest["mean_pose"], np.float32)[:, :2]
  train_windows, train_keypoints = _train_reference(config.dataset_dir, manifest)
  scores = {name: {part: [] for part in (None,) + PARTS} for name in ("pred", "mean", "nn")}
  beat = {"pred": [], "real": []}
  saved, frames, clips = {}, 0, 0
  sync_windows, motions = [], {"": [], "_real": [], "_mean_pose": [], "_nn": []}
  tracks, all_onsets = {"pred": [], "mean": [], "nn": [], "real": []}, []
  for clip in data.read_clips(config.dataset_dir, split, with_frames=False):
    if config.eval.max_clips and clips >= config.eval.max_clips:
      break
    heard = data.clip_windows(clip, manifest, model.lookahead_frames)
    real = clip["keypoints"]
    windows = heard[:len(real)]
    candidates = {
        "pred": streaming.predict_keypoints(model, heard, config.eval.chunk_frames),
        "mean": np.broadcast_to(mean_pose, real[..., :2].shape),
        "nn": train_keypoints[metrics.nearest_neighbour_indices(
            windows.reshape(len(windows), -1), train_windows)][..., :2],
    }
    for name, pred in candidates.items():
      for part in scores[name]:
        scores[name][part].append(metrics.keypoint_distance(pred, real, part))
    onsets = metrics.audio_onsets(clip["waveform"], manifest["audio"]["sample_rate"])
    fps = clip["fps"]
    for name, track in (*candidates.items(), ("real", real)):
      tracks[name].append(track)
    all_onsets.append(onsets)
    beat["pred"].append(metrics.beat_align_score(
        metrics.motion_beats(candidates["pred"], fps) / fps, onsets))
    beat["real"].append(metrics.beat_align_score(metrics.motion_beats(real, fps) / fps, onsets))
    if config.eval.video and out_dir and not saved:
      os.makedirs(out_dir, exist_ok=True)
      frames_of_clip = next(c["frames"] for c in data.read_clips(config.dataset_dir, split)
                            if c["clip_id"] == clip["clip_id"])
      video_io.write_video(os.path.join(out_dir, "skeletons.mp4"),
                           skeleton_frames(real, candidates["pred"], frames_of_clip),
                           clip["fps"], audio=clip["waveform"],
                           sample_rate=manifest["audio"]["sample_rate"])
    saved[clip["clip_id"]] = (candidates["pred"], real)
    if evaluator is not None:
      sync_windows.append(windows)
      motions["_real"].append(real)
      for name, suffix in (("pred", ""), ("mean", "_mean_pose"), ("nn", "_nn")):
        motions[suffix].append(metrics.with_confidence(candidates[name], real))
    frames += len(real)
    clips += 1
  if not clips:
    raise InputError(f"split {split!r} has no clips to evaluate")
  result = {"kp_distance": _pooled(scores["pred"][None]),
            "kp_distance_mean_pose": _pooled(scores["mean"][None]),
            "kp_distance_nn": _pooled(scores["nn"][None])}
  for part in PARTS:
    for name, key in (("pred", "kp_distance"), ("mean", "kp_distance_mean_pose"),
                      ("nn", "kp_distance_nn")):
      result[f"{key}_{part}"] = _pooled(scores[name][part])
  result.update(beat_align=float(np.mean(beat["pred"])),
                beat_align_real=float(np.mean(beat["real"])), frames=frames, clips=clips)
  result.update(_motion_scores(tracks, all_onsets, fps, manifest["instrument"]))
  if evaluator is not None:
    result.update(sync_eval.sync_metrics(evaluator, sync_windows, motions, config))
  if out_dir:
    os.makedirs(out_dir, exist_ok=True)
    np.savez_compressed(os.path.join(out_dir, "predictions.npz"),
                        **{f"{k}/pred": v[0] for k, v in saved.items()},
                        **{f"{k}/real": v[1] for k, v in saved.items()})
    first = next(iter(saved))
    plot_pca(saved[first][0], saved[first][1], os.path.join(out_dir, "pca_fig4.png"),
             title=f"{manifest['instrument']}: {first}")
  return result


def _motion_scores(tracks, onsets, fps, instrument):
  """`motion_metrics` of the prediction, and of the baselines with suffixes _mean_pose, _nn.

  Args:
    tracks: {"pred", "mean", "nn", "real"}: lists of float [T_c, 67, 2 or 3], one per clip.
    onsets: list of float [O_c] note onset times in seconds.
    fps: frames per second.
    instrument: the dataset's instrument.

  Returns:
    dict of floats, without the undefined ones (metrics.json stays standard JSON): clips too
    short for two segments of `motion_metrics.SEGMENT_FRAMES` give no covariance (no FID or
    diversity), winds other than the trombone have no strokes, clips without onsets no
    onset_hit.
  """
  whole = len(motion_metrics.segments(tracks["real"])) >= 2
  score = motion_metrics.motion_metrics if whole else motion_events.event_metrics
  result = score(tracks["pred"], tracks["real"], onsets, fps, instrument)
  for name, suffix in (("mean", "_mean_pose"), ("nn", "_nn")):
    baseline = score(tracks[name], tracks["real"], onsets, fps, instrument)
    result.update({key + suffix: value for key, value in baseline.items()
                   if key in BASELINE_MOTION_KEYS})
  return {key: value for key, value in result.items() if np.isfinite(value)}


def plot_pca(pred, real, path, title=""):
  """The paper's Fig. 4 as a PNG: 1-D PCA of predicted and real keypoints over time.

  One panel for all keypoints (as in the paper) and one per part, since on an instrument the
  parts differ in how much the sound determines them (the bow's direction far less than
  the left hand's place on the neck).
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  panels = [("all keypoints", slice(None))] + [(name.replace("_", " "), skeleton.PARTS[name])
                                               for name in PARTS]
  fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.2 * len(panels)), sharex=True)
  for ax, (name, part) in zip(axes, panels):
    p, r = metrics.pca_1d(pred[:, part], real[:, part])
    ax.plot(r, color="tab:green", label="ground truth", linewidth=1)
    ax.plot(p, color="tab:red", label="predicted", linewidth=1)
    ax.set_ylabel(f"PCA-1: {name}")
  axes[0].set_title(title)
  axes[0].legend(loc="upper right")
  axes[-1].set_xlabel("frame")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
