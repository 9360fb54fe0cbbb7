"""The one place that chooses a tf.distribute strategy.

  auto          MirroredStrategy when several GPUs are visible, else the default strategy.
  default       tf.distribute.get_strategy() (one device, no replication).
  mirrored      MirroredStrategy over all visible GPUs (or logical CPUs, for tests).
  multi_worker  MultiWorkerMirroredStrategy from the TF_CONFIG environment variable.
  one_device    OneDeviceStrategy on the first GPU, or the CPU.
"""

import json
import os

import tensorflow as tf

from apvg_tf.errors import InputError

NAMES = ("auto", "default", "mirrored", "multi_worker", "one_device")


def make_strategy(name="auto"):
  """Builds the named strategy.

  Args:
    name: one of NAMES.

  Returns:
    A tf.distribute.Strategy.

  Raises:
    InputError: for an unknown name, or multi_worker without a usable TF_CONFIG.
  """
  gpus = tf.config.list_logical_devices("GPU")
  if name == "auto":
    name = "mirrored" if len(gpus) > 1 else "default"
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)
  if name == "one_device":
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
  if name == "multi_worker":
    try:
      tf_config = json.loads(os.environ.get("TF_CONFIG", ""))
      tf_config["cluster"]["worker"]  # pylint: disable=pointless-statement
    except (ValueError, KeyError, TypeError):
      raise InputError("--strategy=multi_worker needs the TF_CONFIG environment variable: "
                       '{"cluster": {"worker": ["host1:port", ...]}, "task": {"type": '
                       '"worker", "index": i}} (see README, "Scaling out")') from None
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise InputError(f"unknown strategy {name!r}; expected one of {', '.join(NAMES)}")
