"""Exports a trained run as a SavedModel with `generate` and `step` signatures (and ONNX).

  python export.py --config=configs/synth_cello.py --workdir=runs/cello --out=saved_models/NAME \
      [--onnx --chunk_frames=16]
  python export.py --from_model=saved_models/NAME                 # adds model.onnx
  python export.py --from_model=saved_models/OLD --out=saved_models/NEW   # this format

The run needs all three stages (python train.py ... --config.stage=all). The result is what
generate.py --model=... and TensorFlow Serving load; see apvg_tf/serving_module.py for the
signatures. `--from_model` works from an existing export whose work directory is gone (e.g.
the shipped demo): the models are rebuilt from its config, its variables read in, and the
result checked against its SavedModel first; then its ONNX step is written beside it, or,
with --out, the whole export again in this version's format.
"""

import apvg_tf  # noqa: F401  pylint: disable=unused-import  (selects Keras 2 first)
from absl import flags
from ml_collections import config_flags

from apvg_tf import cli, export_run, onnx_export, serving_module
from apvg_tf.errors import InputError
from configs import default

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder written by train.py.")
_OUT = flags.DEFINE_string("out", None, "Output SavedModel folder.")
_FROM_MODEL = flags.DEFINE_string(
    "from_model", None, "Instead of --config/--workdir: an exported model folder to write "
    "model.onnx into, or, with --out, to export again in this version's format.")
_DATASET_DIR = flags.DEFINE_string(
    "dataset_dir", None, "With --from_model, for an export of format 1 only: its training "
    "dataset (default: its config's), which holds the CQT statistics it lacks.")
_ONNX = flags.DEFINE_bool("onnx", False, "Also write model.onnx (the chunked step) beside it.")
_CHUNK = flags.DEFINE_integer(
    "chunk_frames", None, "Frames per step call of generate.py, and the fixed length the ONNX "
    "step is unrolled over (default: the config's eval.chunk_frames).")


def main(argv):
  del argv
  if _FROM_MODEL.value:
    if _OUT.value:
      meta = serving_module.reexport(_FROM_MODEL.value, _OUT.value, default.get_config(),
                                     dataset_dir=_DATASET_DIR.value)
      print(f"exported {_OUT.value} (format {meta['format_version']})")
      return
    path = onnx_export.add_onnx(_FROM_MODEL.value, default.get_config(),
                                dataset_dir=_DATASET_DIR.value, chunk_frames=_CHUNK.value)
    print(f"exported {path}")
    return
  missing = [f"--{name}" for name, value in (("config", _CONFIG.value), ("workdir",
             _WORKDIR.value), ("out", _OUT.value)) if not value]
  if missing:
    raise InputError(f"missing {', '.join(missing)}: give --config, --workdir and --out (or "
                     "--from_model=DIR)")
  meta = export_run.export_run(_CONFIG.value, _WORKDIR.value, _OUT.value, onnx=_ONNX.value,
                               chunk_frames=_CHUNK.value)
  print(f"exported {_OUT.value}: {meta['resolution']}x{meta['resolution']} at {meta['fps']} fps")


if __name__ == "__main__":
  cli.run(main)
