"""The chunked step as ONNX (tf2onnx), written from a ServingModule or from an export alone.

The ONNX model is the SavedModel's `step` for a fixed chunk of `chunk_frames` positions, with
the recurrent state as explicit inputs and outputs (names as in apvg_model.json) and every
time loop unrolled (`PerformanceGenerator.set_unroll`), so the graph has no ONNX Loop:
  inputs   windows [1, T, 84, 87] (log-CQT windows of T positions), noise [1, T, z_dim],
           <state>
  outputs  frames float32 [1, T, R, R, 3] in [0, 1], keypoints [1, T, 67, 2], next_<state>
With a KP lookahead the outputs lag the positions as the SavedModel's do. A shorter last
chunk is padded to T positions and cropped by the runner (`apvg_tf.runtime.OnnxRunner`).
"""

import os

import tensorflow as tf
import tf2onnx

from apvg_tf import audio, serving_module
from apvg_tf.errors import InputError
from apvg_tf.export_format import ONNX_FILE, read_metadata

OPSET = 17


def export_onnx(module, path):
  """Writes the unrolled step of a ServingModule to `path` (an .onnx file).

  Args:
    module: an apvg_tf.serving_module.ServingModule.
    path: output file.
  """
  generator, chunk = module.generator, module.chunk_frames
  specs = [tf.TensorSpec([1, chunk, audio.N_BINS, audio.WINDOW_COLUMNS], tf.float32,
                         name="windows"),
           tf.TensorSpec([1, chunk, generator.z_dim], tf.float32, name="noise")] + [
               tf.TensorSpec(module.state_shapes[k], tf.float32, name=k)
               for k in module.state_names]
  generator.set_unroll(True)
  try:
    step = tf.function(module._step, input_signature=specs)  # pylint: disable=protected-access
    tmp = path + ".tmp"
    tf2onnx.convert.from_function(step, input_signature=specs, opset=OPSET, output_path=tmp)
    os.replace(tmp, path)
  finally:
    generator.set_unroll(False)


def add_onnx(model_dir, base_config, *, dataset_dir=None, chunk_frames=None):
  """Writes `model.onnx` into an export folder from the export alone.

  Args:
    model_dir: an exported model folder.
    base_config: the default config (see `serving_module.module_from_export`).
    dataset_dir: as for `module_from_export` (format-1 exports only).
    chunk_frames: must be None or the export's own chunk length (generate.py streams that).

  Returns:
    The path written.

  Raises:
    InputError: as module_from_export, or for another chunk length.
  """
  meta = read_metadata(model_dir)
  if chunk_frames not in (None, meta["chunk_frames"]):
    raise InputError(f"--chunk_frames={chunk_frames}, but {model_dir!r} streams "
                     f"{meta['chunk_frames']}-frame chunks; leave --chunk_frames out")
  path = os.path.join(model_dir, ONNX_FILE)
  export_onnx(serving_module.module_from_export(model_dir, base_config,
                                                dataset_dir=dataset_dir), path)
  return path
