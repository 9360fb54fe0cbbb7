"""`evaluate_run(config, workdir, split)`: every trained stage of a run into metrics.json.

The evaluation package imports training only here, to restore a run's stages.
"""

import json
import os

import tensorflow as tf

from apvg_tf.data import manifest as manifest_lib
from apvg_tf.errors import InputError
from apvg_tf.evaluation import cvg_eval, khp_eval, stu_eval, sync_eval
from apvg_tf.training import stages as stages_lib

# Stage -> its evaluation function(task, config, split, out_dir) -> metrics dict.
EVALUATORS = {
    "khp": lambda task, config, *args, **kwargs: khp_eval.evaluate_khp(
        task.model, config, *args, evaluator=stages_lib.restore_sync_evaluator(config), **kwargs),
    "cvg": lambda task, *args, **kwargs: cvg_eval.evaluate_cvg(task.model, *args, **kwargs),
    "stu": lambda task, *args, **kwargs: stu_eval.evaluate_stu(task.generator(), *args,
                                                               **kwargs),
    "sync": lambda task, *args, **kwargs: sync_eval.evaluate_sync(task.model, *args, **kwargs),
}


def trained_stages(workdir):
  """The stages of EVALUATORS that have a checkpoint in `workdir`, in pipeline order."""
  return [stage for stage in stages_lib.STAGE_ORDER + ("sync",) if stage in EVALUATORS and
          tf.train.latest_checkpoint(os.path.join(stages_lib.stage_dir(workdir, stage),
                                                  "checkpoints"))]


def evaluate_run(config, workdir, split=None, stages=None):
  """Evaluates the stages trained in `workdir` and writes `<workdir>/metrics.json`.

  Every stage with a checkpoint (or those of `stages`) is evaluated (KHP: keypoint metrics;
  CVG: coarse-video metrics; STU: the final video of the whole pipeline). Their metrics are
  merged into one dict, later stages winning (so `psnr` is the final video's once the STU is
  trained), with `<stage>_step` for each and every stage's own metrics under `stages`.

  Args:
    config: the run's config.
    workdir: the run folder (checkpoints per stage).
    split: split to evaluate (default `config.eval.split`).
    stages: optional subset of the trained stages to evaluate (e.g. ["stu"] for ablations
      that share their KHP and CVG).

  Returns:
    The metrics dict that was written.

  Raises:
    InputError: if no stage has a checkpoint, a stage asked for has none, or the split is
      missing or empty.
  """
  split = split or config.eval.split
  trained = trained_stages(workdir)
  if not trained:
    raise InputError(f"{workdir!r} has no checkpoint of any stage (khp, cvg, stu, sync); train one "
                     f"first: python train.py --config=... --workdir={workdir} "
                     "--config.stage=khp")
  missing = [s for s in stages or () if s not in trained]
  if missing:
    raise InputError(f"{workdir!r} has no {missing[0]} checkpoint (trained: "
                     f"{', '.join(trained)}); train it first or leave it out of --stages")
  stages = [s for s in trained if s in stages] if stages else trained
  metrics, per_stage = {"split": split}, {}
  for stage in stages:
    task, step = stages_lib.restore(config, workdir, stage)
    metrics[f"{stage}_step"] = step
    per_stage[stage] = EVALUATORS[stage](task, config, split,
                                         out_dir=os.path.join(workdir, stage, f"eval_{split}"))
    metrics.update(per_stage[stage])
  metrics["stages"] = per_stage
  manifest_lib.write_json_atomic(os.path.join(workdir, "metrics.json"), metrics)
  print(json.dumps(metrics, indent=1))
  return metrics
