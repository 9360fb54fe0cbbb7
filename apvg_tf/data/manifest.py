"""The dataset manifest: `manifest.json`, written last, so a dataset without one is incomplete.

Keys: format_version, instrument, fps, resolution, frame_format, audio (sample rate, hop,
bins, fmin, window columns, log floor), splits ({split: [{clip_id, file, num_frames,
num_samples}]}), mean_pose ([67][3], train split), cqt_mean and cqt_std ([84], train split),
source, command (the exact command that made the dataset) and metadata (source-specific).
"""

import json
import os
import threading

from apvg_tf.errors import InputError

MANIFEST = "manifest.json"
SPLITS = ("train", "validation", "test")


def write_bytes_atomic(path, data):
  """Writes bytes to `path` through a temporary file and a rename (never half-written)."""
  tmp = f"{path}.tmp{os.getpid()}-{threading.get_ident()}"
  try:
    with open(tmp, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_json_atomic(path, obj):
  """Writes JSON to `path` through a temporary file and a rename (never half-written)."""
  write_bytes_atomic(path, json.dumps(obj, indent=1).encode())


def load_manifest(dataset_dir):
  """Reads and checks a dataset's manifest.

  Args:
    dataset_dir: the dataset folder.

  Returns:
    The manifest dict.

  Raises:
    InputError: if the folder or its manifest is missing or unreadable (an interrupted
      preprocessing run leaves no manifest), or a listed shard is missing.
  """
  dataset_dir = os.fspath(dataset_dir)
  if not os.path.isdir(dataset_dir):
    raise InputError(f"dataset folder {dataset_dir!r} does not exist; make one with "
                     "`python preprocess.py synth --out=DIR` (or `videos` / `urmp`)")
  path = os.path.join(dataset_dir, MANIFEST)
  if not os.path.isfile(path):
    raise InputError(f"{dataset_dir!r} has no {MANIFEST}: it is not a dataset, or its "
                     "preprocessing did not finish; run preprocess.py again")
  try:
    with open(path) as f:
      manifest = json.load(f)
  except (OSError, ValueError) as e:
    raise InputError(f"cannot read {path!r} ({e}); run preprocess.py again") from None
  for key in ("instrument", "fps", "resolution", "splits", "cqt_mean", "cqt_std", "mean_pose"):
    if key not in manifest:
      raise InputError(f"{path!r} lacks the key {key!r}; it was not written by this version "
                       "of preprocess.py: run it again")
  for clips in manifest["splits"].values():
    for clip in clips:
      shard = os.path.join(dataset_dir, clip["file"])
      if not os.path.isfile(shard):
        raise InputError(f"dataset {dataset_dir!r} lists {clip['file']!r}, which is missing; "
                         "run preprocess.py again")
  return manifest


def split_clips(manifest, split):
  """The clip entries of one split; InputError if the split is unknown or empty."""
  if split not in manifest["splits"]:
    raise InputError(f"the dataset has no split {split!r}; it has: "
                     f"{', '.join(sorted(manifest['splits']))}")
  clips = manifest["splits"][split]
  if not clips:
    raise InputError(f"split {split!r} of the dataset has no clips; make a dataset with more "
                     "pieces (e.g. a larger --minutes) or choose another split")
  return clips
