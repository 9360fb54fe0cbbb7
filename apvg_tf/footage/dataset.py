"""`build_footage_dataset`: performance clips -> a dataset in the project's format.

  1. The output frame rate: `Settings.fps`, or else the nominal rate most of the clips share
     (every clip of a dataset has one rate; the others are resampled to it).
  2. Every clip is staged (`staging.stage_clip`): in a plain loop in this process
     (`runner="none"`), or as an Apache Beam pipeline (`beam_pipeline.run_pipeline`, any
     runner). Both run the same per-clip function, so they give the same result. A clip that
     fails is reported and left out; a clip staged by an earlier run with the same settings
     is not processed again.
  3. Splits (`assign_splits`) and the dataset: `DatasetWriter` writes the staged clips
     (JPEG frames, quality 95) and the manifest, whose metadata holds every clip's quality
     report (metadata["quality"][clip_id]), the failed clips with their errors, the settings
     and the seed.

If no clip can be processed, InputError says why for each, and no dataset is left behind.
"""

import collections
import dataclasses
import hashlib
import logging
import os

import tqdm

from apvg_tf import instruments
from apvg_tf.data import DatasetWriter
from apvg_tf.errors import InputError
from apvg_tf.footage import beam_pipeline, process, staging

SPLITS = ("train", "validation", "test")
# Fractions of clips per split when splits are assigned (by clip, never by frame).
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
STAGING_FOLDER = ".staging"


def _unit_hash(seed, clip_id):
  """A number in [0, 1) fixed by the seed and the clip id (the same on every machine)."""
  digest = hashlib.sha256(f"{int(seed)}:{clip_id}".encode()).hexdigest()
  return int(digest[:13], 16) / float(16 ** 13)


def assign_splits(clip_ids, seed=0, fixed=None):
  """Assigns whole clips to splits, deterministically from the seed and each clip's id.

  A clip's split depends only on (seed, clip id): about 80% train, 10% validation, 10% test,
  so adding clips to a folder never moves the clips already there. Then: at least one clip
  is in train (one clip alone is train, a dataset to train on), and with three or more clips
  assigned here, validation and test each get at least one (taken from train, the clips of
  highest hash first).

  Args:
    clip_ids: list of clip ids.
    seed: int; another seed gives another assignment.
    fixed: optional dict clip_id -> split for clips whose split the source gives (kept).

  Returns:
    dict clip_id -> split.
  """
  fixed = {k: v for k, v in (fixed or {}).items() if v is not None}
  for clip_id, split in fixed.items():
    if split not in SPLITS:
      raise InputError(f"clip {clip_id} has split {split!r}; expected one of {SPLITS}")
  free = [c for c in clip_ids if c not in fixed]
  score = {c: _unit_hash(seed, c) for c in free}
  bounds = (SPLIT_FRACTIONS[0], SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1])
  splits = {c: ("train" if score[c] < bounds[0] else
                "validation" if score[c] < bounds[1] else "test") for c in free}
  if free and "train" not in list(splits.values()) + list(fixed.values()):
    splits[min(free, key=score.get)] = "train"
  if len(free) >= 3:
    for held_out in ("validation", "test"):
      train = sorted((c for c in free if splits[c] == "train"), key=score.get)
      if held_out not in splits.values() and len(train) > 1:
        splits[train[-1]] = held_out
  return {c: fixed.get(c, splits.get(c)) for c in clip_ids}


def choose_fps(sources):
  """The nominal frame rate shared by most sources (ties: the first source's).

  Sources that cannot be opened are left out here (they fail, with their reason, when
  processed).

  Returns:
    float fps, or None if no source could be opened.
  """
  rates = []
  for source in sources:
    try:
      rates.append(process.source_fps(source))
    except InputError:
      continue
  if not rates:
    return None
  counts = collections.Counter(rates)
  best = max(counts.values())
  fps = next(r for r in rates if counts[r] == best)
  if len(counts) > 1:
    logging.warning("the clips have frame rates %s; all are resampled to %g fps (set --fps to "
                    "choose)", ", ".join(f"{r:g}" for r in sorted(counts)), fps)
  return fps


def format_quality_table(quality, splits):
  """A short text table of the clips' quality reports.

  Args:
    quality: dict clip_id -> report (process.process_clip).
    splits: dict clip_id -> split.

  Returns:
    str, one line per clip under a header.
  """
  width = max([len("clip")] + [len(c) for c in quality])
  lines = [f"{'clip':<{width}}  {'split':<10} {'frames':>6} {'fps':>6}  {'body':>5} "
           f"{'l.hand':>6} {'r.hand':>6} {'filled':>6}  crop x0,y0,size (source px)"]
  for clip_id, report in quality.items():
    box = ",".join(str(v) for v in report["crop_box"])
    lines.append(
        f"{clip_id:<{width}}  {splits.get(clip_id, '-'):<10} {report['frames']:>6} "
        f"{report['fps']:>6.2f}  {report['body_fraction']:>5.0%} "
        f"{report['left_hand_fraction']:>6.0%} {report['right_hand_fraction']:>6.0%} "
        f"{report['gaps_filled']:>6}  {box}" + ("  (padded)" if report["crop_padded"] else ""))
  return "\n".join(lines)


def _clean_up_failure(out_dir, staging_dir, sources, created):
  """Removes what a run that produced nothing wrote (error records, empty folders)."""
  if staging.is_remote(staging_dir):
    return
  for source in sources:
    path = staging.error_path(staging_dir, source.clip_id)
    if os.path.exists(path):
      os.remove(path)
  for folder in (staging_dir, out_dir if created else None):
    if folder and os.path.isdir(folder) and not os.listdir(folder):
      os.rmdir(folder)


def build_footage_dataset(sources, out_dir, *, instrument, settings=process.Settings(), seed=0,
                          runner="none", num_workers=None, running_mode="multi_processing",
                          pipeline_args=(), staging_dir=None, command="",
                          detector_factory=None, frame_format="jpeg", source_name="videos",
                          progress=True):
  """Preprocesses clips into a dataset folder (manifest.json + TFRecord shards).

  Args:
    sources: list of process.ClipSource (unique clip ids).
    out_dir: the dataset folder (local).
    instrument: instrument name (apvg_tf.instruments).
    settings: process.Settings; fps None picks the rate most clips have.
    seed: seeds the split assignment of clips whose source gives no split.
    runner: "none" for a plain loop in this process, or a Beam runner name ("DirectRunner",
      "DataflowRunner", ...).
    num_workers: DirectRunner workers (default: the CPU count, at most one per clip).
    running_mode: DirectRunner's "multi_processing" or "multi_threading".
    pipeline_args: further Beam options, passed through.
    staging_dir: where per-clip results are staged (default `out_dir/.staging`; a gs://...
      folder for distributed runners). Kept afterwards, so a rerun skips finished clips.
    command: the command line, recorded in the manifest.
    detector_factory: optional callable () -> keypoint detector (tests); default MediaPipe.
    frame_format: "jpeg" (quality 95) or "png".
    source_name: the manifest's `source` ("videos", "urmp", ...).
    progress: show progress bars (plain loop).

  Returns:
    dict: out_dir, fps, clips (written, in order), splits (clip_id -> split), failed
    (clip_id -> error), frames (total), quality (clip_id -> report), table (str).

  Raises:
    InputError: bad arguments, or no clip could be processed (each clip's error is listed).
  """
  instrument = instruments.check(instrument)
  process.check_settings(settings)
  sources = list(sources)
  if not sources:
    raise InputError("no clips to preprocess")
  ids = [s.clip_id for s in sources]
  repeated = sorted({c for c in ids if ids.count(c) > 1})
  if repeated:
    raise InputError(f"clip ids must be unique; repeated: {', '.join(repeated)}")
  out_dir = os.fspath(out_dir)
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise InputError(f"--out={out_dir} is a file; give a folder for the dataset")
  created = not os.path.exists(out_dir)
  staging_dir = staging_dir or os.path.join(out_dir, STAGING_FOLDER)
  if settings.fps is None:
    fps = choose_fps(sources)
    if fps is not None:
      settings = dataclasses.replace(settings, fps=fps)

  if runner == "none":
    bar = tqdm.tqdm(sources, unit="clip", desc="clips", disable=not progress or len(sources) < 2)
    for source in bar:  # stage_clip logs a failed clip with its error.
      staging.stage_clip(source, settings, staging_dir, detector_factory=detector_factory,
                         progress=progress)
  else:
    workers = num_workers or min(os.cpu_count() or 1, len(sources))
    beam_pipeline.run_pipeline(sources, settings, staging_dir, runner=runner,
                               num_workers=workers, running_mode=running_mode,
                               pipeline_args=pipeline_args, detector_factory=detector_factory)

  done, failed = [], {}
  for source in sources:
    if staging.is_staged(staging_dir, source, settings):
      done.append(source)
    else:
      failed[source.clip_id] = (staging.read_error(staging_dir, source.clip_id)
                                or "the clip was not processed (see the log)")
  if not done:
    _clean_up_failure(out_dir, staging_dir, sources, created)
    raise InputError("no clip could be processed: " + "; ".join(
        f"{clip_id}: {error}" for clip_id, error in failed.items()))

  metas = {s.clip_id: staging.read_staged_meta(staging_dir, s.clip_id) for s in done}
  fps = metas[done[0].clip_id]["fps"]
  splits = assign_splits([s.clip_id for s in done], seed,
                         fixed={s.clip_id: s.split for s in done})
  quality = {s.clip_id: metas[s.clip_id]["report"] for s in done}
  metadata = {
      "settings": dataclasses.asdict(settings), "seed": int(seed),
      "split_rule": "by clip: sha256(seed:clip_id) -> 80/10/10, at least one train clip",
      "keypoints_from": sorted({q["keypoints_from"] for q in quality.values()}),
      "quality": quality, "failed": failed,
  }
  frames = 0
  with DatasetWriter(out_dir, instrument=instrument, fps=fps, resolution=settings.resolution,
                     source=source_name, command=command, metadata=metadata,
                     frame_format=frame_format) as writer:
    for source in done:
      _, arrays = staging.read_staged(staging_dir, source.clip_id)
      writer.add_clip(split=splits[source.clip_id], clip_id=source.clip_id,
                      frames=arrays["frames"], keypoints=arrays["keypoints"],
                      waveform=arrays["waveform"])
      frames += len(arrays["keypoints"])
  table = format_quality_table(quality, splits)
  return {"out_dir": out_dir, "fps": fps, "clips": [s.clip_id for s in done],
          "splits": splits, "failed": failed, "frames": frames, "quality": quality,
          "table": table, "staging_dir": staging_dir}


def shard_bytes(dataset_dir):
  """{shard path relative to the dataset: its bytes}, to compare two builds of a dataset."""
  found = {}
  for base, _, names in os.walk(os.path.join(os.fspath(dataset_dir), "shards")):
    for name in names:
      path = os.path.join(base, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, dataset_dir)] = f.read()
  return found
