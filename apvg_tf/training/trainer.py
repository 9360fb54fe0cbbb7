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
from apvg_tf.training import cvg_task, khp_task, precision, randomness, stu_task, sync_task

TASKS = {"khp": khp_task.KHPTask, "cvg": cvg_task.CVGTask, "stu": stu_task.STUTask,
         "sync": sync_task.SyncTask}
STAGE_ORDER = ("khp", "cvg", "stu")
# Loop settings a stage's config block may override (0 there: use the shared value).
STAGE_OVERRIDES = ("num_train_steps", "batch_size", "window_frames")


class TrainingStopped(Exception):
  """The run stopped before `num_train_steps`: a non-finite loss, or a stop signal.

  Attributes:
    exit_code: what train.py exits with (3: non-finite loss; 128 + signal number after a
      signal, as a shell reports a process killed by it).
  """

  def __init__(self, message, exit_code):
    super().__init__(message)
    self.exit_code = exit_code


def stage_config(config, stage):
  """The config a stage trains and evaluates with.

  Each stage's block (`config.khp`, `config.cvg`, ...) may set `num_train_steps`,
  `batch_size` and `window_frames`; non-zero values replace the shared ones, so
  `--config.stage=all` can train each stage for its own length and on its own windows.

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


def untrained_generator(config, manifest):
  """The three stages' models with fresh weights, as one PerformanceGenerator.

  For restoring an export's variables into (serving.module_from_export): same construction
  as training, so the variables line up with the saved ones.
  """
  frozen = {}
  for stage in ("khp", "cvg"):
    task = make_task(stage_config(config, stage), stage, manifest)
    task.build(tf.keras.optimizers.Adam())
    frozen[stage] = task.model
  task = stu_task.STUTask(stage_config(config, "stu"), manifest, frozen=frozen)
  task.build(tf.keras.optimizers.Adam())
  return task.generator()


def stage_dir(workdir, stage):
  return os.path.join(workdir, stage)


def restore(config, workdir, stage, strategy=None):
  """Builds a stage's task and restores its newest checkpoint (for evaluation and export).

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
    checkpoint = tf.train.Checkpoint(step=step, **items)
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
    task = make_task(config, stage, manifest, workdir)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    schedule = learning_rate_schedule(config)
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
