"""Evaluation of the final video (STU stage): PSNR, SSIM and flicker of the whole pipeline.

Each clip of the split is generated from its audio alone, as a user's song would be: the KP,
the CVG (from its stored first frame) and the STU run chunk by chunk with their states
carried (`PerformanceGenerator.step`), and frame t is compared with real frame t.
With `eval.stu_keypoints="real"` the STU draws from the video's own keypoints instead of the
KP's: an oracle for the ablations (what a correct pose is worth), not a way to generate.
Metrics (uint8 frames at `config.resolution`; see `metrics.frame_scores` and `metrics.flicker`):
  psnr, ssim, flicker                          the final video
  psnr_coarse, ssim_coarse, flicker_coarse    the coarse video it refined (when the STU uses one)
"""

import os

import numpy as np

from apvg_tf import data, metrics, streaming
from apvg_tf.errors import InputError
from apvg_tf.evaluation import cvg_eval


def evaluate_stu(generator, config, split, out_dir=None):
  """Computes the final-video metrics of a trained pipeline on a split.

  Args:
    generator: a PerformanceGenerator with the trained stages.
    config: the run's config (dataset_dir, resolution, seed, eval.chunk_frames,
      eval.max_clips, stu.eval_preview_seconds).
    split: the split to evaluate.
    out_dir: if set, `preview.mp4` (real | coarse | final, with the music) of the first clip.

  Returns:
    dict: psnr, ssim, flicker (and psnr_coarse, ssim_coarse, flicker_coarse), frames, clips.

  Raises:
    InputError: if the split has no clips.
  """
  if config.eval.stu_keypoints not in ("predicted", "real"):
    raise InputError(f"eval.stu_keypoints is {config.eval.stu_keypoints!r}; expected "
                     "'predicted' (the KP's, as in generation) or 'real' (the oracle)")
  if config.eval.stu_keypoints == "real" and generator.kp is None:
    raise InputError("eval.stu_keypoints='real' needs a pipeline whose STU draws from poses "
                     "(this one has no KP: stu.use_heatmap is off)")
  manifest = data.load_manifest(config.dataset_dir)
  data.split_clips(manifest, split)  # InputError if the split is missing or empty.
  step = streaming.performance_step(generator)
  scores, flicker = {}, {}
  clips, frames = 0, 0
  for index, clip in enumerate(data.read_clips(config.dataset_dir, split)):
    if config.eval.max_clips and index >= config.eval.max_clips:
      break
    real = data.resize_frames(clip["frames"], config.resolution)
    windows = data.clip_windows(clip, manifest, generator.lookahead)
    oracle = clip["keypoints"] if config.eval.stu_keypoints == "real" else None
    generated = streaming.generate_performance(generator, windows, config.eval.chunk_frames,
                              seed=config.seed + index, step=step, keypoints=oracle)
    for key, suffix in (("frames", ""), ("coarse", "_coarse")):
      if key in generated:
        psnr, ssim = metrics.frame_scores(generated[key], real)
        scores.setdefault("psnr" + suffix, []).append(psnr)
        scores.setdefault("ssim" + suffix, []).append(ssim)
        total, count = metrics.flicker(generated[key], real)
        pooled = flicker.get("flicker" + suffix, (0.0, 0))
        flicker["flicker" + suffix] = (pooled[0] + total, pooled[1] + count)
    if out_dir and clips == 0 and config.stu.eval_preview_seconds > 0:
      os.makedirs(out_dir, exist_ok=True)
      n = max(1, int(round(config.stu.eval_preview_seconds * clip["fps"])))
      shown = [generated["coarse"][:n]] if "coarse" in generated else []
      cvg_eval.write_preview(os.path.join(out_dir, "preview.mp4"), real[:n],
                             np.concatenate(shown + [generated["frames"][:n]], 2),
                             clip["waveform"], clip["fps"], manifest["audio"]["sample_rate"])
    clips += 1
    frames += len(real)
  if not clips:
    raise InputError(f"split {split!r} has no clips to evaluate")
  result = {k: float(np.mean(np.concatenate(v))) for k, v in scores.items()}
  result.update({k: total / max(count, 1) for k, (total, count) in flicker.items()})
  result.update(frames=frames, clips=clips)
  return result
