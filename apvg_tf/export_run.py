"""Export from a work directory: the trained KP, CVG and STU of a run as a SavedModel."""

import json
import os

from apvg_tf import data, onnx_export, serving_module
from apvg_tf.export_format import ONNX_FILE, read_metadata
from apvg_tf.training import stages


def export_run(config, workdir, out_dir, *, onnx=False, chunk_frames=None):
  """Exports the trained pipeline of a work directory (KP, CVG and STU checkpoints).

  Args:
    config: the run's config.
    workdir: the run folder.
    out_dir: the SavedModel folder to write (`model.onnx` goes beside it with `onnx`).
    onnx: also write the ONNX step.
    chunk_frames: positions per step (default `config.eval.chunk_frames`); the ONNX graph is
      unrolled over this many.

  Returns:
    The metadata written to apvg_model.json.

  Raises:
    InputError: if the run has no STU checkpoint (or the earlier stages it needs).
  """
  task, step = stages.restore(config, workdir, "stu")
  manifest = data.load_manifest(config.dataset_dir)
  metrics_path = os.path.join(workdir, "metrics.json")
  metrics = {}
  if os.path.isfile(metrics_path):
    with open(metrics_path) as f:
      metrics = {k: v for k, v in json.load(f).items() if k != "stages"}
  module = serving_module.export_saved_model(
      task.generator(), manifest, out_dir, chunk_frames=chunk_frames or config.eval.chunk_frames,
      stu_step=step, dataset=manifest.get("source"), metrics=metrics,
      config=json.loads(config.to_json_best_effort()))
  if onnx:
    onnx_export.export_onnx(module, os.path.join(out_dir, ONNX_FILE))
  return read_metadata(out_dir)
