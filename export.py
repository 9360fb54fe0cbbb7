"""Exports a trained run as a SavedModel (and ONNX) (DESIGN.md contract; being built).

  python export.py --config=configs/NAME.py --workdir=DIR --out=saved_models/NAME [--onnx]
"""

import apvg_tf  # noqa: F401  pylint: disable=unused-import  (selects Keras 2 first)
from absl import flags

from apvg_tf import cli
from apvg_tf.errors import InputError

_CONFIG = flags.DEFINE_string("config", None, "Config file (configs/*.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder written by train.py.")
_OUT = flags.DEFINE_string("out", None, "Output SavedModel folder.")
_ONNX = flags.DEFINE_bool("onnx", False, "Also write an ONNX model beside the SavedModel.")


def main(argv):
  del argv
  raise InputError("export.py needs the full three-stage model, which is not built yet; see "
                   "README, Roadmap.")


if __name__ == "__main__":
  cli.run(main)
