"""Benchmark: KP training steps/s and streaming inference frames/s on this machine.

  python benchmarks/khp.py [--out=outputs/benchmarks] [--config=configs/synth_cello.py]

Uses the config's model and batch (default: the CPU config, window 64, batch 8) on a
temporary dataset of noise audio, so it measures compute, not convergence.
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apvg_tf  # noqa: F401  pylint: disable=g-bad-import-order,unused-import
from absl import app, flags
from ml_collections import config_flags
import numpy as np

from apvg_tf import data, streaming
from apvg_tf.training import khp_task, stages
from benchmarks import common
from tests.conftest import write_random_dataset

_OUT = flags.DEFINE_string("out", "outputs/benchmarks", "Folder for the JSON results.")
_CONFIG = config_flags.DEFINE_config_file("config", "configs/synth_cello.py", "Config to time.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed training steps.")


def main(argv):
  del argv
  config = stages.stage_config(_CONFIG.value, "khp")  # The KP's own batch and windows.
  with tempfile.TemporaryDirectory() as tmp:
    path = write_random_dataset(os.path.join(tmp, "d"), splits=("train",) * 2, seconds=20.0,
                                resolution=32)
    manifest = data.load_manifest(path)
    task = khp_task.KHPTask(config, manifest)
    steps_per_second = common.train_steps_per_second(task, path, config, _STEPS.value,
                                                     warmup=3)
    windows = np.random.default_rng(0).standard_normal((1800, 84, 87)).astype(np.float32)
    streaming.predict_keypoints(task.model, windows[:256], config.eval.chunk_frames)
    start = time.perf_counter()
    # Poses drawn: with a lookahead of D frames, 1800 windows give 1800 - D of them.
    poses = streaming.predict_keypoints(task.model, windows, config.eval.chunk_frames)
    frames_per_second = len(poses) / (time.perf_counter() - start)
  rows = [{"measure": "kp_train", "value": steps_per_second, "unit": "steps/s",
           "detail": f"batch {config.batch_size} x {config.window_frames} frames"},
          {"measure": "kp_inference", "value": frames_per_second, "unit": "frames/s",
           "detail": f"streamed in chunks of {config.eval.chunk_frames}"}]
  common.report("khp", rows, _OUT.value, ["measure", "value", "unit", "detail"])


if __name__ == "__main__":
  app.run(main)
