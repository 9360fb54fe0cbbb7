"""Benchmark: real-footage preprocessing frames/s, MediaPipe included, with 1 and 2 workers.

  python benchmarks/preprocess_footage.py [--out=outputs/benchmarks] [--video=FILE]
      [--clips=4] [--workers=1,2] [--resolution=128]

Preprocesses `--clips` copies of one performance video (default: the URMP violinist of the
project's test fixtures, 10 s of 448x724 at 29.97 fps; the benchmark is skipped, saying so,
where that folder is absent) into a fresh dataset with `build_footage_dataset` on Beam's
DirectRunner, once per worker count: 1 worker runs in this process, more run as separate
processes ("multi_processing", the default of preprocess.py). Frames/s are output frames per
second of wall time for the whole build: decoding, MediaPipe Holistic, the crop, staging and
writing the shards; worker start-up is included, since every run pays it. `same_shards` says
whether a run's shards are byte-identical to the first run's.

The load average (1 minute) is recorded before and after each run: on a shared machine other
jobs take cores, and 2 workers cannot be faster than the cores left to them. `cpu_seconds`
(user + system, this process and its finished workers) tells contention from work: frames
per CPU second stay put when a run is slow only for want of a core.
"""

import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apvg_tf  # noqa: F401  pylint: disable=g-bad-import-order,unused-import
from absl import app, flags

from apvg_tf import footage
from apvg_tf.footage import dataset as footage_dataset
from benchmarks import common

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE_VIDEO = os.path.join(os.path.dirname(_ROOT), "shared", "fixtures", "urmp",
                             "urmp_vln1.mp4")

_OUT = flags.DEFINE_string("out", "outputs/benchmarks", "Folder for the JSON results.")
_VIDEO = flags.DEFINE_string("video", None, "Performance video to copy (default: the URMP "
                             "test fixture).")
_CLIPS = flags.DEFINE_integer("clips", 4, "Copies of the video preprocessed per run.")
_WORKERS = flags.DEFINE_list("workers", ["1", "2"], "DirectRunner worker counts, one run each.")
_RESOLUTION = flags.DEFINE_integer("resolution", 128, "Side of the output frames.")
_RUNNING_MODE = flags.DEFINE_enum("running_mode", "multi_processing",
                                  ["multi_processing", "multi_threading"],
                                  "How DirectRunner runs more than one worker.")


def _cpu_seconds():
  """User + system CPU seconds of this process and of its finished child processes."""
  own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                   resource.RUSAGE_CHILDREN))
  return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _run(sources, folder, workers):
  """One build into `folder`; returns (summary, wall s, CPU s, 1-min load before, after)."""
  load_before = os.getloadavg()[0]
  cpu = _cpu_seconds()
  start = time.perf_counter()
  summary = footage.build_footage_dataset(
      sources, folder, instrument="violin",
      settings=footage.Settings(resolution=_RESOLUTION.value), runner="DirectRunner",
      num_workers=workers, running_mode=_RUNNING_MODE.value,
      command="benchmarks/preprocess_footage.py", progress=False)
  seconds = time.perf_counter() - start
  return summary, seconds, _cpu_seconds() - cpu, load_before, os.getloadavg()[0]


def main(argv):
  del argv
  video = _VIDEO.value or FIXTURE_VIDEO
  if not os.path.isfile(video):
    if _VIDEO.value:
      raise app.UsageError(f"--video={video} does not exist")
    print(f"skipped: the fixture {video} is absent (it is only in the project's shared "
          "folder); pass --video=FILE to time another performance video")
    return
  # Imported before timing: the parent process of any run loads these once (the workers of a
  # multi-process run load them again, and that is timed).
  import mediapipe  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from apvg_tf import audio  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  rows, first = [], None
  with tempfile.TemporaryDirectory() as tmp:
    copies = os.path.join(tmp, "videos")
    os.makedirs(copies)
    extension = os.path.splitext(video)[1]
    for k in range(_CLIPS.value):
      os.symlink(os.path.abspath(video), os.path.join(copies, f"take{k:02d}{extension}"))
    sources = footage.list_videos(copies)
    for workers in (int(w) for w in _WORKERS.value):
      out = os.path.join(tmp, f"dataset_{workers}")  # Fresh: nothing staged to skip.
      summary, seconds, cpu_seconds, load_before, load_after = _run(sources, out, workers)
      if summary["failed"]:
        raise RuntimeError(f"clips failed: {summary['failed']}")
      shards = footage_dataset.shard_bytes(out)
      first = first or shards
      rows.append({"workers": workers, "mode": "in_process" if workers == 1
                                               else _RUNNING_MODE.value,
                   "clips": len(summary["clips"]), "frames": summary["frames"],
                   "seconds": seconds, "frames_per_second": summary["frames"] / seconds,
                   "cpu_seconds": cpu_seconds,
                   "frames_per_cpu_second": summary["frames"] / cpu_seconds,
                   "same_shards": shards == first, "load_before": load_before,
                   "load_after": load_after, "cpus": os.cpu_count(),
                   "resolution": _RESOLUTION.value, "video": os.path.basename(video)})
  base = rows[0]["frames_per_second"]
  for row in rows:
    row["speedup"] = row["frames_per_second"] / base
  common.report("preprocess_footage", rows, _OUT.value,
                ["workers", "mode", "clips", "frames", "seconds", "frames_per_second",
                 "speedup", "cpu_seconds", "frames_per_cpu_second", "same_shards",
                 "load_before", "load_after"])


if __name__ == "__main__":
  app.run(main)
