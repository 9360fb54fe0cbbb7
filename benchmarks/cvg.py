"""Benchmark: CVG inference frames/s at 128x128 and 256x256, and training steps/s.

  python benchmarks/cvg.py [--out=outputs/benchmarks] [--config=configs/default.py]

Inference streams 300 frames of noise audio through the autoregressive generator (batch 1,
chunks of `eval.chunk_frames`), with the config's model at 128x128 and, at 256x256, the same
model with VGG on a 128x128 downscale and one more decoder upsampling (overrides listed in
the JSON). Training times the config's step (batch `batch_size`, `cvg.rollout_frames` frames)
on a temporary dataset of noise, so it measures compute, not convergence.
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
from apvg_tf.models import coarse_video_generator
from apvg_tf.training import cvg_task
from benchmarks import common
from tests.conftest import write_random_dataset

_OUT = flags.DEFINE_string("out", "outputs/benchmarks", "Folder for the JSON results.")
_CONFIG = config_flags.DEFINE_config_file("config", "configs/default.py", "Config to time.")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed training steps (0: skip training).")
_FRAMES = flags.DEFINE_integer("frames", 300, "Frames generated per inference measurement.")

OVERRIDES_256 = common.CVG_OVERRIDES_256


def inference_frames_per_second(cvg_config, resolution, chunk_frames, num_frames):
  model = coarse_video_generator.coarse_video_generator_from_config(cvg_config, resolution)
  windows = np.random.default_rng(0).standard_normal((num_frames, 84, 87)).astype(np.float32)
  step = streaming.coarse_step(model)
  streaming.generate_coarse(model, windows[:chunk_frames], chunk_frames, step=step)  # Trace.
  start = time.perf_counter()
  streaming.generate_coarse(model, windows, chunk_frames, step=step)
  return num_frames / (time.perf_counter() - start)


def main(argv):
  del argv
  config = _CONFIG.value
  rows = []
  for resolution in (128, 256):
    cvg_config = config.cvg.copy_and_resolve_references()
    if resolution == 256:
      cvg_config.update(OVERRIDES_256)
    fps = inference_frames_per_second(cvg_config, resolution, config.eval.chunk_frames,
                                      _FRAMES.value)
    detail = "batch 1, autoregressive" + ("" if resolution == 128 else f", {OVERRIDES_256}")
    rows.append({"measure": f"cvg_inference_{resolution}", "value": fps, "unit": "frames/s",
                 "detail": detail})
  if _STEPS.value:
    config.resolution = 128
    with tempfile.TemporaryDirectory() as tmp:
      path = write_random_dataset(os.path.join(tmp, "d"), splits=("train",) * 2,
                                  seconds=20.0, resolution=128)
      config.dataset_dir = path
      task = cvg_task.CVGTask(config, data.load_manifest(path))
      seconds = 1.0 / common.train_steps_per_second(task, path, config, _STEPS.value)
    frames = config.cvg.rollout_frames or config.window_frames
    rows.append({"measure": "cvg_train_128", "value": 1.0 / seconds, "unit": "steps/s",
                 "detail": f"batch {config.batch_size} x {frames - 1} generated frames, "
                           f"{seconds:.2f} s/step"})
  common.report("cvg", rows, _OUT.value, ["measure", "value", "unit", "detail"])


if __name__ == "__main__":
  app.run(main)
