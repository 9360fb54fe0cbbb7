"""The stages: their tasks, their configs, and restoring a trained stage from a work directory.

Layout of a work directory:
  <workdir>/config.json                the config of the last run
  <workdir>/<stage>/checkpoints/       tf.train.CheckpointManager (model, optimizer, step)
  <workdir>/<stage>/best/              the checkpoint with the best validation score so far,
                                       and best.json ({"step", "score"}); evaluation and
                                       export use it when `config.eval.checkpoint == "best"`
  <workdir>/<stage>/model.json         the model settings the stage was built with
  <workdir>/<stage>/train/             TensorBoard events
A stage that builds on others gets their trained models from `make_task` (frozen): the STU
the KP and CVG of its own work directory, the KP with the pose perceptual loss the sync
evaluator of `config.sync.evaluator_workdir`.
"""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from apvg_tf import data
from apvg_tf.errors import InputError
from apvg_tf.training import cvg_task, khp_task, stu_task, sync_task

TASKS = {"khp": khp_task.KHPTask, "cvg": cvg_task.CVGTask, "stu": stu_task.STUTask,
         "sync": sync_task.SyncTask}
STAGE_ORDER = ("khp", "cvg", "stu")
# Loop settings a stage's config block may override (0 there: use the shared value).
STAGE_OVERRIDES = ("num_train_steps", "batch_size", "window_frames")


def stage_config(config, stage):
  """The config a stage trains and evaluates with.

  Each stage's block (`config.khp`, `config.cvg`, ...) may set `num_train_steps`,
  `batch_size` and `window_frames`; non-zero values replace the shared ones, so
  `--config.stage=all` can train each stage for its own length and on its own windows.

  Args:
    config: the run's ConfigDict.
    stage: 'khp', 'cvg', 'stu' or 'sync'.

  Returns:
    A resolved copy of `config`.
  """
  resolved = config.copy_and_resolve_references()
  block = config.get(stage)
  with resolved.unlocked():
    for key in STAGE_OVERRIDES:
      value = block.get(key, 0) if block is not None else 0
      if value:
        resolved[key] = value
  return resolved


def stage_dir(workdir, stage):
  return os.path.join(workdir, stage)


def learning_rate_schedule(config):
  """The paper's Adam learning rate: from 1e-3 down to 1.25e-4 over the run (exponential)."""
  return tf.keras.optimizers.schedules.ExponentialDecay(
      config.learning_rate, decay_steps=max(config.num_train_steps, 1),
      decay_rate=config.final_learning_rate / config.learning_rate)


def frozen_stages(config, stage, for_training=False):
  """The stages whose trained models `stage` builds on, as `config` sets it up.

  The STU's pipeline contains the KP and CVG; the KP needs the sync evaluator only for the
  pose perceptual loss, so evaluating or exporting it does not.
  """
  if stage == "stu":
    return tuple(s for s, used in (("khp", config.stu.use_heatmap),
                                   ("cvg", config.stu.use_coarse)) if used)
  if stage == "khp" and for_training and config.khp.pose_perceptual_weight > 0:
    return ("sync",)
  return ()


def make_task(config, stage, manifest, workdir=None, *, frozen=None, for_training=False):
  """The task of a stage, with the trained models of the stages it builds on.

  Args:
    config: the stage's config (`stage_config`).
    stage: a key of TASKS.
    manifest: the dataset's manifest.
    workdir: the run folder that holds the earlier stages (the STU's KP and CVG).
    frozen: models to use instead of restoring them (dict stage -> model).
    for_training: also restore what only the training losses use (`frozen_stages`).

  Raises:
    InputError: for an unknown stage, or when a stage it builds on is not trained.
  """
  if stage not in TASKS:
    raise InputError(f"unknown stage {stage!r}; expected one of {', '.join(TASKS)} or all")
  frozen = dict(frozen or {})
  missing = [s for s in frozen_stages(config, stage, for_training) if s not in frozen]
  task = TASKS[stage](config, manifest, frozen=frozen)  # Its config is checked first.
  if not missing:
    return task
  for needed in missing:
    if needed == "sync":
      frozen[needed] = restore_sync_evaluator(config)
      if frozen[needed] is None:
        raise InputError(
            "khp.pose_perceptual_weight > 0 needs a trained sync evaluator: train one "
            "with python train.py --config=... --workdir=EVAL --config.stage=sync, then pass "
            "--config.sync.evaluator_workdir=EVAL")
    else:
      frozen[needed] = _restore_earlier(config, workdir, needed, stage)
  return TASKS[stage](config, manifest, frozen=frozen)


def _restore_earlier(config, workdir, needed, stage):
  if workdir is None:
    raise InputError(f"the {stage} stage trains on the {needed} stage of its work directory; "
                     "give one")
  return restore(config, workdir, needed)[0].model  # Frozen: the caller does not train it.


def restore_sync_evaluator(config):
  """The trained sync evaluator of `config.sync.evaluator_workdir` (frozen), or None if unset.

  Raises:
    InputError: if the folder is set but holds no trained evaluator.
  """
  workdir = config.sync.evaluator_workdir
  if not workdir:
    return None
  try:
    task, _ = restore(config, workdir, "sync")
  except InputError as e:
    raise InputError(f"config.sync.evaluator_workdir: {e}") from None
  task.model.trainable = False
  return task.model


def restore(config, workdir, stage, strategy=None, training_state=False):
  """Builds a stage's task and restores its checkpoint (for evaluation, export, later stages).

  Args:
    config: the run's config.
    workdir: the run's folder.
    stage: "khp", "cvg", "stu" or "sync".
    strategy: a tf.distribute strategy to build under (the default one if None).
    training_state: also restore what only training reads (optimizers, discriminators, the
      KP's trained weights beside its EMA), as a resumed run does; these must then match the
      config. By default only the step and the inference model (`inference_checkpoint`).

  Returns:
    (task, step): the task with its model, and the restored step.

  Raises:
    InputError: if the work directory has no checkpoint of that stage, or its model is not
      the one the config builds (e.g. evaluated without an override it was trained with).
  """
  config = stage_config(config, stage)
  manifest = data.load_manifest(config.dataset_dir)
  strategy = strategy or tf.distribute.get_strategy()
  with strategy.scope():
    task = make_task(config, stage, manifest, workdir)
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
    items = task.build(tf.keras.optimizers.Adam(learning_rate_schedule(config)))
    checkpoint = (tf.train.Checkpoint(step=step, **items) if training_state
                  else inference_checkpoint(step, items))
  latest = tf.train.latest_checkpoint(os.path.join(stage_dir(workdir, stage), "checkpoints"))
  best = tf.train.latest_checkpoint(os.path.join(stage_dir(workdir, stage), "best"))
  if config.eval.checkpoint == "best" and best is not None:
    latest = best
  if latest is None:
    raise InputError(f"{workdir!r} has no {stage} checkpoint; train it first: python train.py "
                     f"--config=... --workdir={workdir} --config.stage={stage}")
  check_model_matches(latest, task.model, stage, workdir)
  checkpoint.restore(latest).expect_partial()
  return task, int(step.numpy())


def inference_checkpoint(step, items):
  """What evaluation, export and later stages read of a stage's checkpoint.

  The step and the stage's inference model (every task checkpoints it as "model"; the KP's
  EMA average). Discriminators and optimizer slots only training reads, so a run evaluates
  and exports whatever the config says of them (e.g. the STU's discriminator switches).

  Args:
    step: the int64 step variable.
    items: what `task.build` returned.

  Returns:
    A tf.train.Checkpoint to `restore(...).expect_partial()`.
  """
  return tf.train.Checkpoint(step=step, model=items["model"])


MODEL_SETTINGS = "model.json"  # <workdir>/<stage>/model.json: the settings it was built with.
# get_config values that come from the data or the machine, or that only training reads (an
# initializer only sets the weights a checkpoint then replaces).
_NOT_SETTINGS = ("mean_pose", "first_frame", "canvas", "vgg_weights_path", "name", "dropout",
                 "input_noise", "gcn_output_initializer")


def model_settings(model):
  """The settings that define a stage's model and its outputs: a JSON-ready dict."""
  config = json.loads(json.dumps(model.get_config(), default=lambda x: np.asarray(x).tolist()))
  return {key: value for key, value in config.items() if key not in _NOT_SETTINGS}


def check_settings_match(model, stage, workdir):
  """Raises an InputError unless the stage was trained with the model settings the config
  gives (e.g. the KP's lookahead, which no variable holds); runs without a record pass."""
  saved = os.path.join(stage_dir(workdir, stage), MODEL_SETTINGS)
  if os.path.exists(saved):  # Runs of earlier versions have none.
    with open(saved) as f:  # Keys added to _NOT_SETTINGS since the run was trained drop out.
      trained = {k: v for k, v in json.load(f).items() if k not in _NOT_SETTINGS}
    built = model_settings(model)
    differ = sorted(k for k in trained.keys() | built.keys() if trained.get(k) != built.get(k))
    if differ:
      hint = (" The arm path's points follow the dataset's instrument." if "arm_points" in differ
              else "")
      raise InputError(
          f"the {stage} model in {workdir!r} was trained with other settings than this config "
          f"gives: " + ", ".join(f"{k}={trained.get(k)} (this config: {built.get(k)})"
                                 for k in differ[:4]) +
          f". Use the config and overrides the run was trained with (listed in {saved})." + hint)


def check_model_matches(path, model, stage, workdir):
  """Raises an InputError unless the stage's settings match (`check_settings_match`) and
  checkpoint `path` holds exactly `model`'s variables.

  A partial restore would otherwise leave the variables the checkpoint lacks at their
  initial values (or ignore those the config's model lacks) and evaluate a wrong model
  without a word.
  """
  check_settings_match(model, stage, workdir)
  with tempfile.TemporaryDirectory() as folder:
    written = tf.train.Checkpoint(model=model).write(os.path.join(folder, "model"))
    expected = {name: shape for name, shape in tf.train.list_variables(written)
                if name.startswith("model/")}
  found = {name: shape for name, shape in tf.train.list_variables(path)
           if name.startswith("model/")}
  short = lambda name: name.split("/.ATTRIBUTES")[0]
  problems = []
  only_checkpoint = sorted(found.keys() - expected.keys())
  if only_checkpoint:
    problems.append(f"the checkpoint has {len(only_checkpoint)} variables the config's model "
                    f"lacks, e.g. {short(only_checkpoint[0])}")
  only_model = sorted(expected.keys() - found.keys())
  if only_model:
    problems.append(f"the config's model has {len(only_model)} variables the checkpoint "
                    f"lacks, e.g. {short(only_model[0])}")
  reshaped = sorted(n for n in expected.keys() & found.keys() if expected[n] != found[n])
  if reshaped:
    problems.append(f"{len(reshaped)} variables differ in shape, e.g. {short(reshaped[0])}: "
                    f"{found[reshaped[0]]} in the checkpoint, {expected[reshaped[0]]} built")
  if problems:
    raise InputError(
        f"the {stage} checkpoint in {workdir!r} is not the model this config builds: "
        f"{'; '.join(problems)}. Use the config and overrides "
        f"the run was trained with (listed in {os.path.join(workdir, 'config.json')}).")
