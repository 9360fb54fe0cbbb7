"""Running an exported model: its `step` with NumPy in and out, in TensorFlow or ONNX Runtime.

A runner has `metadata` (the export's apvg_model.json), `initial_state()` and
`step(windows [1, T, 84, 87], noise [1, T, z], state) -> (outputs, new state)`, the step
`apvg_tf.streaming.stream` runs. This layer needs nothing of training or export but the
export format (`apvg_tf.export_format`).
"""

import os

import numpy as np
import onnxruntime
import tensorflow as tf

from apvg_tf.errors import InputError
from apvg_tf.export_format import INITIAL_STATE, NEXT, read_metadata


def _saved_model_damage(model_dir, error):
  """What is wrong with an export folder that `tf.saved_model.load` refused, in a few words."""
  folder = os.path.join(model_dir, "variables")
  shards = sorted(f"variables/{name}" for name in (os.listdir(folder) if os.path.isdir(folder)
                                                   else []) if name.startswith("variables.data-"))
  for name in ["saved_model.pb", "variables/variables.index"] + (
      shards or ["variables/variables.data-00000-of-00001"]):
    if not os.path.isfile(os.path.join(model_dir, name)):
      return f"{name} is missing"
  for name in ("saved_model.pb", "variables/variables.index"):
    if not os.path.getsize(os.path.join(model_dir, name)):
      return f"{name} is empty"
  if isinstance(error, IndexError):
    # The checkpoint reader's "Read less bytes than requested": the index points past the end
    # of the data.
    if len(shards) > 1:
      return "a variables/variables.data-* file is truncated"
    empty = not os.path.getsize(os.path.join(model_dir, shards[0]))
    return f"{shards[0]} is {'empty' if empty else 'truncated'}"
  lines = str(error).strip().splitlines() or [""]
  # TensorFlow prefixes an op's error with "{{function_node ...}} ".
  return f"{type(error).__name__}: {lines[0].rpartition('}} ')[2][:200]}"


class SavedModelRunner:
  """`step` of an exported SavedModel, with NumPy in and out."""

  def __init__(self, model_dir):
    """Loads the SavedModel of an export folder (all of its variables: `step` reads no file).

    Raises:
      InputError: if the folder is not an export, or a file of it is missing or damaged.
    """
    self.metadata = read_metadata(model_dir)
    try:
      self.module = tf.saved_model.load(model_dir)
    except (OSError, ValueError, IndexError, tf.errors.OpError) as e:
      # A missing or unparsable saved_model.pb: OSError or ValueError; a bad variables.index or
      # bad bytes in the data: OpError (DataLossError for a checksum); data cut short:
      # IndexError from the checkpoint reader.
      raise InputError(f"the exported model {model_dir!r} is damaged "
                       f"({_saved_model_damage(model_dir, e)}); export it again with export.py"
                       ) from e
    self.state_names = self.metadata["state_names"]

  def initial_state(self):
    state = self.module.signatures["initial_state"]()
    return {k: state[k].numpy() for k in self.state_names}

  def step(self, windows, noise, state):
    # The serving signature (what TensorFlow Serving calls), so this path is the deployed one.
    out = self.module.signatures["step"](windows=tf.constant(windows), noise=tf.constant(noise),
                                         **{k: tf.constant(v) for k, v in state.items()})
    return ({k: out[k].numpy() for k in ("frames", "keypoints") if k in out},
            {k: out[NEXT + k].numpy() for k in self.state_names})


class OnnxRunner:
  """The ONNX step (`apvg_tf.onnx_export`) in ONNX Runtime, on the CPU."""

  def __init__(self, path):
    if not os.path.isfile(path):
      raise InputError(f"{path!r} does not exist; export one with: python export.py ... --onnx")
    self.folder = os.path.dirname(os.path.abspath(path))
    self.metadata = read_metadata(self.folder)
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
      # Padding after the chunk's positions: the model is causal, so the kept outputs never
      # hear it (the state after it is not used: it is the song's last chunk).
      pad = [(0, 0), (0, self.chunk - frames)]
      windows = np.pad(windows, pad + [(0, 0), (0, 0)])
      noise = np.pad(noise, pad + [(0, 0)])
    feeds = {"windows": windows.astype(np.float32), "noise": noise.astype(np.float32),
             **{k: state[k].astype(np.float32) for k in self.state_names}}
    values = dict(zip(self.output_names, self.session.run(self.output_names, feeds)))
    outputs = {k: values[k][:, :frames] for k in ("frames", "keypoints") if k in values}
    return outputs, {k: values[NEXT + k] for k in self.state_names}


def load_runner(model):
  """A runner for an exported model folder (SavedModel) or `.onnx` file.

  Raises:
    InputError: if `model` is neither.
  """
  if str(model).endswith(".onnx"):
    return OnnxRunner(model)
  return SavedModelRunner(model)
