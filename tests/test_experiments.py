"""Tests of the experiment scripts' shared helpers."""

import json
import os

import pytest

from experiments import common, seed_table


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


def _row(psnr, ssim, flicker):
  return {"psnr": psnr, "ssim": ssim, "flicker": flicker}


def test_seed_table_gives_spread_and_paired_gaps():
  tables = [
      {"full": {"name": "Ours (full)", **_row(28.2, 0.94, 0.0018)},
       "wo_gru": {"name": "w/o CNN-GRU", **_row(28.1, 0.95, 0.0017)}},
      {"full": {"name": "Ours (full)", **_row(28.0, 0.93, 0.0020)},
       "wo_gru": {"name": "w/o CNN-GRU", **_row(28.3, 0.92, 0.0021)}},
      {"full": {"name": "Ours (full)", **_row(28.1, 0.95, 0.0019)}},  # No wo_gru at seed 2.
  ]
  summary = seed_table.summarise(tables)
  full, wo_gru = summary["full"], summary["wo_gru"]
  assert full["psnr"]["mean"] == pytest.approx(28.1)
  assert full["psnr"]["std"] == pytest.approx(0.1)  # Sample std over three seeds.
  assert full["psnr"]["n"] == 3 and full["psnr"]["gap"] is None
  assert wo_gru["psnr"]["n"] == 2 and wo_gru["psnr"]["paired"] == 2
  assert wo_gru["psnr"]["gap"] == pytest.approx((-0.1 + 0.3) / 2)  # Seeds 0 and 1 only.
  assert wo_gru["psnr"]["better"] == 1
  assert wo_gru["ssim"]["better"] == 1
  # Flicker: lower is better, so seed 0 (0.0017 < 0.0018) counts and seed 1 does not.
  assert wo_gru["flicker"]["better"] == 1
  assert wo_gru["flicker"]["gap"] == pytest.approx(0.0)
  table = seed_table.markdown(summary, "psnr")
  assert "| w/o CNN-GRU | 28.200 | 0.141 | 2 | +0.100 | 1 of 2 |" in table


def test_seed_table_refuses_a_file_that_is_not_a_table(tmp_path):
  path = tmp_path / "metrics.json"
  path.write_text(json.dumps({"stages": {}}))
  with pytest.raises(SystemExit, match="not a readable table1.json"):
    seed_table.load_tables([str(path)])
  with pytest.raises(SystemExit, match="not a readable table1.json"):
    seed_table.load_tables([str(tmp_path / "missing.json")])
  path.write_text("[1, 2]")
  with pytest.raises(SystemExit, match="not a readable table1.json"):
    seed_table.load_tables([str(path)])
