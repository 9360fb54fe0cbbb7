"""The paper's Table II on a dataset: KP baseline, + mean-pose condition, + DLT, full.

  python experiments/table2_khp.py --config=configs/synth_cello.py --workdir=runs/table2_cello

Trains and evaluates each variant (resuming finished ones), then prints a Markdown table and
writes <workdir>/table2.json.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # pylint: disable=g-import-not-at-top

from experiments import common

_CONFIG = flags.DEFINE_string("config", "configs/synth_cello.py", "Base config file.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/table2", "Folder for the variants' runs.")
_OVERRIDE = flags.DEFINE_multi_string("override", [], "Extra KEY=VALUE config overrides.")

# (run folder, the paper's row name, overrides).
VARIANTS = (
    ("baseline", "Baseline", {"khp.mean_pose_condition": False, "khp.dlt_loss": False}),
    ("avg_condition", "+ avg. condition",
     {"khp.mean_pose_condition": True, "khp.dlt_loss": False}),
    ("dlt", "+ DLT", {"khp.mean_pose_condition": False, "khp.dlt_loss": True}),
    ("full", "Ours (full)", {"khp.mean_pose_condition": True, "khp.dlt_loss": True}),
)
COLUMNS = ("kp_distance", "kp_distance_body", "kp_distance_left_hand", "kp_distance_right_hand",
           "kp_distance_mean_pose", "kp_distance_nn", "beat_align", "beat_align_real")


def main(argv):
  del argv
  extra = dict(o.split("=", 1) for o in _OVERRIDE.value)
  rows = []
  for folder, name, overrides in VARIANTS:
    rows.append((name, common.run_variant(_CONFIG.value, os.path.join(_WORKDIR.value, folder),
                                          {"stage": "khp", **overrides, **extra})))
  table = common.markdown_table(rows, COLUMNS)
  print(table)
  with open(os.path.join(_WORKDIR.value, "table2.json"), "w") as f:
    json.dump({"config": _CONFIG.value, "overrides": extra, "rows": rows}, f, indent=1)


if __name__ == "__main__":
  app.run(main)
