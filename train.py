"""Trains a stage (or all three) of APVG-TF.

  python train.py --config=configs/default.py --workdir=runs/cello --config.stage=khp

Stages: khp, cvg, stu, all (the three in order), sync (the motion prior's sync
evaluator, in a work directory of its own).
"""

import sys

import apvg_tf  # noqa: F401  pylint: disable=unused-import  (selects Keras 2 first)
from absl import flags
from ml_collections import config_flags

from apvg_tf import cli
from apvg_tf import strategy as strategy_lib
from apvg_tf.training import trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder: checkpoints and TensorBoard logs.")
_STRATEGY = flags.DEFINE_enum(
    "strategy", None, list(strategy_lib.NAMES),
    "Distribution strategy (default: the config's, 'auto': MirroredStrategy over several "
    "GPUs, else the default strategy).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  config = _CONFIG.value
  if _STRATEGY.value:
    with config.unlocked():
      config.strategy = _STRATEGY.value
  try:
    trainer.train_and_evaluate(config, _WORKDIR.value)
  except trainer.TrainingStopped as e:
    # A stop signal (checkpoint saved) or a non-finite loss (nothing saved): one line, and
    # an exit code a scheduler can act on (see README, "Scaling out").
    print(f"stopped: {e}", file=sys.stderr)
    sys.exit(e.exit_code)


if __name__ == "__main__":
  cli.run(main)
