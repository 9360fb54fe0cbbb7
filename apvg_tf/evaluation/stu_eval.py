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
  pose_render_psnr, pose_render_ssim           virtual-performer datasets only: the video
                                               against `synth.render.draw_pose` of the keypoints
                                               it was generated from (the KP's, or the real
                                               ones with the oracle), per frame and averaged
                                               like psnr (PSNR at most metrics.PSNR_CEILING)
  pose_render_psnr_arm                         the same PSNR in the moving-arm box, from the
                                               squared error pooled over all clips' box pixels
  pose_render_{psnr,ssim,psnr_arm}_floor       the real frames against `draw_pose` of the real
                                               keypoints: what a perfect renderer scores (at or
                                               near the ceiling: the frames are lossless
                                               drawings of those keypoints)
  the same with _coarse                        the coarse video it refined (when the STU uses one)

PSNR against the real video rewards the average of every arm the music allows (a blur where
the bow may be); pose_render asks whether each frame draws the pose it was generated from,
which only the virtual performer can answer (it draws any pose as its dataset was drawn).
"""

import os

import numpy as np

from apvg_tf import data, metrics, streaming
from apvg_tf.errors import InputError
from apvg_tf.evaluation import cvg_eval
from apvg_tf.synth import render


def _arm_totals(frames, box):
  """{sharpness_arm, motion_energy_arm: a clip's total in the arm's box} ({} without a box).

  Totals over frames and box pixels (`metrics.gradient_energy`, `metrics.temporal_std`):
  summed over clips, generated over real, they weight each clip by its frames and box size.
  """
  if box is None:
    return {}
  return {"sharpness_arm": metrics.gradient_energy(frames, box)[0],
          "motion_energy_arm": metrics.temporal_std(frames, box)[0]}


def virtual_performer(manifest):
  """The appearance index of a virtual-performer dataset (`preprocess.py synth`), else None."""
  if manifest.get("source") != "synth":
    return None
  return int((manifest.get("metadata") or {}).get("performer", 0))


# Where predicted keypoints are clipped before drawing: a point more than a frame side outside
# the frame is off the canvas wherever it is, and `draw_pose` refuses coordinates that are
# clearly not normalised; a diverged KP should score badly, not stop the evaluation.
_DRAWN_RANGE = (-1.0, 2.0)


def pose_render_parts(videos, keypoints, real, real_keypoints, *, instrument, performer, box,
                      drawn_resolution):
  """One clip's pose_render terms (module docstring), to pool over a split.

  Each video is compared with `render.draw_pose` of `keypoints`, and the real frames with
  `draw_pose` of `real_keypoints` (the floors). Poses are drawn at the dataset's resolution
  and resized as the real frames are (`data.resize_frames`): the room's texture depends on
  the size it is drawn at, so drawing a 64 px dataset's poses at 32 px directly puts the
  floor at 27 dB, while drawing them at 64 px and resizing reproduces the frames exactly.
  Drawing costs about 8 ms a frame at 64 px and 9 ms at 128 px (one core), once for the
  real keypoints and once for the generated ones unless they are the same (the oracle).

  Args:
    videos: {suffix: uint8 [T, R, R, 3]}, the generated videos ("": the final one,
      "_coarse": the coarse one).
    keypoints: float [T, 67, 2+], the poses the videos were generated from, or None (a
      pipeline without a KP: the floors alone).
    real: uint8 [T, R, R, 3], the true frames at the evaluation's resolution.
    real_keypoints: float [T, 67, 3], the true keypoints.
    instrument: the dataset's instrument ("cello" or "trombone").
    performer: the dataset's appearance index (`virtual_performer`).
    box: (x0, y0, x1, y1), the moving arm's box (`metrics.arm_box`), or None.
    drawn_resolution: the side of the dataset's stored frames, which poses are drawn at.

  Returns:
    (per_frame, box_totals): per_frame maps pose_render_psnr{suffix} (at most
    metrics.PSNR_CEILING) and pose_render_ssim{suffix} to float [T]; box_totals maps
    pose_render_psnr_arm{suffix} to (sum of squared errors, count) in the box (empty without
    a box). Suffixes: those of `videos`, and "_floor" for the real frames.

  Raises:
    InputError: if the instrument is not one the virtual performer plays.
  """
  def draw(points):
    frames = render.draw_pose(points, instrument, drawn_resolution, performer)
    return data.resize_frames(frames, real.shape[1])

  truth = draw(real_keypoints)
  pairs = [("_floor", real, truth)]
  if keypoints is not None:
    xy = np.clip(np.asarray(keypoints)[..., :2], *_DRAWN_RANGE)
    drawn = truth if np.array_equal(xy, np.asarray(real_keypoints)[..., :2]) else draw(xy)
    pairs += [(suffix, video, drawn) for suffix, video in videos.items()]
  per_frame, box_totals = {}, {}
  for suffix, frames, reference in pairs:
    psnr, ssim = metrics.frame_scores(frames, reference)
    per_frame["pose_render_psnr" + suffix] = np.minimum(psnr, metrics.PSNR_CEILING)
    per_frame["pose_render_ssim" + suffix] = ssim
    if box is not None:
      box_totals["pose_render_psnr_arm" + suffix] = metrics.squared_error(frames, reference,
                                                                          box)
  return per_frame, box_totals


def _pose_render_names(suffixes):
  """Every pose_render key for the videos of `suffixes` and the floors."""
  return [f"pose_render_{name}{suffix}" for suffix in tuple(suffixes) + ("_floor",)
          for name in ("psnr", "ssim", "psnr_arm")]


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
    _coarse), frames, clips. On a virtual-performer dataset (`virtual_performer`) also
    pose_render_psnr, pose_render_ssim, pose_render_psnr_arm (each with _coarse when there
    is a coarse video, and with _floor): None for the videos of a pipeline without a KP
    (no pose to draw) and for the arm when no clip shows it. On other datasets these keys
    are absent.

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
  performer = virtual_performer(manifest)
  scores, flicker, arm, squared = {}, {}, {}, {}
  videos = {}  # Video key -> suffix, of the videos the pipeline makes.
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
        videos[key] = suffix
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
    if performer is not None:
      per_frame, box_totals = pose_render_parts(
          {suffix: generated[key] for key, suffix in videos.items()}, generated.get("keypoints"),
          real, clip["keypoints"], instrument=clip["instrument"], performer=performer, box=box,
          drawn_resolution=clip["frames"].shape[1])
      for name, values in per_frame.items():
        scores.setdefault(name, []).append(values)
      for name, (total, count) in box_totals.items():
        pooled = squared.get(name, (0.0, 0))
        squared[name] = (pooled[0] + total, pooled[1] + count)
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
  result.update({k: metrics.psnr_from_squared_error(*v) for k, v in squared.items()})
  if performer is not None:
    for name in _pose_render_names(videos.values()):
      result.setdefault(name, None)
  result.update(frames=frames, clips=clips)
  return result
