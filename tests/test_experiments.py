"""Tests of the experiment scripts' shared helpers."""

import json
import os

from experiments import common


def _touch(path, mtime):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write("x")
  os.utime(path, (mtime, mtime))


def _metrics(workdir, mtime, split="test", stages=("stu",)):
  path = os.path.join(workdir, "metrics.json")
  with open(path, "w") as f:
    json.dump({"split": split, "stages": {s: {"psnr": 1.0} for s in stages}}, f)
  os.utime(path, (mtime, mtime))


def test_a_run_is_evaluated_again_only_when_its_metrics_are_stale(tmp_path):
  workdir = str(tmp_path)
  _touch(os.path.join(workdir, "stu", "checkpoints", "ckpt-300.index"), 1000)
  assert not common.up_to_date(workdir, "test", ["stu"])  # No metrics.json.
  _metrics(workdir, 2000)
  assert common.up_to_date(workdir, "test", ["stu"])
  assert not common.up_to_date(workdir, "validation", ["stu"])  # Another split.
  assert not common.up_to_date(workdir, "test", ["stu", "cvg"])  # A stage it lacks.
  assert not common.up_to_date(workdir, "test", None)  # Every stage: always evaluated.
  _touch(os.path.join(workdir, "stu", "best", "ckpt-400.index"), 3000)  # Newer checkpoint.
  assert not common.up_to_date(workdir, "test", ["stu"])


def test_a_run_without_checkpoints_is_evaluated(tmp_path):
  _metrics(str(tmp_path), 2000)
  assert not common.up_to_date(str(tmp_path), "test", ["stu"])
