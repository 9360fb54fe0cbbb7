"""Training under tf.distribute and under faults (each run in its own process).

- MirroredStrategy over two logical CPUs equals the default strategy on the same global batch.
- Two MultiWorkerMirroredStrategy workers on localhost end with identical weights.
- A run killed with SIGKILL after its second checkpoint, then restarted, equals an
  uninterrupted run; SIGTERM saves a checkpoint, exits 143 with one line, and resumes exactly.
- A non-finite loss stops the run, naming the loss and the step, and saves nothing of it.
- Mixed precision (mixed_float16, loss-scaled optimizers) trains every stage without NaN.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from apvg_tf.training import cvg_task, khp_task, stu_task, stages, trainer
from conftest import ROOT, debug_config, write_random_dataset

SCRIPT = os.path.join(ROOT, "tests", "train_with_faults.py")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  return write_random_dataset(tmp_path_factory.mktemp("distribute_data"), seconds=3.0,
                              resolution=64)


def _train(dataset, workdir, *flags, faults=(), env=None, check=True):
  """Runs train.py (through the fault script) on the debug config; returns the process."""
  command = [sys.executable, SCRIPT, *faults, "--", "--config=configs/debug.py",
             f"--workdir={workdir}", f"--config.dataset_dir={dataset}",
             "--config.deterministic=True", "--config.eval_every_steps=0",
             "--config.image_every_steps=1000", *flags]
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
  if check:
    assert result.returncode == 0, result.stderr[-3000:]
  return result


def _checkpoint(workdir, stage):
  """{name: array} of the newest checkpoint of a stage (model, optimizer slots, step)."""
  path = tf.train.latest_checkpoint(os.path.join(workdir, stage, "checkpoints"))
  reader = tf.train.load_checkpoint(path)
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
          if "save_counter" not in name and "_CHECKPOINTABLE_OBJECT_GRAPH" not in name}


def _assert_same(a, b, atol):
  assert sorted(a) == sorted(b)
  for name in a:
    np.testing.assert_allclose(a[name], b[name], atol=atol, rtol=0, err_msg=name)


def test_mirrored_on_two_logical_cpus_equals_default_strategy(dataset, tmp_path):
  # batch 2: one example per replica under MirroredStrategy. The KP keeps an EMA of its
  # weights, updated in cross-replica context after each step.
  steps = ["--config.num_train_steps=3", "--config.checkpoint_every_steps=3",
           "--config.stage=all", "--config.stu.batch_size=2", "--config.khp.ema_decay=0.5"]
  _train(dataset, tmp_path / "default", *steps, "--strategy=default",
         faults=["--logical_cpus=2"])
  result = _train(dataset, tmp_path / "mirrored", *steps, "--strategy=mirrored",
                  faults=["--logical_cpus=2"])
  assert "khp: MirroredStrategy, 2 replica(s), global batch 2" in result.stdout
  for stage in ("khp", "cvg"):
    default, mirrored = (_checkpoint(tmp_path / r, stage) for r in ("default", "mirrored"))
    assert int(default["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 3
    assert stage != "khp" or any(name.startswith("train_model/") for name in default)
    _assert_same(default, mirrored, atol=2e-5)
  # The GAN (two optimizers) trains under MirroredStrategy too; its unpaired audio is taken
  # within each replica's batch, so it is compared for health rather than equality.
  stu = _checkpoint(tmp_path / "mirrored", "stu")
  assert int(stu["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 3
  assert all(np.all(np.isfinite(v)) for v in stu.values() if v.dtype.kind == "f")


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_two_multi_worker_processes_end_with_identical_weights(dataset, tmp_path):
  workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
  processes = []
  for index in range(2):
    env = {**os.environ, "TF_CONFIG": json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
    command = [sys.executable, SCRIPT, f"--dump={tmp_path}/worker{index}.npz", "--",
               "--config=configs/debug.py", f"--workdir={tmp_path}/run",
               f"--config.dataset_dir={dataset}", "--config.deterministic=True",
               "--config.eval_every_steps=0", "--config.stage=khp",
               "--config.num_train_steps=3", "--strategy=multi_worker"]
    processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
  outputs = [p.communicate(timeout=600) for p in processes]
  for p, (_, err) in zip(processes, outputs):
    assert p.returncode == 0, err[-3000:]
  weights = [np.load(f"{tmp_path}/worker{i}.npz") for i in range(2)]
  assert len(weights[0].files) == len(weights[1].files) > 10
  for name in weights[0].files:
    np.testing.assert_array_equal(weights[0][name], weights[1][name])
  # Only the chief writes the work directory.
  chief = _checkpoint(tmp_path / "run", "khp")
  assert int(chief["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 3


@pytest.fixture(scope="module")
def uninterrupted(dataset, tmp_path_factory):
  """KHP and CVG trained 6 steps without interruption."""
  workdir = tmp_path_factory.mktemp("uninterrupted")
  for stage in ("khp", "cvg"):
    _train(dataset, workdir, f"--config.stage={stage}", "--config.num_train_steps=6",
           "--config.checkpoint_every_steps=2")
  return workdir


def test_sigkill_after_second_checkpoint_then_restart_equals_uninterrupted(
    dataset, uninterrupted, tmp_path):
  flags = ["--config.stage=khp", "--config.num_train_steps=6",
           "--config.checkpoint_every_steps=2"]
  killed = _train(dataset, tmp_path, *flags, faults=["--sigkill_after_save=2"], check=False)
  assert killed.returncode == -9
  assert int(_checkpoint(tmp_path, "khp")["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 4
  resumed = _train(dataset, tmp_path, *flags)
  assert "khp: resuming from step 4" in resumed.stdout
  _assert_same(_checkpoint(tmp_path, "khp"), _checkpoint(uninterrupted, "khp"), atol=0)


def test_sigterm_saves_exits_143_and_resumes_exactly(dataset, uninterrupted, tmp_path):
  flags = ["--config.stage=cvg", "--config.num_train_steps=6",
           "--config.checkpoint_every_steps=2"]
  stopped = _train(dataset, tmp_path, *flags, faults=["--sigterm_at_step=3"], check=False)
  assert stopped.returncode == 143, stopped.stderr[-3000:]
  last = stopped.stderr.strip().splitlines()[-1]
  assert last.startswith("stopped: cvg: stopped by SIGTERM after step 3; saved ")
  assert "Traceback" not in stopped.stderr
  assert int(_checkpoint(tmp_path, "cvg")["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 3
  resumed = _train(dataset, tmp_path, *flags)
  assert "cvg: resuming from step 3" in resumed.stdout
  _assert_same(_checkpoint(tmp_path, "cvg"), _checkpoint(uninterrupted, "cvg"), atol=0)


def test_non_finite_loss_stops_naming_loss_and_step(dataset, tmp_path, monkeypatch):
  compute = khp_task.KHPTask.compute_losses

  def poisoned(self, batch, global_batch_size, training=True, random=None):
    out, pred = compute(self, batch, global_batch_size, training, random)
    step = tf.cast(self.optimizer.iterations, tf.float32)
    # From the third step on, the heatmap loss is NaN.
    out["heatmap"] = out["heatmap"] + tf.where(step >= 2, np.nan, 0.0)
    return out, pred

  monkeypatch.setattr(khp_task.KHPTask, "compute_losses", poisoned)
  config = debug_config(dataset, stage="khp", num_train_steps=5, eval_every_steps=0,
                        checkpoint_every_steps=1)
  with pytest.raises(trainer.TrainingStopped, match=r"loss 'heatmap' is nan at step 3") as e:
    trainer.train_and_evaluate(config, str(tmp_path))
  assert e.value.exit_code == 3
  # Step 3 was not saved: the newest checkpoint is the good step 2.
  assert tf.train.latest_checkpoint(str(tmp_path / "khp" / "checkpoints")).endswith("ckpt-2")


def test_mixed_precision_trains_every_stage_without_nan_then_evaluates_in_float32(
    dataset, tmp_path, monkeypatch):
  built = {}
  for task_class in (khp_task.KHPTask, cvg_task.CVGTask, stu_task.STUTask):
    def build(self, optimizer, original=task_class.build):
      items = original(self, optimizer)
      built[self.name] = (self.model.compute_dtype, self.model.variable_dtype)
      return items
    monkeypatch.setattr(task_class, "build", build)
  config = debug_config(dataset, stage="all", num_train_steps=3, eval_every_steps=0,
                        mixed_precision=True)
  # The KP's arm path hears the untransposed windows, which arrive in float32 (a keyword
  # input Keras does not cast), with input noise and the motion prior's discriminator.
  config.khp.update(pitch_shift=2, pitch_arm_units=4, input_noise=0.1, adversarial_weight=0.001)
  config.eval.checkpoint = "latest"
  results = trainer.train_and_evaluate(config, str(tmp_path))
  # float16 computation, float32 weights.
  assert built == {stage: ("float16", "float32") for stage in ("khp", "cvg", "stu")}
  assert sorted(results) == ["cvg", "khp", "stu"]
  for stage, losses in results.items():
    assert losses and all(np.isfinite(v) for v in losses.values()), (stage, losses)
    saved = _checkpoint(str(tmp_path), stage)
    # Each optimizer (the STU's two and the KP's two, with the motion prior's discriminator)
    # was a dynamic LossScaleOptimizer.
    scales = [v for k, v in saved.items() if "current_loss_scale" in k]
    assert len(scales) == (1 if stage == "cvg" else 2), (stage, sorted(saved))
    assert all(np.isfinite(s) and s >= 1 for s in scales)
  # The policy was only for training, and is unset again (it follows floatx): evaluation
  # rebuilds the models in float32.
  assert tf.keras.mixed_precision.global_policy().name == "float32"
  tf.keras.backend.set_floatx("float64")
  try:
    assert tf.keras.mixed_precision.global_policy().name == "float64"
  finally:
    tf.keras.backend.set_floatx("float32")
  task, step = stages.restore(config, str(tmp_path), "stu")
  assert step == 3 and task.model.compute_dtype == "float32"
  generator = task.generator()
  outputs, _ = generator.step(tf.zeros([1, 2, 84, 87]), generator.initial_state(1))
  assert outputs["frames"].dtype == tf.float32 and np.isfinite(outputs["frames"].numpy()).all()
