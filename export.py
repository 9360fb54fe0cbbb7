"""Exports a trained run as a SavedModel with `generate` and `step` signatures (and ONNX).

  python export.py --config=configs/synth_cello.py --workdir=runs/cello --out=saved_models/NAME \
      [--onnx --chunk_frames=16]
  python export.py --from_model=saved_models/NAME [--dataset_dir=DIR]   # adds model.onnx

The run needs all three stages (python train.py ... --config.stage=all). The result is what
generate.py --model=... and TensorFlow Serving load; see apvg_tf/serving.py for the
signatures. `--from_model` writes the ONNX step of an existing export whose work directory
is gone (e.g. the shipped demo): the models are rebuilt from its config and training dataset,
its variables read in, and the result checked against its SavedModel first.
"""

import apvg_tf  # noqa: F401  pylint: disable=unused-import  (selects Keras 2 first)
from absl import flags
from ml_collections import config_flags

from apvg_tf import cli, serving
from apvg_tf.errors import InputError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder written by train.py.")
_OUT = flags.DEFINE_string("out", None, "Output SavedModel folder.")
_FROM_MODEL = flags.DEFINE_string(
    "from_model", None, "Instead of --config/--workdir/--out: an exported model folder to write "
    "model.onnx into.")
_DATASET_DIR = flags.DEFINE_string(
    "dataset_dir", None, "With --from_model: its training dataset (default: its config's).")
_ONNX = flags.DEFINE_bool("onnx", False, "Also write model.onnx (the chunked step) beside it.")
_CHUNK = flags.DEFINE_integer(
    "chunk_frames", None, "Frames per step call of generate.py, and the fixed length the ONNX "
    "step is unrolled over (default: the config's eval.chunk_frames).")


def main(argv):
  del argv
  if _FROM_MODEL.value:
    path = serving.add_onnx(_FROM_MODEL.value, dataset_dir=_DATASET_DIR.value,
                            chunk_frames=_CHUNK.value)
    print(f"exported {path}")
    return
  missing = [f"--{name}" for name, value in (("config", _CONFIG.value), ("workdir",
             _WORKDIR.value), ("out", _OUT.value)) if not value]
  if missing:
    raise InputError(f"missing {', '.join(missing)}: give --config, --workdir and --out (or "
                     "--from_model=DIR)")
  meta = serving.export_run(_CONFIG.value, _WORKDIR.value, _OUT.value, onnx=_ONNX.value,
                            chunk_frames=_CHUNK.value)
  print(f"exported {_OUT.value}: {meta['resolution']}x{meta['resolution']} at {meta['fps']} fps")


if __name__ == "__main__":
  cli.run(main)
