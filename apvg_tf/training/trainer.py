"""The training loop every stage uses: `train_and_evaluate(config, workdir)`.

Layout of a work directory:
  <workdir>/config.json                the config of the last run
  <workdir>/<stage>/checkpoints/       tf.train.CheckpointManager (model, optimizer, step)
  <workdir>/<stage>/best/              the checkpoint with the best validation score so far,
                                       and best.json ({"step", "score"}); evaluation and
                                       export use it when `config.eval.checkpoint == "best"`
  <workdir>/<stage>/train/             TensorBoard events (losses, learning rate, steps/s,
                                       images)
A run resumes from the newest checkpoint of its stage; a stage whose checkpoint has reached
`num_train_steps` is done and is skipped.
"""

import json
import os
import time

import numpy as np
import tensorflow as tf

from apvg_tf import data, strategy as strategy_lib
from apvg_tf.data import manifest as manifest_lib
from apvg_tf.errors import InputError
from apvg_tf.training import cvg_task, khp_task, stu_task

TASKS = {"khp": khp_task.KHPTask, "cvg": cvg_task.CVGTask, "stu": stu_task.STUTask}
STAGE_ORDER = ("khp", "cvg", "stu")
# Loop settings a stage's config block may override (0 there: use the shared value).
STAGE_OVERRIDES = ("num_train_steps", "batch_size")


def stage_config(config, stage):
  """The config a stage trains and evaluates with.

  Each stage's block (`config.khp`, `config.cvg`, ...) may set `num_train_steps` and
  `batch_size`; non-zero values replace the shared ones, so `--config.stage=all` can train
  each stage for its own length.

  Args:
    config: the run's ConfigDict.
    stage: 'khp', 'cvg' or 'stu'.

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


def learning_rate_schedule(config):
  """The paper's Adam learning rate: from 1e-3 down to 1.25e-4 over the run (exponential)."""
  return tf.keras.optimizers.schedules.ExponentialDecay(
      config.learning_rate, decay_steps=max(config.num_train_steps, 1),
      decay_rate=config.final_learning_rate / config.learning_rate)


def make_task(config, stage, manifest, workdir=None):
  """The task of a stage (the STU's restores the frozen KP and CVG from `workdir`)."""
  if stage not in TASKS:
    raise InputError(f"unknown stage {stage!r}; expected one of {', '.join(TASKS)} or all")
  return TASKS[stage](config, manifest, workdir=workdir)


def stage_dir(workdir, stage):
  return os.path.join(workdir, stage)


def restore(config, workdir, stage, strategy=None):
  """Builds a stage's task and restores its newest checkpoint (for evaluation and export).

  Returns:
    (task, step): the task with its model, and the restored step.

  Raises:
    InputError: if the work directory has no checkpoint of that stage.
  """
  config = stage_config(config, stage)
  manifest = data.load_manifest(config.dataset_dir)
  strategy = strategy or tf.distribute.get_strategy()
  with strategy.scope():
    task = make_task(config, stage, manifest, workdir)
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
    items = task.build(tf.keras.optimizers.Adam(learning_rate_schedule(config)))
    checkpoint = tf.train.Checkpoint(step=step, **items)
  latest = tf.train.latest_checkpoint(os.path.join(stage_dir(workdir, stage), "checkpoints"))
  best = tf.train.latest_checkpoint(os.path.join(stage_dir(workdir, stage), "best"))
  if config.eval.checkpoint == "best" and best is not None:
    latest = best
  if latest is None:
    raise InputError(f"{workdir!r} has no {stage} checkpoint; train it first: python train.py "
                     f"--config=... --workdir={workdir} --config.stage={stage}")
  checkpoint.restore(latest).expect_partial()
  return task, int(step.numpy())


def train_and_evaluate(config, workdir):
  """Trains the configured stage(s) in `workdir`, resuming where a previous run stopped.

  Args:
    config: an ml_collections.ConfigDict (see configs/default.py).
    workdir: the run's folder.

  Returns:
    dict stage -> last logged losses.
  """
  stages = STAGE_ORDER if config.stage == "all" else (config.stage,)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=1))
  return {stage: train_stage(config, workdir, stage) for stage in stages}


def train_stage(config, workdir, stage):
  """Trains one stage up to its `num_train_steps` (see module docstring)."""
  config = stage_config(config, stage)
  manifest = data.load_manifest(config.dataset_dir)
  strategy = strategy_lib.make_strategy(config.strategy)
  tf.keras.utils.set_random_seed(config.seed)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  directory = stage_dir(workdir, stage)
  with strategy.scope():
    task = make_task(config, stage, manifest, workdir)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    schedule = learning_rate_schedule(config)
    items = task.build(tf.keras.optimizers.Adam(schedule))
    checkpoint = tf.train.Checkpoint(step=step, **items)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(directory, "checkpoints"),
                                         max_to_keep=config.max_checkpoints)
    best_manager = tf.train.CheckpointManager(checkpoint, os.path.join(directory, "best"),
                                              max_to_keep=1)
    status = checkpoint.restore(manager.latest_checkpoint)
  if manager.latest_checkpoint:
    status.assert_existing_objects_matched()
  start = int(step.numpy())
  if start >= config.num_train_steps:
    print(f"{stage}: already trained ({start} steps); skipping")
    return {}
  if start:
    print(f"{stage}: resuming from step {start}")

  def dataset_fn(input_context):
    # The seed moves with the step, so a resumed run does not replay the windows it saw.
    return data.make_dataset(
        config.dataset_dir, "train", window_frames=config.window_frames,
        batch_size=config.batch_size, seed=config.seed + start, fields=task.fields,
        deterministic=config.deterministic, resolution=config.resolution,
        input_context=input_context)

  dataset = strategy.distribute_datasets_from_function(dataset_fn)
  iterator = iter(dataset)

  @tf.function
  def distributed_step(batch):
    losses = strategy.run(task.train_step, args=(batch, config.batch_size))
    return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for k, v in losses.items()}

  best_path = os.path.join(directory, "best", "best.json")
  best_score = float("inf")
  if os.path.exists(best_path):
    with open(best_path) as f:
      best_score = json.load(f)["score"]
  validate = getattr(task, "validation_score", None) if config.eval_every_steps else None
  writer = tf.summary.create_file_writer(os.path.join(directory, "train"))
  progress = tf.keras.utils.Progbar(config.num_train_steps, stateful_metrics=["lr"])
  progress.update(start)
  logged, tick, tick_step = {}, time.perf_counter(), start
  for current in range(start + 1, config.num_train_steps + 1):
    batch = next(iterator)
    losses = {k: float(v) for k, v in distributed_step(batch).items()}
    bad = [k for k, v in losses.items() if not np.isfinite(v)]
    if bad:
      # Stop before anything is saved from this step: the newest checkpoint stays good.
      raise FloatingPointError(f"{stage}: loss {bad[0]!r} is {losses[bad[0]]} at step "
                               f"{current}; the last good checkpoint is "
                               f"{manager.latest_checkpoint}")
    step.assign(current)
    lr = float(schedule(current))
    progress.update(current, [(k, v) for k, v in losses.items()] + [("lr", lr)])
    if current % config.log_every_steps == 0 or current == config.num_train_steps:
      now = time.perf_counter()
      with writer.as_default(step=current):
        for k, v in losses.items():
          tf.summary.scalar(f"loss/{k}", v)
        tf.summary.scalar("learning_rate", lr)
        tf.summary.scalar("steps_per_second", (current - tick_step) / (now - tick))
      tick, tick_step, logged = now, current, losses
    if current % config.image_every_steps == 0:
      local = strategy.experimental_local_results(batch)[0]
      with writer.as_default(step=current):
        tf.summary.image("real_vs_predicted", task.summary_images(local))
    if current % config.checkpoint_every_steps == 0 or current == config.num_train_steps:
      manager.save(checkpoint_number=current)
    if validate and (current % config.eval_every_steps == 0 or
                     current == config.num_train_steps):
      score = validate()
      if score is not None:
        with writer.as_default(step=current):
          tf.summary.scalar("validation/score", score)
        if score < best_score:
          best_score = score
          best_manager.save(checkpoint_number=current)
          manifest_lib.write_json_atomic(best_path, {"step": current, "score": score})
  writer.flush()
  return logged
