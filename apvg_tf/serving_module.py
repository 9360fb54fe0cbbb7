"""The SavedModel of an exported pipeline: its module, writing it, and rebuilding it.

Signatures (DESIGN.md, "Export"; plain tensors in and out, batch 1):
  generate(waveform float32 [N] mono 44.1 kHz)
      -> frames uint8 [T, R, R, 3], keypoints float32 [T, 67, 2]
     The whole pipeline in one call, the CQT layer included: nothing but TensorFlow is needed
     to serve it. Memory grows with N; for long music use `step`.
  initial_state() -> the state tensors at the start of a song (see below).
  step(windows float32 [1, T, 84, 87] log-CQT windows of T stream positions (not normalised;
       the model holds the training statistics), noise float32 [1, T, z_dim], <state>)
      -> frames float32 [1, T, R, R, 3] in [0, 1] (float, so runtimes can be compared before
         rounding), keypoints float32 [1, T, 67, 2], and the new state as next_<state name>.
     With a KP lookahead of D frames the outputs lag the positions by D (`apvg_tf.streaming`).
     State tensors, by name: those of `PerformanceGenerator.initial_state` (the
     `apvg_model.json` of the export lists them with their shapes).
The files beside it and the metadata are `apvg_tf.export_format`'s.
"""

import os

import numpy as np
import tensorflow as tf

from apvg_tf import audio, streaming
from apvg_tf.data import manifest as manifest_lib
from apvg_tf.errors import InputError
from apvg_tf.export_format import (FORMAT, FORMAT_VERSION, INITIAL_STATE, METADATA, NEXT,
                                   read_metadata, to_uint8)
from apvg_tf.models.performance_generator import STATE_KEYS, performance_generator_from_config


class ServingModule(tf.Module):
  """A trained PerformanceGenerator with the audio front end, for export."""

  def __init__(self, generator, manifest, *, chunk_frames=64):
    """Args: generator (a trained PerformanceGenerator), manifest (the training dataset's
    manifest, or an export's metadata: fps, cqt_mean, cqt_std, instrument), chunk_frames
    (positions per `step` call of generate.py; the ONNX step is unrolled over them)."""
    super().__init__(name="apvg_serving")
    self.generator = generator
    self.cqt_layer = audio.CQT(name="cqt")
    self.cqt_layer.build(tf.TensorShape([None, None]))
    # NumPy: made constants inside each trace (audio.normalize_cqt).
    self.cqt_mean = np.asarray(manifest["cqt_mean"], np.float32)
    self.cqt_std = np.asarray(manifest["cqt_std"], np.float32)
    self.instrument = manifest.get("instrument")
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
        tf.TensorSpec([1, None, audio.N_BINS, audio.WINDOW_COLUMNS], tf.float32,
                      name="windows"),
        tf.TensorSpec([1, None, z], tf.float32, name="noise")] + state_specs)
    self.initial_state = tf.function(self._initial_state, input_signature=[])
    self.generate = tf.function(self._generate, input_signature=[
        tf.TensorSpec([None], tf.float32, name="waveform")])

  def _initial_state(self):
    return self.generator.initial_state(1)

  def _step(self, windows, noise, *state):
    normalized = audio.normalize_cqt(windows, self.cqt_mean, self.cqt_std, bins_axis=-2)
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
    lookahead = self.generator.lookahead
    positions = streaming.num_positions(num_frames, lookahead)
    # Columns outside the song are the CQT mean, which normalises to training's zero padding.
    windows = audio.frame_windows_tf(columns, self.fps, tf.range(positions),
                                     pad_value=tf.constant(self.cqt_mean))
    noise = tf.random.normal([positions, self.generator.z_dim])
    # The whole song as one chunk of the one streaming loop.
    (_, out, _), = streaming.stream(self._stream_step, self._initial_state(), windows,
                                    num_frames, lookahead=lookahead, noise=noise)
    result = {"frames": to_uint8(out["frames"][0])}
    if "keypoints" in out:
      result["keypoints"] = out["keypoints"][0]
    return result

  def _stream_step(self, windows, noise, state, keypoints):
    """`_step` as `streaming.stream` calls a step (state a dict)."""
    del keypoints
    out = self._step(windows, noise, *[state[k] for k in self.state_names])
    return ({k: out[k] for k in ("frames", "keypoints") if k in out},
            {k: out[NEXT + k] for k in self.state_names})

  def metadata(self, **extra):
    """apvg_model.json's entries (`export_format`), with `extra` ones."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "fps": self.fps,
            "resolution": self.resolution, "chunk_frames": self.chunk_frames,
            "z_dim": self.generator.z_dim, "lookahead_frames": self.generator.lookahead,
            "sample_rate": audio.SAMPLE_RATE, "state": self.state_shapes,
            "cqt_mean": self.cqt_mean.tolist(),  # generate.py pads windows with it.
            "cqt_std": self.cqt_std.tolist(),  # Rebuilding the module needs no dataset.
            "instrument": self.instrument, "state_names": list(self.state_names), **extra}


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
  manifest_lib.write_json_atomic(os.path.join(out_dir, METADATA), module.metadata(**metadata))
  return module


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


def module_from_export(model_dir, base_config, *, dataset_dir=None):
  """Rebuilds an export's in-memory ServingModule from its config and saved variables.

  For an export whose work directory is gone: to write its ONNX step or a new export
  (export.py --from_model), or to run the in-memory models beside the exported ones (the
  generation benchmark). The models are built as in training from the config in
  `apvg_model.json` (`performance_generator_from_config`), with the CQT statistics the
  export stores (they are constants of the graph, not variables), then the SavedModel's
  variables are read into them. The result is checked against the SavedModel's own `step`
  on random windows. No training code and no dataset are needed (an export of format 1
  without the CQT standard deviation takes it from its training dataset).

  Args:
    model_dir: an exported model folder (export.py).
    base_config: the default config (configs/default.py's `get_config()`), which the
      exported values update, so options added since the export take their defaults.
    dataset_dir: only for an export without `cqt_std`: its training dataset (default: the
      `dataset_dir` of the export's config).

  Returns:
    The ServingModule; its `config` is the export's training config, e.g. for
    `stu_eval.evaluate_stu(module.generator, module.config, "test")`.

  Raises:
    InputError: if the folder is not an export, or the rebuilt model does not reproduce the
      SavedModel (another code version, or another dataset's statistics).
  """
  meta = read_metadata(model_dir, to_stream=False)
  if "config" not in meta:
    raise InputError(f"{model_dir!r} has no training config in {METADATA}; export it again "
                     "from its work directory")
  config = base_config
  for (block, option), value in OPTIONS_BEFORE_THEY_EXISTED.items():
    if option not in meta["config"].get(block, {}):
      config[block][option] = value
  _merge_config(config, meta["config"])
  stats = dict(meta)
  if "cqt_std" not in stats:  # Format 1: the statistics live in the training dataset.
    stats.update(manifest_lib.load_manifest(dataset_dir or config.dataset_dir))
  generator = performance_generator_from_config(config, instrument=meta.get("instrument"))
  module = ServingModule(generator, stats, chunk_frames=meta["chunk_frames"])
  tf.train.Checkpoint(module).read(
      os.path.join(model_dir, "variables", "variables")).expect_partial()
  _check_against_saved_model(module, model_dir, meta)
  module.config = config
  return module


def _check_against_saved_model(module, model_dir, meta):
  """InputError unless `module`'s step gives the frames of the SavedModel's own step."""
  rng = np.random.default_rng()
  frames = meta["chunk_frames"]
  windows = tf.constant(rng.normal(-4.0, 1.0, [1, frames, audio.N_BINS, audio.WINDOW_COLUMNS]),
                        tf.float32)
  noise = tf.constant(rng.normal(size=[1, frames, meta["z_dim"]]), tf.float32)
  saved = tf.saved_model.load(model_dir).signatures["step"]
  # A format-1 export's step with a lookahead takes D more windows; it is called as it was.
  extra = 0 if meta.get("format_version", 1) >= 2 else meta.get("lookahead_frames", 0)
  if extra:
    return  # No step of this version takes that input; its variables were read by name.
  state = module.initial_state()
  ours = module.step(windows, noise, *[state[k] for k in module.state_names])["frames"]
  theirs = saved(windows=windows, noise=noise, **{k: state[k] for k in meta["state_names"]})
  error = float(tf.reduce_max(tf.abs(ours - theirs["frames"])))
  if error > 1e-5:
    raise InputError(f"the models rebuilt from {model_dir!r} differ from its SavedModel (max "
                     f"abs {error:.3g} on frames in [0, 1]); export it again from its work "
                     "directory (or, for a format-1 export, pass --dataset_dir= the dataset "
                     "it was trained on)")


def reexport(model_dir, out_dir, base_config, *, dataset_dir=None):
  """Writes an export again in this version's format, from the export alone.

  Args:
    model_dir: an exported model folder (any format version).
    out_dir: the new export folder.
    base_config: the default config (see `module_from_export`).
    dataset_dir: as for `module_from_export`.

  Returns:
    The new export's metadata.
  """
  old = read_metadata(model_dir, to_stream=False)
  module = module_from_export(model_dir, base_config, dataset_dir=dataset_dir)
  stats = {"fps": module.fps, "cqt_mean": module.cqt_mean, "cqt_std": module.cqt_std,
           "instrument": module.instrument}
  kept = {k: v for k, v in old.items() if k not in module.metadata()}
  export_saved_model(module.generator, stats, out_dir, chunk_frames=module.chunk_frames, **kept)
  return read_metadata(out_dir)
