"""Trains a stage (or all three) of APVG-TF.

  python train.py --config=configs/default.py --workdir=runs/cello --config.stage=khp
"""

import apvg_tf  # noqa: F401  pylint: disable=unused-import  (selects Keras 2 first)
from absl import flags
from ml_collections import config_flags

from apvg_tf import cli
from apvg_tf.training import trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder: checkpoints and TensorBoard logs.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run(main)
