"""Shared helpers of the benchmarks: a results table on stdout and a JSON file."""

import json
import os
import platform
import time

import tensorflow as tf

# The CVG at 256x256: VGG on a 128 downscale, strides 2, 2 to the same 8x8 map, one more
# upsampling (benchmarks/cvg.py and stu.py).
CVG_OVERRIDES_256 = {"vgg_input_size": 128, "image_strides": (2, 2),
                     "decoder_channels": (128, 64, 32, 16)}


def train_steps_per_second(task, dataset_dir, config, steps, warmup=2):
  """Times a stage's train step on a dataset (after `warmup` untimed steps).

  Args:
    task: a training task (apvg_tf/training/*_task.py), not yet built.
    dataset_dir: the dataset to read.
    config: the config whose window and batch are timed.
    steps: timed steps.
    warmup: untimed steps first (tracing, the shuffle buffer).

  Returns:
    Steps per second.
  """
  from apvg_tf import data  # pylint: disable=g-import-not-at-top
  task.build(tf.keras.optimizers.Adam(1e-3))
  ds = data.make_dataset(dataset_dir, "train", window_frames=config.window_frames,
                         batch_size=config.batch_size, fields=task.fields)
  it = iter(ds)
  from apvg_tf.training import randomness  # pylint: disable=g-import-not-at-top
  step = tf.function(lambda b: task.train_step(
      b, config.batch_size,
      randomness.StepRandom(config.seed, task.optimizer.iterations, config.batch_size)))
  for _ in range(warmup):
    step(next(it))
  start = time.perf_counter()
  for _ in range(steps):
    step(next(it))
  return steps / (time.perf_counter() - start)


def machine():
  """A description of where a benchmark ran."""
  gpus = tf.config.list_physical_devices("GPU")
  return {"platform": platform.platform(), "cpus": os.cpu_count(),
          "gpus": [g.name for g in gpus], "tensorflow": tf.__version__,
          "date": time.strftime("%Y-%m-%d")}


def report(name, rows, out_dir, columns):
  """Prints `rows` (list of dicts) as a table and writes them with the machine to JSON.

  Args:
    name: benchmark name; the file is `<out_dir>/<name>.json`.
    rows: list of dicts, one per measurement.
    out_dir: folder for the JSON file (created if missing).
    columns: the keys to print, in order.
  """
  widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
  print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
  for r in rows:
    print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)))
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, f"{name}.json")
  with open(path, "w") as f:
    json.dump({"benchmark": name, "machine": machine(), "results": rows}, f, indent=1)
  print(f"wrote {path}")


def _fmt(value):
  if value is None:
    return ""
  return f"{value:.4g}" if isinstance(value, float) else str(value)
