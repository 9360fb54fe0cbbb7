"""The exported model's format: file names, metadata, state names, and the uint8 frames.

An export is a folder (DESIGN.md, "Export"):
  saved_model.pb, variables/   the SavedModel (`apvg_tf.serving_module`)
  apvg_model.json              METADATA: what a caller needs without TensorFlow (fps,
                               resolution, chunk frames, z_dim, lookahead_frames, the state
                               names and shapes, the CQT statistics, the instrument, the
                               training config and metrics, `format_version`)
  initial_state.npz            INITIAL_STATE: the state at the start of a song
  model.onnx                   the ONNX step (`apvg_tf.onnx_export`), optional
The step's new state comes back as NEXT + <state name> (an ONNX graph cannot reuse an input's
name). This module is all that the runtime that plays an export needs of it.

Format versions:
  1  `step` took the windows of its T frames and, with a KP lookahead D, the D after them.
  2  `step` takes the windows of its own T positions; the lookahead is the model's state and
     its outputs lag by D (`apvg_tf.streaming`). A version-1 export without a lookahead (the
     shipped demo's first export) has the same step and is read as it is.
"""

import json
import os

import numpy as np
import tensorflow as tf

from apvg_tf.errors import InputError

FORMAT = "apvg_tf.saved_model"
FORMAT_VERSION = 2
METADATA = "apvg_model.json"
INITIAL_STATE = "initial_state.npz"
ONNX_FILE = "model.onnx"
NEXT = "next_"  # step's outputs: next_<state name>.


def to_uint8(frames):
  """Frames in [0, 1] -> uint8 (rounded), TF or NumPy."""
  if isinstance(frames, np.ndarray):
    return np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)
  return tf.cast(tf.round(tf.clip_by_value(frames, 0.0, 1.0) * 255.0), tf.uint8)


def read_metadata(model_dir, *, to_stream=True):
  """The `apvg_model.json` of an exported model folder, checked against this version.

  Args:
    model_dir: the export folder.
    to_stream: refuse an export whose step this version cannot stream (to rebuild it into a
      new export, pass False).

  Raises:
    InputError: if the folder is not an exported APVG-TF model, or its format is one this
      version cannot stream.
  """
  path = os.path.join(model_dir, METADATA)
  if not os.path.isdir(model_dir) or not os.path.isfile(path):
    raise InputError(f"{model_dir!r} is not an exported APVG-TF model (no {METADATA}); export "
                     "one with: python export.py --config=... --workdir=RUN --out=DIR")
  try:
    with open(path) as f:
      meta = json.load(f)
  except (OSError, ValueError) as e:
    raise InputError(f"{path!r} is unreadable ({e}); export the model again") from e
  if not isinstance(meta, dict) or meta.get("format") != FORMAT:
    raise InputError(f"{path!r} does not describe an APVG-TF export; export the model again")
  version = meta.get("format_version", 1)
  if version > FORMAT_VERSION:
    raise InputError(f"{model_dir!r} was exported by a newer APVG-TF (format {version}; this "
                     f"one reads up to {FORMAT_VERSION}); update APVG-TF")
  if to_stream and version < 2 and meta.get("lookahead_frames", 0):
    raise InputError(
        f"{model_dir!r} is a format-{version} export whose step hears its lookahead as extra "
        f"windows; convert it: python export.py --from_model={model_dir} --out=NEW_DIR")
  return meta
