"""Evaluation of the CVG stage: coarse-video PSNR, SSIM and flicker, baselines, drift, preview.

Each clip of the split is generated autoregressively, chunk by chunk (the recurrent state,
including the previous frame, carried over), from the configured first frame: frame t of the
coarse video is compared with real frame t. Metrics (frames at `config.resolution`, values in
[0, 1] for flicker; PSNR and SSIM from tf.image with max value 255, averaged over frames):
  psnr, ssim              the coarse video
  flicker                 mean |(g_t - g_{t-1}) - (r_t - r_{t-1})| over pixels and steps
  psnr_mean_frame         the mean training frame, shown for every frame   (and ssim_...)
  psnr_nn_frame           the training frame whose audio window is nearest (and ssim_...)
  psnr_knn_mean_frame     the mean of the `cvg.eval_knn_frames` training frames whose audio
                          windows are nearest (and ssim_...): a non-parametric estimate of
                          the frame's conditional mean given its audio window, which is what
                          an audio-driven model trained with an L2 loss converges to; absent
                          if eval_knn_frames < 2
  psnr_rollout_first100   PSNR of frames 1-100 and 200-300 of the rollouts of clips with at
  psnr_rollout_last100    least 300 frames (drift); None if no clip is that long
"""

import os

import numpy as np

from apvg_tf import data, metrics, streaming, video_io
from apvg_tf.errors import InputError

ROLLOUT_FRAMES = 300


def _clips(config, split, with_frames):
  for index, clip in enumerate(data.read_clips(config.dataset_dir, split, with_frames)):
    if config.eval.max_clips and index >= config.eval.max_clips:
      return
    yield clip


def _train_reference(config, manifest):
  """Audio windows of training frames (strided to `cvg.eval_reference_frames`) and their ids.

  Returns:
    (float32 [N, 84 * 87] windows, int [N, 2] (train clip index, frame index)).
  """
  clips = data.split_clips(manifest, "train")
  total = sum(c["num_frames"] for c in clips)
  stride = max(1, int(np.ceil(total / max(config.cvg.eval_reference_frames, 1))))
  windows, ids = [], []
  for index, clip in enumerate(data.read_clips(config.dataset_dir, "train", with_frames=False)):
    w = data.clip_windows(clip, manifest)
    frames = np.arange(0, len(w), stride)
    windows.append(w[frames].reshape(len(frames), -1))
    ids.append(np.stack([np.full_like(frames, index), frames], 1))
  return np.concatenate(windows), np.concatenate(ids)


def train_frames(config, neighbours):
  """The mean training frame, and per evaluated clip its nearest and k-nearest-mean frames.

  Each training clip is decoded once; the k-nearest means are sums of sparse rows (one
  sparse matrix product per training clip and evaluated clip), so no reference frame is
  kept beyond its clip.

  Args:
    config: the run's config.
    neighbours: {clip_id: int [T, K, 2]} (train clip index, frame index) of each frame's K
      nearest training frames, nearest first.

  Returns:
    (float64 [R, R, 3] mean frame in [0, 255],
     {clip_id: uint8 [T, R, R, 3] the nearest frames},
     {clip_id: uint8 [T, R, R, 3] the means of the K nearest frames}).
  """
  import scipy.sparse  # pylint: disable=g-import-not-at-top  (librosa's dependency)
  shape = (config.resolution, config.resolution, 3)
  nearest = {c: np.zeros((len(n),) + shape, np.uint8) for c, n in neighbours.items()}
  sums = {c: np.zeros((len(n), int(np.prod(shape))), np.float32) for c, n in neighbours.items()}
  total, count = 0.0, 0
  for index, clip in enumerate(data.read_clips(config.dataset_dir, "train")):
    frames = data.resize_frames(clip["frames"], config.resolution)
    total = total + frames.astype(np.float64).sum(0)
    count += len(frames)
    flat = frames.reshape(len(frames), -1).astype(np.float32)
    for clip_id, ids in neighbours.items():
      first = ids[:, 0, 0] == index
      nearest[clip_id][first] = frames[ids[first, 0, 1]]
      rows, cols = np.nonzero(ids[..., 0] == index)
      if len(rows):
        weights = scipy.sparse.csr_matrix(
            (np.full(len(rows), 1.0 / ids.shape[1], np.float32), (rows, ids[rows, cols, 1])),
            shape=(len(ids), len(frames)))
        sums[clip_id] += weights @ flat
  means = {c: np.clip(np.round(v), 0, 255).astype(np.uint8).reshape((-1,) + shape)
           for c, v in sums.items()}
  return total / count, nearest, means


def write_preview(path, real, generated, waveform, fps, sample_rate):
  """An mp4 of real frames (left) and generated ones (right; any width), with the music."""
  samples = int(round(len(real) / fps * sample_rate))
  video_io.write_video(path, np.concatenate([real, generated], 2), fps,
                       audio=np.asarray(waveform[:samples], np.float32), sample_rate=sample_rate)


def evaluate_cvg(model, config, split, out_dir=None):
  """Computes the CVG metrics of `model` on a split.

  Args:
    model: a trained CoarseVideoGenerator (its stored first frame starts every rollout).
    config: the run's config (dataset_dir, resolution, seed, eval.chunk_frames,
      eval.max_clips, cvg.eval_reference_frames, cvg.eval_preview_seconds).
    split: the split to evaluate.
    out_dir: if set, `preview.mp4` (real | coarse, with the music) of the first clip is
      written there.

  Returns:
    dict: psnr, ssim, flicker, psnr_mean_frame, ssim_mean_frame, psnr_nn_frame,
    ssim_nn_frame, psnr_knn_mean_frame, ssim_knn_mean_frame (if cvg.eval_knn_frames > 1),
    psnr_rollout_first100, psnr_rollout_last100, rollout_clips, frames, clips.

  Raises:
    InputError: if the split has no clips.
  """
  manifest = data.load_manifest(config.dataset_dir)
  data.split_clips(manifest, split)  # InputError if the split is missing or empty.
  ref_windows, ref_ids = _train_reference(config, manifest)
  k = min(max(int(config.cvg.eval_knn_frames), 1), len(ref_windows))
  neighbours = {}
  for clip in _clips(config, split, with_frames=False):
    windows = data.clip_windows(clip, manifest)
    neighbours[clip["clip_id"]] = ref_ids[metrics.nearest_neighbour_indices(
        windows.reshape(len(windows), -1), ref_windows, k=k)]
  del ref_windows
  if not neighbours:
    raise InputError(f"split {split!r} has no clips to evaluate")
  mean_frame, nn_frames, knn_frames = train_frames(config, neighbours)
  mean_frame = np.round(mean_frame).astype(np.uint8)

  step = streaming.coarse_step(model)
  baselines = ("_mean_frame", "_nn_frame") + (("_knn_mean_frame",) if k > 1 else ())
  scores = {metric + suffix: [] for suffix in ("",) + baselines for metric in ("psnr", "ssim")}
  drift, flicker_sum, flicker_count, clips = [], 0.0, 0, 0
  for clip in _clips(config, split, with_frames=True):
    real = data.resize_frames(clip["frames"], config.resolution)
    windows = data.clip_windows(clip, manifest)
    generated = streaming.generate_coarse(model, windows, config.eval.chunk_frames, step=step,
                              seed=config.seed + clips)
    candidates = {
        "": generated,
        "_mean_frame": np.broadcast_to(mean_frame, real.shape),
        "_nn_frame": nn_frames[clip["clip_id"]],
        "_knn_mean_frame": knn_frames[clip["clip_id"]],
    }
    for suffix in ("",) + baselines:
      frames = candidates[suffix]
      psnr, ssim = metrics.frame_scores(frames, real)
      scores["psnr" + suffix].append(psnr)
      scores["ssim" + suffix].append(ssim)
      if not suffix and len(real) >= ROLLOUT_FRAMES:
        drift.append((psnr[:100].mean(), psnr[200:300].mean()))
    total, count = metrics.flicker(generated, real)
    flicker_sum, flicker_count = flicker_sum + total, flicker_count + count
    if out_dir and clips == 0 and config.cvg.eval_preview_seconds > 0:
      os.makedirs(out_dir, exist_ok=True)
      n = max(1, int(round(config.cvg.eval_preview_seconds * clip["fps"])))
      write_preview(os.path.join(out_dir, "preview.mp4"), real[:n], generated[:n],
                    clip["waveform"], clip["fps"], manifest["audio"]["sample_rate"])
    clips += 1
  result = {k: float(np.mean(np.concatenate(v))) for k, v in scores.items()}
  result.update(
      flicker=flicker_sum / max(flicker_count, 1),
      psnr_rollout_first100=float(np.mean([d[0] for d in drift])) if drift else None,
      psnr_rollout_last100=float(np.mean([d[1] for d in drift])) if drift else None,
      rollout_clips=len(drift), frames=int(sum(len(s) for s in scores["psnr"])), clips=clips)
  return result
