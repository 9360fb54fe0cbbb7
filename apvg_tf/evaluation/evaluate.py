"""`evaluate(config, workdir, split)`: metrics of every trained stage into metrics.json."""

import json
import os

from apvg_tf.data import manifest as manifest_lib
from apvg_tf.evaluation import khp_eval
from apvg_tf.training import trainer


def evaluate(config, workdir, split=None):
  """Evaluates the stages trained in `workdir` and writes `<workdir>/metrics.json`.

  Args:
    config: the run's config.
    workdir: the run folder (checkpoints per stage).
    split: split to evaluate (default `config.eval.split`).

  Returns:
    The metrics dict that was written.

  Raises:
    InputError: if no stage has a checkpoint, or the split is missing or empty.
  """
  split = split or config.eval.split
  task, step = trainer.restore(config, workdir, "khp")
  metrics = {"split": split, "khp_step": step}
  metrics.update(khp_eval.evaluate_khp(task.model, config, split,
                                       out_dir=os.path.join(workdir, "khp", f"eval_{split}")))
  manifest_lib.write_json_atomic(os.path.join(workdir, "metrics.json"), metrics)
  print(json.dumps(metrics, indent=1))
  return metrics
