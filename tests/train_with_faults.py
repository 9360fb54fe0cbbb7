"""train.py in a subprocess, with the faults and devices the distribution tests need.

  python tests/train_with_faults.py [--logical_cpus=N] [--sigkill_after_save=K]
      [--sigterm_at_step=K] [--dump=weights.npz] -- <train.py flags>

--logical_cpus   split the CPU into N logical devices (MirroredStrategy's replicas) before
                 TensorFlow starts
--sigkill_after_save  SIGKILL this process right after its K-th checkpoint save (no cleanup)
--sigterm_at_step     send this process SIGTERM as step K is reported (before it is saved)
--dump           write the trained model's weights (in order) to this .npz when train.py ends
"""

import argparse
import os
import runpy
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import apvg_tf  # noqa: E402,F401  pylint: disable=g-bad-import-order,unused-import
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from apvg_tf.training import stages  # noqa: E402


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--logical_cpus", type=int, default=0)
  parser.add_argument("--sigkill_after_save", type=int, default=0)
  parser.add_argument("--sigterm_at_step", type=int, default=0)
  parser.add_argument("--dump", default="")
  args, train_args = parser.parse_known_args()
  train_args = [a for a in train_args if a != "--"]
  if args.logical_cpus:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)

  if args.sigkill_after_save:
    save, saves = tf.train.CheckpointManager.save, []

    def save_then_die(self, *a, **k):
      path = save(self, *a, **k)
      if self.directory.endswith("checkpoints"):
        saves.append(path)
        if len(saves) == args.sigkill_after_save:
          os.kill(os.getpid(), signal.SIGKILL)
      return path

    tf.train.CheckpointManager.save = save_then_die

  if args.sigterm_at_step:
    # The trainer reports each step to its progress bar before its checkpoint and logs.
    update = tf.keras.utils.Progbar.update

    def update_then_signal(self, current, *a, **k):
      update(self, current, *a, **k)
      if current == args.sigterm_at_step:
        os.kill(os.getpid(), signal.SIGTERM)

    tf.keras.utils.Progbar.update = update_then_signal

  tasks = []
  make_task = stages.make_task
  stages.make_task = lambda *a, **k: tasks.append(make_task(*a, **k)) or tasks[-1]
  sys.argv = [os.path.join(ROOT, "train.py")] + train_args
  try:
    runpy.run_path(sys.argv[0], run_name="__main__")
  finally:
    if args.dump and tasks:
      np.savez(args.dump, *[w.numpy() for w in tasks[-1].model.weights])


if __name__ == "__main__":
  main()
