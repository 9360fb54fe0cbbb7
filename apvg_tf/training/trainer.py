"""The training loop every stage uses: `train_and_evaluate(config, workdir)`.

The work directory's layout is in `stages`. A run resumes from the newest checkpoint of its
stage; a stage whose checkpoint has reached `num_train_steps` is done and is skipped.

Fault tolerance: checkpoints every `checkpoint_every_steps` and, on SIGTERM or SIGINT, at the
end of the step under way (then `TrainingStopped`; under MultiWorkerMirroredStrategy TF's
PreemptionCheckpointHandler coordinates that save across workers). A resumed run continues
exactly where the saved one was: model, optimizers, step (so the learning-rate schedule), the
data position (the seeded pipeline skips the windows already trained on, without decoding
them) and the random draws (`randomness.StepRandom`, keyed by the step). With
`config.deterministic` a run killed at any point and restarted ends with the same weights as
an uninterrupted one (tested).

Multi-worker: every worker runs this loop; only the chief writes the checkpoints, best
checkpoint and TensorBoard events of the work directory, the others save into a temporary
folder (saving is collective) and read from the chief's.
"""

import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

import numpy as np
import tensorflow as tf

from apvg_tf import data, strategy as strategy_lib
from apvg_tf.data import manifest as manifest_lib
from apvg_tf.errors import InputError
from apvg_tf.training import precision, randomness, stages
from apvg_tf.training.stages import (MODEL_SETTINGS, check_model_matches, check_settings_match,
                                     model_settings, stage_config, stage_dir)


class TrainingStopped(Exception):
  """The run stopped before `num_train_steps`: a non-finite loss, or a stop signal.

  Attributes:
    exit_code: what train.py exits with (3: non-finite loss; 128 + signal number after a
      signal, as a shell reports a process killed by it).
  """

  def __init__(self, message, exit_code):
    super().__init__(message)
    self.exit_code = exit_code


def train_and_evaluate(config, workdir):
  """Trains the configured stage(s) in `workdir`, resuming where a previous run stopped.

  Args:
    config: an ml_collections.ConfigDict (see configs/default.py).
    workdir: the run's folder.

  Returns:
    dict stage -> last logged losses.
  """
  names = stages.STAGE_ORDER if config.stage == "all" else (config.stage,)
  # tf.keras.utils.set_random_seed takes 0 .. 2^32 - 1; say so before any work starts.
  if isinstance(config.seed, bool) or not isinstance(config.seed, int) or not (
      0 <= config.seed < 2**32):
    raise InputError(f"--config.seed={config.seed}: the seed must be an integer from 0 to "
                     f"{2**32 - 1}")
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=1))
  return {stage: train_stage(config, workdir, stage) for stage in names}


def _is_chief(strategy):
  """True unless this process is a non-chief worker of a multi-worker strategy."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker" and
                                           resolver.task_id == 0)


class _StopSignals:
  """Turns SIGTERM and SIGINT into a flag the loop checks after each step (main thread only).

  Used as a context manager; the previous handlers are put back on exit.
  """

  def __init__(self, enabled=True):
    self.received = None
    self.enabled = enabled and threading.current_thread() is threading.main_thread()
    self._previous = {}

  def __enter__(self):
    if self.enabled:
      for number in (signal.SIGTERM, signal.SIGINT):
        self._previous[number] = signal.signal(number, self._handle)
    return self

  def _handle(self, number, frame):
    del frame
    self.received = number

  def __exit__(self, *exc):
    for number, handler in self._previous.items():
      signal.signal(number, handler)


def train_stage(config, workdir, stage):
  """Trains one stage up to its `num_train_steps` (see module docstring)."""
  config = stage_config(config, stage)
  manifest = data.load_manifest(config.dataset_dir)
  strategy = strategy_lib.make_strategy(config.strategy)
  multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
  chief = _is_chief(strategy)
  tf.keras.utils.set_random_seed(config.seed)
  if config.deterministic:
    tf.config.experimental.enable_op_determinism()
  directory = stage_dir(workdir, stage)
  # Non-chief workers take part in every (collective) save, into a folder of their own.
  write_dir = directory if chief else tempfile.mkdtemp(prefix=f"{stage}_worker_")
  if not chief:
    atexit.register(shutil.rmtree, write_dir, True)  # Its copies are never read.
  # Layers take their dtype policy when constructed, so only the building needs it.
  with precision.policy(config.mixed_precision), strategy.scope():
    task = stages.make_task(config, stage, manifest, workdir, for_training=True)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    schedule = stages.learning_rate_schedule(config)
    items = task.build(precision.wrap(tf.keras.optimizers.Adam(schedule),
                                      config.mixed_precision))
    checkpoint = tf.train.Checkpoint(step=step, **items)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(write_dir, "checkpoints"),
                                         max_to_keep=config.max_checkpoints)
    best_manager = tf.train.CheckpointManager(checkpoint, os.path.join(write_dir, "best"),
                                              max_to_keep=1)
    latest = tf.train.latest_checkpoint(os.path.join(directory, "checkpoints"))
    recorded = os.path.exists(os.path.join(directory, MODEL_SETTINGS))
    if latest and (recorded or multi_worker):
      # A run records its settings when it starts; variables alone are compared only for
      # runs of earlier versions (their check writes a checkpoint, which a multi-worker
      # strategy's collective saving would not expect).
      check_settings_match(task.model, stage, workdir)
    elif latest:
      check_model_matches(latest, task.model, stage, workdir)
    status = checkpoint.restore(latest)
  if latest:
    status.assert_existing_objects_matched()
  elif chief:  # Only a new run records its settings: a resumed one was checked against them.
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, MODEL_SETTINGS), "w") as f:
      json.dump(model_settings(task.model), f, indent=1)
  start = int(step.numpy())
  if start >= config.num_train_steps:
    print(f"{stage}: already trained ({start} steps); skipping")
    return {}
  if start:
    print(f"{stage}: resuming from step {start}")
  print(f"{stage}: {type(strategy).__name__}, {strategy.num_replicas_in_sync} replica(s), "
        f"global batch {config.batch_size}")

  def dataset_fn(input_context):
    # The same seed as the first run, and the windows of the steps already taken skipped:
    # a resumed run sees exactly the data the uninterrupted run would have.
    windows_per_step = config.batch_size // input_context.num_input_pipelines
    return data.make_dataset(
        config.dataset_dir, "train", window_frames=config.window_frames,
        batch_size=config.batch_size, seed=config.seed, fields=task.fields,
        deterministic=config.deterministic, resolution=config.resolution,
        input_context=input_context, skip_windows=start * windows_per_step)

  dataset = strategy.distribute_datasets_from_function(dataset_fn)
  iterator = iter(dataset)

  def replica_step(batch, number):
    return task.train_step(batch, config.batch_size,
                           randomness.StepRandom(config.seed, number, config.batch_size))

  after_step = getattr(task, "after_step", None)  # Cross-replica work after the update.

  @tf.function
  def distributed_step(batch, number):
    losses = strategy.run(replica_step, args=(batch, number))
    if after_step:
      after_step()
    return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for k, v in losses.items()}

  preemption = None
  if multi_worker:
    # TF's handler: on SIGTERM to any worker, every worker saves at the same step, then exits.
    preemption = tf.distribute.experimental.PreemptionCheckpointHandler(
        strategy.cluster_resolver, manager,
        termination_config=tf.distribute.experimental.TerminationConfig(
            exit_fn=lambda: sys.exit(128 + signal.SIGTERM)))
  run_step = preemption.run if preemption else lambda fn, *args: fn(*args)

  best_path = os.path.join(directory, "best", "best.json")
  best_score = float("inf")
  if os.path.exists(best_path):
    with open(best_path) as f:
      best_score = json.load(f)["score"]
  validate = getattr(task, "validation_score", None) if config.eval_every_steps else None
  writer = (tf.summary.create_file_writer(os.path.join(directory, "train")) if chief else
            tf.summary.create_noop_writer())
  progress = tf.keras.utils.Progbar(config.num_train_steps, stateful_metrics=["lr"])
  progress.update(start)
  logged, tick, tick_step = {}, time.perf_counter(), start
  with _StopSignals(enabled=not multi_worker) as stop:
    for current in range(start + 1, config.num_train_steps + 1):
      batch = next(iterator)
      losses = {k: float(v) for k, v in
                run_step(distributed_step, batch, tf.constant(current, tf.int64)).items()}
      bad = [k for k, v in losses.items() if not np.isfinite(v)]
      if bad:
        # Stop before anything is saved from this step: the newest checkpoint stays good.
        raise TrainingStopped(
            f"{stage}: loss {bad[0]!r} is {losses[bad[0]]} at step {current}; nothing of this "
            f"step was saved, the last good checkpoint is {manager.latest_checkpoint} (lower "
            "the learning rate, or check the data)", exit_code=3)
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
      if chief and current % config.image_every_steps == 0:
        local = strategy.experimental_local_results(batch)[0]
        with writer.as_default(step=current):
          tf.summary.image("real_vs_predicted", task.summary_images(local))
      if (current % config.checkpoint_every_steps == 0 or current == config.num_train_steps or
          stop.received):
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
            if chief:
              manifest_lib.write_json_atomic(best_path, {"step": current, "score": score})
      if stop.received:
        writer.flush()
        name = signal.Signals(stop.received).name
        raise TrainingStopped(
            f"{stage}: stopped by {name} after step {current}; saved "
            f"{manager.latest_checkpoint}. Run the same command again to resume.",
            exit_code=128 + stop.received)
  writer.flush()
  return logged
