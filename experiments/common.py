"""Shared helpers of the experiment scripts: run a config variant, tabulate metrics."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_variant(config_path, workdir, overrides, split="test", stages=None):
  """Trains and evaluates one variant through the public entry points.

  Args:
    config_path: a configs/*.py file.
    workdir: the variant's run folder (a finished run is not retrained: train.py resumes;
      nor evaluated again, when its metrics.json has `stages` and postdates their checkpoints).
    overrides: dict of --config.KEY=VALUE overrides.
    split: split to evaluate.
    stages: optional list of the stages to evaluate (default: every trained one).

  Returns:
    The variant's metrics dict (<workdir>/metrics.json).
  """
  flags = [f"--config={config_path}", f"--workdir={workdir}"] + [
      f"--config.{k}={v}" for k, v in overrides.items()]
  evaluate_flags = [f"--split={split}"] + ([f"--stages={','.join(stages)}"] if stages else [])
  for program, extra in (("train.py", []), ("evaluate.py", evaluate_flags)):
    if program == "evaluate.py" and up_to_date(workdir, split, stages):
      print(f"{workdir}: metrics.json is newer than every checkpoint; not evaluated again")
      continue
    command = [sys.executable, os.path.join(ROOT, program)] + flags + extra
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
  with open(os.path.join(workdir, "metrics.json")) as f:
    return json.load(f)


def up_to_date(workdir, split, stages):
  """Whether <workdir>/metrics.json scores `stages` on `split` and postdates their checkpoints.

  It does not compare configs: a run evaluated with other overrides counts as up to date.
  """
  path = os.path.join(workdir, "metrics.json")
  if not stages or not os.path.exists(path):
    return False
  with open(path) as f:
    metrics = json.load(f)
  if metrics.get("split") != split or not set(stages) <= set(metrics.get("stages", {})):
    return False
  newest = max((os.path.getmtime(os.path.join(folder, name))
                for stage in stages
                for folder in (os.path.join(workdir, stage, "checkpoints"),
                               os.path.join(workdir, stage, "best"))
                if os.path.isdir(folder) for name in os.listdir(folder)), default=float("inf"))
  return os.path.getmtime(path) > newest


def markdown_table(rows, columns, name_column="variant"):
  """rows: list of (name, metrics dict) -> a Markdown table string; name_column heads the names."""
  lines = [f"| {name_column} | " + " | ".join(columns) + " |",
           "|---|" + "---|" * len(columns)]
  for name, metrics in rows:
    cells = [f"{metrics[c]:.4f}" if isinstance(metrics.get(c), float) else
             ("" if metrics.get(c) is None else str(metrics[c])) for c in columns]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines)
