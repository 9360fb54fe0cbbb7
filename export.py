"""Exports a trained run as a SavedModel with `generate` and `step` signatures (and ONNX).

  python export.py --config=configs/synth_cello.py --workdir=runs/cello --out=saved_models/NAME \
      [--onnx --chunk_frames=16]

The run needs all three stages (python train.py ... --config.stage=all). The result is what
generate.py --model=... and TensorFlow Serving load; see apvg_tf/serving.py for the
signatures.
"""

import apvg_tf  # noqa: F401  pylint: disable=unused-import  (selects Keras 2 first)
from absl import flags
from ml_collections import config_flags

from apvg_tf import cli, serving

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder written by train.py.")
_OUT = flags.DEFINE_string("out", None, "Output SavedModel folder.")
_ONNX = flags.DEFINE_bool("onnx", False, "Also write model.onnx (the chunked step) beside it.")
_CHUNK = flags.DEFINE_integer(
    "chunk_frames", None, "Frames per step call of generate.py, and the fixed length the ONNX "
    "step is unrolled over (default: the config's eval.chunk_frames).")
flags.mark_flags_as_required(["config", "workdir", "out"])


def main(argv):
  del argv
  meta = serving.export_run(_CONFIG.value, _WORKDIR.value, _OUT.value, onnx=_ONNX.value,
                            chunk_frames=_CHUNK.value)
  print(f"exported {_OUT.value}: {meta['resolution']}x{meta['resolution']} at {meta['fps']} fps")


if __name__ == "__main__":
  cli.run(main)
