"""Evaluates a trained run: writes <workdir>/metrics.json (DESIGN.md metric names).

  python evaluate.py --config=configs/default.py --workdir=runs/cello [--split=test]
      [--stages=khp,cvg,stu] [--config.sync.evaluator_workdir=EVAL]

With a trained sync evaluator (--config.stage=sync) in EVAL, the KHP metrics include
sync_score and motion_fd; on the evaluator's own work directory, its held-out retrieval.
"""

import apvg_tf  # noqa: F401  pylint: disable=unused-import  (selects Keras 2 first)
from absl import flags
from ml_collections import config_flags

from apvg_tf import cli
from apvg_tf.evaluation import evaluate_run

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder written by train.py.")
_SPLIT = flags.DEFINE_string("split", None, "Split to evaluate (default: config.eval.split).")
_STAGES = flags.DEFINE_list("stages", None, "Stages to evaluate (default: every trained one).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  evaluate_run.evaluate_run(_CONFIG.value, _WORKDIR.value, _SPLIT.value, _STAGES.value)


if __name__ == "__main__":
  cli.run(main)
