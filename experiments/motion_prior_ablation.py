"""The motion prior's ablation (Ren et al.'s losses as options of the KP) on a dataset.

  python experiments/motion_prior_ablation.py --config=configs/synth_cello.py \
      --workdir=runs/prior_cello [--override=KEY=VALUE ...]

First trains the sync evaluator once (<workdir>/evaluator, training split only) and
scores it on the test split, then trains and evaluates the KP with the paper's losses only,
+ adversarial, + pose perceptual, + both (resuming finished runs), every one evaluated with
the same evaluator (sync_score, motion_fd). Prints a Markdown table and writes
<workdir>/motion_prior.json.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # pylint: disable=g-import-not-at-top

from experiments import common

_CONFIG = flags.DEFINE_string("config", "configs/synth_cello.py", "Base config file.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/prior", "Folder for the runs.")
_EVALUATOR = flags.DEFINE_string("evaluator", "", "A trained evaluator's work directory "
                                 "(default: train one in <workdir>/evaluator).")
_OVERRIDE = flags.DEFINE_multi_string("override", [], "Extra KEY=VALUE config overrides.")
_PERCEPTUAL = flags.DEFINE_float("pose_perceptual_weight", 0.002, "Weight of the pose "
                                 "perceptual loss in its variants.")
_ADVERSARIAL = flags.DEFINE_float("adversarial_weight", 0.001, "Weight of the adversarial "
                                  "loss in its variants.")

COLUMNS = ("kp_distance", "kp_distance_left_hand", "kp_distance_right_hand", "beat_align",
           "sync_score", "sync_score_top5", "sync_margin", "motion_fd")
BASELINE_COLUMNS = (("ground truth", "_real"), ("mean pose", "_mean_pose"),
                    ("nearest neighbour", "_nn"))


def baseline_key(column, suffix):
  """The metrics.json key of a baseline's value in `column` (None: not defined for it)."""
  if column.startswith("kp_distance"):
    return None if suffix == "_real" else column.replace("kp_distance", "kp_distance" + suffix)
  if column == "beat_align":
    return "beat_align_real" if suffix == "_real" else None
  if column == "motion_fd" and suffix == "_real":
    return None
  return column + suffix


def main(argv):
  del argv
  extra = dict(o.split("=", 1) for o in _OVERRIDE.value)
  evaluator = _EVALUATOR.value or os.path.join(_WORKDIR.value, "evaluator")
  if not _EVALUATOR.value:
    common.run_variant(_CONFIG.value, evaluator, {"stage": "sync", **extra})
  variants = (
      ("paper", "paper's losses only", {}),
      ("adversarial", "+ adversarial", {"khp.adversarial_weight": _ADVERSARIAL.value}),
      ("perceptual", "+ pose perceptual",
       {"khp.pose_perceptual_weight": _PERCEPTUAL.value}),
      ("both", "+ both", {"khp.adversarial_weight": _ADVERSARIAL.value,
                          "khp.pose_perceptual_weight": _PERCEPTUAL.value}),
  )
  rows = []
  for folder, name, overrides in variants:
    rows.append((name, common.run_variant(
        _CONFIG.value, os.path.join(_WORKDIR.value, folder),
        {"stage": "khp", "sync.evaluator_workdir": evaluator, **overrides, **extra},
        stages=["khp"])))
  last = rows[-1][1]  # Every variant holds the same baselines (same frames, same evaluator).
  for name, suffix in BASELINE_COLUMNS:
    rows.append((name, {c: last.get(baseline_key(c, suffix)) for c in COLUMNS}))
  table = common.markdown_table(rows, COLUMNS)
  print(table)
  with open(os.path.join(_WORKDIR.value, "motion_prior.json"), "w") as f:
    json.dump({"config": _CONFIG.value, "overrides": extra, "evaluator": evaluator,
               "rows": rows}, f, indent=1)


if __name__ == "__main__":
  app.run(main)
