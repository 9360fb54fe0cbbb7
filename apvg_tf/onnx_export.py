"""The chunked step as ONNX (tf2onnx), and its ONNX Runtime runner.

The ONNX model is the SavedModel's `step` for a fixed chunk of `chunk_frames` frames, with the
recurrent state as explicit inputs and outputs (names as in apvg_model.json) and every time
loop unrolled (`PerformanceGenerator.set_unroll`), so the graph has no ONNX Loop:
  inputs   windows [1, T + D, 84, 87] (log-CQT windows; D the KP's lookahead_frames),
           noise [1, T, z_dim], <state>
  outputs  frames float32 [1, T, R, R, 3] in [0, 1], keypoints [1, T, 67, 2], next_<state>
A shorter last chunk (t < T frames, t + D windows) is padded to T frames and T + D windows
and cropped by the runner.
"""

import os

import numpy as np
import tensorflow as tf

from apvg_tf.errors import InputError
from apvg_tf.serving import INITIAL_STATE, NEXT, read_metadata

OPSET = 17


def export_onnx(module, path):
  """Writes the unrolled step of a ServingModule to `path` (an .onnx file).

  Args:
    module: an apvg_tf.serving.ServingModule.
    path: output file.
  """
  import tf2onnx  # pylint: disable=g-import-not-at-top
  generator, chunk = module.generator, module.chunk_frames
  specs = [tf.TensorSpec([1, chunk + generator.lookahead, 84, 87], tf.float32, name="windows"),
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


class OnnxRunner:
  """The ONNX step with NumPy in and out (the interface of generation.SavedModelRunner)."""

  def __init__(self, path):
    if not os.path.isfile(path):
      raise InputError(f"{path!r} does not exist; export one with: python export.py ... --onnx")
    self.folder = os.path.dirname(os.path.abspath(path))
    self.metadata = read_metadata(self.folder)
    import onnxruntime  # pylint: disable=g-import-not-at-top
    try:
      self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as e:  # pylint: disable=broad-except  (onnxruntime raises its own types)
      raise InputError(f"{path!r} is not a loadable ONNX model ({type(e).__name__}); export "
                       "it again") from e
    self.state_names = self.metadata["state_names"]
    self.chunk = int(self.metadata["chunk_frames"])
    self.output_names = [o.name for o in self.session.get_outputs()]

  def initial_state(self):
    """The state at the start of a song, as the export stored it (INITIAL_STATE)."""
    with np.load(os.path.join(self.folder, INITIAL_STATE)) as saved:
      return {k: saved[k].astype(np.float32) for k in self.state_names}

  def step(self, windows, noise, state):
    frames = noise.shape[1]
    if frames < self.chunk:
      # Padding after the chunk's windows: the KP is causal, so the kept outputs never hear it.
      pad = [(0, 0), (0, self.chunk - frames)]
      windows = np.pad(windows, pad + [(0, 0), (0, 0)])
      noise = np.pad(noise, pad + [(0, 0)])
    feeds = {"windows": windows.astype(np.float32), "noise": noise.astype(np.float32),
             **{k: state[k].astype(np.float32) for k in self.state_names}}
    values = dict(zip(self.output_names, self.session.run(self.output_names, feeds)))
    outputs = {k: values[k][:, :frames] for k in ("frames", "keypoints") if k in values}
    return outputs, {k: values[NEXT + k] for k in self.state_names}
