"""The exported model: a SavedModel with `generate` and `step` signatures, and its loader.

Signatures (DESIGN.md, "Export"; plain tensors in and out, batch 1):
  generate(waveform float32 [N] mono 44.1 kHz)
      -> frames uint8 [T, R, R, 3], keypoints float32 [T, 67, 2]
     The whole pipeline in one call, the CQT layer included: nothing but TensorFlow is needed
     to serve it. Memory grows with N; for long music use `step`.
  initial_state() -> the state tensors at the start of a song (see below).
  step(windows float32 [1, T, 84, 87] log-CQT windows (not normalised; the model holds the
       training statistics), noise float32 [1, T, z_dim], <state tensors>)
      -> frames float32 [1, T, R, R, 3] in [0, 1] (float, so runtimes can be compared before
         rounding), keypoints float32 [1, T, 67, 2], and the new state as next_<state name>
     State tensors, by name: kp_h, kp_c, cvg_h, cvg_c, cvg_frame, stu_g (those of the stages
     the model has; `apvg_model.json` lists them with their shapes).
Beside the SavedModel, `apvg_model.json` holds what a caller needs without TensorFlow: fps,
resolution, chunk frames, z_dim, the state names and shapes, the instrument and how the model
was trained; `initial_state.npz` holds the initial state (for the ONNX runner), and
`model.onnx` the ONNX step (export.py --onnx; see apvg_tf/onnx_export.py).
"""

import json
import os

import numpy as np
import tensorflow as tf

from apvg_tf import audio
from apvg_tf.data import manifest as manifest_lib
from apvg_tf.errors import InputError
from apvg_tf.models.performance_generator import STATE_KEYS

METADATA = "apvg_model.json"
INITIAL_STATE = "initial_state.npz"
NEXT = "next_"  # step's outputs: next_<state name>.  # The state at the start of a song (for the ONNX runner).


def to_uint8(frames):
  """Frames in [0, 1] -> uint8 (rounded), TF or NumPy."""
  if isinstance(frames, np.ndarray):
    return np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)
  return tf.cast(tf.round(tf.clip_by_value(frames, 0.0, 1.0) * 255.0), tf.uint8)


class ServingModule(tf.Module):
  """A trained PerformanceGenerator with the audio front end, for export."""

  def __init__(self, generator, manifest, *, chunk_frames=64):
    super().__init__(name="apvg_serving")
    self.generator = generator
    self.cqt_layer = audio.CQT(name="cqt")
    self.cqt_layer.build(tf.TensorShape([None, None]))
    # NumPy, made constants inside each trace (a captured eager tensor would become an extra
    # input of the ONNX graph). The normalisation is data.normalize_cqt's.
    self.cqt_mean = np.asarray(manifest["cqt_mean"], np.float32)
    self.cqt_inv_std = (1.0 / np.asarray(manifest["cqt_std"], np.float32)).astype(np.float32)
    self.fps = float(manifest["fps"])
    self.chunk_frames = int(chunk_frames)
    self.resolution = generator.resolution
    example = generator.initial_state(1)
    self.state_names = tuple(k for k in STATE_KEYS if k in example)
    self.state_shapes = {k: [int(d) for d in example[k].shape] for k in self.state_names}
    z = generator.z_dim
    state_specs = [tf.TensorSpec(self.state_shapes[k], tf.float32, name=k)
                   for k in self.state_names]
    self.step = tf.function(self._step, input_signature=[
        tf.TensorSpec([1, None, 84, 87], tf.float32, name="windows"),
        tf.TensorSpec([1, None, z], tf.float32, name="noise")] + state_specs)
    self.initial_state = tf.function(self._initial_state, input_signature=[])
    self.generate = tf.function(self._generate, input_signature=[
        tf.TensorSpec([None], tf.float32, name="waveform")])

  def _initial_state(self):
    return self.generator.initial_state(1)

  def _step(self, windows, noise, *state):
    normalized = (windows - tf.constant(self.cqt_mean[None, None, :, None])) * \
        tf.constant(self.cqt_inv_std[None, None, :, None])
    outputs, new_state = self.generator.step(normalized, dict(zip(self.state_names, state)),
                                             noise)
    result = {"frames": outputs["frames"]}
    if "keypoints" in outputs:
      result["keypoints"] = outputs["keypoints"]
    # Distinct names for the new state: an ONNX graph cannot reuse an input's name.
    result.update({NEXT + k: v for k, v in new_state.items()})
    return result

  def _generate(self, waveform):
    columns = self.cqt_layer(waveform[None])[0]  # [M, 84]
    num_samples = tf.cast(tf.shape(waveform)[0], tf.float64)
    num_frames = tf.cast(tf.math.ceil(num_samples * self.fps / audio.SAMPLE_RATE - 1e-9),
                         tf.int32)
    # Columns outside the song are the CQT mean, which normalises to training's zero padding.
    windows = audio.frame_windows_tf(columns, self.fps,
                                     tf.range(num_frames + self.generator.lookahead),
                                     pad_value=tf.constant(self.cqt_mean))
    noise = tf.random.normal([1, num_frames, self.generator.z_dim])
    state = self._initial_state()
    out = self._step(windows[None], noise, *[state[k] for k in self.state_names])
    result = {"frames": to_uint8(out["frames"][0])}
    if "keypoints" in out:
      result["keypoints"] = out["keypoints"][0]
    return result

  def metadata(self, **extra):
    return {"format": "apvg_tf.saved_model", "fps": self.fps, "resolution": self.resolution,
            "chunk_frames": self.chunk_frames, "z_dim": self.generator.z_dim,
            "lookahead_frames": self.generator.lookahead,
            "sample_rate": audio.SAMPLE_RATE, "state": self.state_shapes,
            "cqt_mean": self.cqt_mean.tolist(),  # generate.py pads windows with it.
            "state_names": list(self.state_names), **extra}


def export_saved_model(generator, manifest, out_dir, *, chunk_frames=64, **metadata):
  """Writes the SavedModel and `apvg_model.json` to `out_dir` (replacing an older export).

  Args:
    generator: a trained PerformanceGenerator.
    manifest: the training dataset's manifest (fps, CQT statistics, instrument).
    out_dir: the folder to write.
    chunk_frames: frames per `step` call that generate.py uses.
    **metadata: more entries for apvg_model.json (e.g. config, metrics).

  Returns:
    The ServingModule that was saved.
  """
  module = ServingModule(generator, manifest, chunk_frames=chunk_frames)
  signatures = {
      "generate": module.generate.get_concrete_function(),
      "step": module.step.get_concrete_function(),
      "initial_state": module.initial_state.get_concrete_function(),
  }
  tf.saved_model.save(module, out_dir, signatures=signatures)
  state = module.initial_state()
  np.savez_compressed(os.path.join(out_dir, INITIAL_STATE),
                      **{k: state[k].numpy() for k in module.state_names})
  manifest_lib.write_json_atomic(os.path.join(out_dir, METADATA), module.metadata(
      instrument=manifest.get("instrument"), **metadata))
  return module


def read_metadata(model_dir):
  """The `apvg_model.json` of an exported model folder.

  Raises:
    InputError: if the folder is not an exported APVG-TF model.
  """
  path = os.path.join(model_dir, METADATA)
  if not os.path.isdir(model_dir) or not os.path.isfile(path):
    raise InputError(f"{model_dir!r} is not an exported APVG-TF model (no {METADATA}); export "
                     "one with: python export.py --config=... --workdir=RUN --out=DIR")
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise InputError(f"{path!r} is unreadable ({e}); export the model again") from e


# Options added after the first exports, with the value that reproduces an export whose config
# predates them (the current default of the others already does).
OPTIONS_BEFORE_THEY_EXISTED = {("cvg", "vgg_feature_scale"): 1.0}


def _merge_config(config, values):
  """Sets `values` (an exported config as JSON) into `config`, block by block."""
  for key, value in values.items():
    current = config.get(key)
    if isinstance(value, dict) and current is not None and hasattr(current, "items"):
      _merge_config(current, value)
    else:
      config[key] = tuple(value) if isinstance(current, tuple) and value is not None else value


def module_from_export(model_dir, *, dataset_dir=None):
  """Rebuilds an export's in-memory ServingModule from its config and saved variables.

  For an export whose work directory is gone: to write its ONNX step (export.py
  --from_model) or to run the in-memory models beside the exported ones (the generation
  benchmark). The models are built as in training from the config in `apvg_model.json` and
  the training dataset's manifest (its CQT statistics are constants of the graph, not
  variables), then the SavedModel's variables are read into them. The result is checked
  against the SavedModel's own `step` on random windows.

  Args:
    model_dir: an exported model folder (export.py).
    dataset_dir: the training dataset (default: the `dataset_dir` of the export's config).

  Returns:
    The ServingModule; its `config` is the export's training config (the current defaults
    updated with the exported values), e.g. for `stu_eval.evaluate_stu(module.generator,
    module.config, "test")`.

  Raises:
    InputError: if the folder is not an export, the dataset is missing, or the rebuilt model
      does not reproduce the SavedModel (a different dataset or code version).
  """
  from apvg_tf import data  # pylint: disable=g-import-not-at-top
  from apvg_tf.training import trainer  # pylint: disable=g-import-not-at-top
  from configs import default  # pylint: disable=g-import-not-at-top
  meta = read_metadata(model_dir)
  if "config" not in meta:
    raise InputError(f"{model_dir!r} has no training config in {METADATA}; export it again "
                     "from its work directory")
  config = default.get_config()
  for (block, option), value in OPTIONS_BEFORE_THEY_EXISTED.items():
    if option not in meta["config"].get(block, {}):
      config[block][option] = value
  _merge_config(config, meta["config"])
  config.dataset_dir = dataset_dir or config.dataset_dir
  manifest = data.load_manifest(config.dataset_dir)
  module = ServingModule(trainer.untrained_generator(config, manifest), manifest,
                         chunk_frames=meta["chunk_frames"])
  tf.train.Checkpoint(module).read(
      os.path.join(model_dir, "variables", "variables")).expect_partial()
  rng = np.random.default_rng()
  frames = meta["chunk_frames"]
  args = [tf.constant(rng.normal(-4.0, 1.0, [1, frames, 84, 87]), tf.float32),
          tf.constant(rng.normal(size=[1, frames, meta["z_dim"]]), tf.float32)]
  state = module.initial_state()
  args += [state[k] for k in module.state_names]
  ours = module.step(*args)["frames"]
  saved = tf.saved_model.load(model_dir).signatures["step"](
      windows=args[0], noise=args[1], **dict(zip(module.state_names, args[2:])))["frames"]
  error = float(tf.reduce_max(tf.abs(ours - saved)))
  if error > 1e-5:
    raise InputError(f"the models rebuilt from {model_dir!r} differ from its SavedModel (max "
                     f"abs {error:.3g} on frames in [0, 1]); pass --dataset_dir= the dataset it "
                     "was trained on, or export again from its work directory")
  module.config = config
  return module


def add_onnx(model_dir, *, dataset_dir=None, chunk_frames=None):
  """Writes `model.onnx` into an export folder from the export alone (module_from_export).

  Args:
    model_dir: an exported model folder.
    dataset_dir: its training dataset (default: its config's).
    chunk_frames: must be None or the export's own chunk length (generate.py streams that).

  Returns:
    The path written.

  Raises:
    InputError: as module_from_export, or for another chunk length.
  """
  from apvg_tf import onnx_export  # pylint: disable=g-import-not-at-top
  meta = read_metadata(model_dir)
  if chunk_frames not in (None, meta["chunk_frames"]):
    raise InputError(f"--chunk_frames={chunk_frames}, but {model_dir!r} streams "
                     f"{meta['chunk_frames']}-frame chunks; leave --chunk_frames out")
  path = os.path.join(model_dir, "model.onnx")
  onnx_export.export_onnx(module_from_export(model_dir, dataset_dir=dataset_dir), path)
  return path


def export_run(config, workdir, out_dir, *, onnx=False, chunk_frames=None):
  """Exports the trained pipeline of a work directory (KP, CVG and STU checkpoints).

  Args:
    config: the run's config.
    workdir: the run folder.
    out_dir: the SavedModel folder to write (`model.onnx` goes beside it with `onnx`).
    onnx: also write the ONNX step.
    chunk_frames: frames per step (default `config.eval.chunk_frames`); the ONNX graph is
      unrolled over this many.

  Returns:
    The metadata written to apvg_model.json.

  Raises:
    InputError: if the run has no STU checkpoint (or the earlier stages it needs).
  """
  from apvg_tf import data  # pylint: disable=g-import-not-at-top
  from apvg_tf.training import trainer  # pylint: disable=g-import-not-at-top
  task, step = trainer.restore(config, workdir, "stu")
  manifest = data.load_manifest(config.dataset_dir)
  metrics_path = os.path.join(workdir, "metrics.json")
  metrics = {}
  if os.path.isfile(metrics_path):
    with open(metrics_path) as f:
      metrics = {k: v for k, v in json.load(f).items() if k != "stages"}
  generator = task.generator()
  module = export_saved_model(generator, manifest, out_dir,
                              chunk_frames=chunk_frames or config.eval.chunk_frames,
                              stu_step=step,
                              dataset=manifest.get("source"), metrics=metrics,
                              config=json.loads(config.to_json_best_effort()))
  if onnx:
    from apvg_tf import onnx_export  # pylint: disable=g-import-not-at-top
    onnx_export.export_onnx(module, os.path.join(out_dir, "model.onnx"))
  return read_metadata(out_dir)
