"""Evaluation of the final video (STU stage): PSNR, SSIM and flicker of the whole pipeline.

Each clip of the split is generated from its audio alone, as a user's song would be: the KP,
the CVG (from its stored first frame) and the STU run chunk by chunk with their states
carried (`PerformanceGenerator.step`), and frame t is compared with real frame t.
With `eval.stu_keypoints="real"` the STU draws from the video's own keypoints instead of the
KP's: an oracle for the ablations (what a correct pose is worth), not a way to generate.
Metrics (uint8 frames at `config.resolution`; see `metrics.frame_scores` and `metrics.flicker`):
  psnr, ssim, flicker                          the final video
  fid_vgg16                                    bundled VGG-16 FID (not Inception FID) over the
                                               frames of the whole split, at most
                                               `eval.fid_max_frames` of them (every k-th frame)
  sharpness_arm, motion_energy_arm             generated over real in each clip's moving-arm box
                                               (`metrics.arm_box` of the real keypoints), pooled
                                               as sums over all clips' frames and box pixels
                                               (None if no clip shows the arm)
  the same with _coarse                        the coarse video it refined (when the STU uses one)
"""

import os

import numpy as np

from apvg_tf import data, metrics, streaming
from apvg_tf.errors import InputError
from apvg_tf.evaluation import cvg_eval


def _arm_totals(frames, box):
  """{sharpness_arm, motion_energy_arm: a clip's total in the arm's box} ({} without a box).

  Totals over frames and box pixels (`metrics.gradient_energy`, `metrics.temporal_std`):
  summed over clips, generated over real, they weight each clip by its frames and box size.
  """
  if box is None:
    return {}
  return {"sharpness_arm": metrics.gradient_energy(frames, box)[0],
          "motion_energy_arm": metrics.temporal_std(frames, box)[0]}


def evaluate_stu(generator, config, split, out_dir=None):
  """Computes the final-video metrics of a trained pipeline on a split.

  Args:
    generator: a PerformanceGenerator with the trained stages.
    config: the run's config (dataset_dir, resolution, seed, eval.chunk_frames,
      eval.max_clips, eval.fid_max_frames, stu.eval_preview_seconds).
    split: the split to evaluate.
    out_dir: if set, `preview.mp4` (real | coarse | final, with the music) of the first clip.

  Returns:
    dict: psnr, ssim, flicker, fid_vgg16, sharpness_arm, motion_energy_arm (and each with
    _coarse), frames, clips.

  Raises:
    InputError: if the split has no clips, or eval.fid_max_frames is 1 or negative.
  """
  if config.eval.stu_keypoints not in ("predicted", "real"):
    raise InputError(f"eval.stu_keypoints is {config.eval.stu_keypoints!r}; expected "
                     "'predicted' (the KP's, as in generation) or 'real' (the oracle)")
  if config.eval.stu_keypoints == "real" and generator.kp is None:
    raise InputError("eval.stu_keypoints='real' needs a pipeline whose STU draws from poses "
                     "(this one has no KP: stu.use_heatmap is off)")
  cap = config.eval.fid_max_frames
  if cap == 1 or cap < 0:
    raise InputError(f"eval.fid_max_frames is {cap}; FID needs at least 2 frames: set "
                     "--config.eval.fid_max_frames to 0 (every frame of the split) or >= 2")
  manifest = data.load_manifest(config.dataset_dir)
  listed = data.split_clips(manifest, split)  # InputError if the split is missing or empty.
  listed = listed[:config.eval.max_clips] if config.eval.max_clips else listed
  # FID keeps features, not frames: every k-th frame of the split, at most `cap` of them.
  fid_stride = max(1, -(-sum(int(c["num_frames"]) for c in listed) // cap)) if cap else 1
  extractor = metrics.fid_feature_extractor()
  step = streaming.performance_step(generator)
  scores, flicker, arm = {}, {}, {}
  features, real_features = {}, []
  clips, frames = 0, 0
  for index, clip in enumerate(data.read_clips(config.dataset_dir, split)):
    if config.eval.max_clips and index >= config.eval.max_clips:
      break
    real = data.resize_frames(clip["frames"], config.resolution)
    windows = data.clip_windows(clip, manifest, generator.lookahead)
    oracle = clip["keypoints"] if config.eval.stu_keypoints == "real" else None
    generated = streaming.generate_performance(generator, windows, config.eval.chunk_frames,
                              seed=config.seed + index, step=step, keypoints=oracle)
    kept = (frames + np.arange(len(real))) % fid_stride == 0  # `frames`: the split so far.
    real_features.append(metrics.vgg16_features(real[kept], extractor))
    box = metrics.arm_box(clip["keypoints"], clip["instrument"], config.resolution)
    real_arm = _arm_totals(real, box)
    for key, suffix in (("frames", ""), ("coarse", "_coarse")):
      if key in generated:
        psnr, ssim = metrics.frame_scores(generated[key], real)
        scores.setdefault("psnr" + suffix, []).append(psnr)
        scores.setdefault("ssim" + suffix, []).append(ssim)
        total, count = metrics.flicker(generated[key], real)
        pooled = flicker.get("flicker" + suffix, (0.0, 0))
        flicker["flicker" + suffix] = (pooled[0] + total, pooled[1] + count)
        features.setdefault(suffix, []).append(
            metrics.vgg16_features(generated[key][kept], extractor))
        for name, value in _arm_totals(generated[key], box).items():
          pooled = arm.get(name + suffix, (0.0, 0.0))
          arm[name + suffix] = (pooled[0] + value, pooled[1] + real_arm[name])
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
  real_features = np.concatenate(real_features)
  for suffix, parts in features.items():
    fake = np.concatenate(parts)
    result["fid_vgg16" + suffix] = (metrics.frechet_distance(fake, real_features)
                                    if min(len(fake), len(real_features)) >= 2 else None)
    for name in ("sharpness_arm", "motion_energy_arm"):
      fake_total, real_total = arm.get(name + suffix, (0.0, 0.0))
      result[name + suffix] = fake_total / real_total if real_total > 0 else None
  result.update(frames=frames, clips=clips)
  return result
