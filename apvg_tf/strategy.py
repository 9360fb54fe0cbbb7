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
# One strategy per kind and process: MultiWorkerMirroredStrategy can be created only once,
# and two MirroredStrategy objects over the same devices reuse collective instance keys, so
# `--config.stage=all` would pair one stage's gradients with another's.
_MADE = {}


def make_strategy(name="auto"):
  """Builds the named strategy.

  Args:
    name: one of NAMES.

  Returns:
    A tf.distribute.Strategy (the same object for the same resolved name).

  Raises:
    InputError: for an unknown name, or multi_worker without a usable TF_CONFIG.
  """
  # Physical devices: listing logical ones starts TensorFlow's runtime, after which
  # MultiWorkerMirroredStrategy can no longer configure its collectives.
  if name == "auto":
    name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"
  if name == "default":
    return tf.distribute.get_strategy()
  if name not in _MADE:
    _MADE[name] = _make(name)
  return _MADE[name]


def _make(name):
  """A new strategy of a resolved kind (see make_strategy)."""
  if name in ("mirrored", "one_device"):
    gpus = tf.config.list_logical_devices("GPU")
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
