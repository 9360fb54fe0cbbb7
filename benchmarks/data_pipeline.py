"""Benchmark: input pipeline frames/s at 128x128 and 256x256, and the CQT's speed.

  python benchmarks/data_pipeline.py [--out=outputs/benchmarks] [--seconds=120]

Builds a temporary dataset of smooth synthetic frames (PNG, as the virtual performer
writes them), then times the training pipeline (windows of 16 frames, batch 8, shuffled,
all fields: frames decoded in the graph, audio windows and keypoints). Target: at least 500
frames/s at 128x128 on a 2-core CPU. Also times the TF CQT layer against librosa.cqt in
seconds per minute of audio.
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apvg_tf  # noqa: F401  pylint: disable=g-bad-import-order,unused-import
from absl import app, flags
import numpy as np
import tensorflow as tf

from apvg_tf import audio, data
from benchmarks import common

_OUT = flags.DEFINE_string("out", "outputs/benchmarks", "Folder for the JSON results.")
_SECONDS = flags.DEFINE_float("seconds", 120.0, "Seconds of footage in the temporary dataset.")


def _smooth_frames(rng, count, resolution):
  """Frames that compress like rendered footage: a lit gradient and a moving blob."""
  y, x = np.mgrid[0:resolution, 0:resolution] / resolution
  base = np.stack([0.4 + 0.3 * x, 0.3 + 0.2 * y, 0.5 - 0.2 * x], -1)
  for t in range(count):
    cx, cy = 0.5 + 0.2 * np.sin(t / 15), 0.5 + 0.2 * np.cos(t / 20)
    blob = np.exp(-((x - cx)**2 + (y - cy)**2) / 0.02)[..., None] * [0.5, 0.3, 0.1]
    noise = rng.normal(0, 0.01, base.shape)
    yield np.clip(255 * (base + blob + noise), 0, 255).astype(np.uint8)


def _make_dataset(path, resolution, seconds):
  rng = np.random.default_rng(0)
  clip_seconds = 30.0
  with data.DatasetWriter(path, instrument="cello", fps=30.0, resolution=resolution,
                          source="benchmark", command="benchmarks/data_pipeline.py") as writer:
    for k in range(int(np.ceil(seconds / clip_seconds))):
      n = int(clip_seconds * audio.SAMPLE_RATE)
      waveform = (0.1 * rng.standard_normal(n)).astype(np.float32)
      frames = audio.num_video_frames(n, 30.0)
      writer.add_clip(split="train", clip_id=f"clip{k}", frames=_smooth_frames(rng, frames,
                                                                                 resolution),
                      keypoints=rng.random((frames, 67, 3)).astype(np.float32),
                      waveform=waveform)


def _pipeline_fps(path, window=16, batch=8, batches=60):
  ds = data.make_dataset(path, "train", window_frames=window, batch_size=batch, shuffle=True)
  it = iter(ds)
  for _ in range(5):  # Warm-up: tracing, file opening, the shuffle buffer.
    next(it)
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * batch * window / (time.perf_counter() - start)


def _cqt_seconds_per_minute():
  import librosa  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  waveform = (0.1 * rng.standard_normal(60 * audio.SAMPLE_RATE)).astype(np.float32)
  layer = audio.CQT()
  run = tf.function(layer)
  run(waveform[None, :audio.SAMPLE_RATE])  # Trace once on a short input.
  rows = []
  start = time.perf_counter()
  run(waveform[None])
  rows.append({"measure": "cqt_tf_layer", "seconds_per_minute": time.perf_counter() - start})
  start = time.perf_counter()
  audio.cqt(waveform)
  rows.append({"measure": "cqt_numpy_twin", "seconds_per_minute": time.perf_counter() - start})
  start = time.perf_counter()
  librosa.cqt(waveform, sr=audio.SAMPLE_RATE, hop_length=audio.HOP_LENGTH, fmin=audio.FMIN,
              n_bins=audio.N_BINS, bins_per_octave=audio.BINS_PER_OCTAVE)
  rows.append({"measure": "librosa_cqt", "seconds_per_minute": time.perf_counter() - start})
  return rows


def main(argv):
  del argv
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for resolution in (128, 256):
      path = os.path.join(tmp, f"r{resolution}")
      _make_dataset(path, resolution, _SECONDS.value)
      fps = _pipeline_fps(path)
      row = {"measure": f"pipeline_{resolution}x{resolution}", "frames_per_second": fps}
      if resolution == 128:
        row.update(target=">= 500", met=fps >= 500)
      rows.append(row)
  rows += _cqt_seconds_per_minute()
  common.report("data_pipeline", rows, _OUT.value,
                ["measure", "frames_per_second", "seconds_per_minute", "target", "met"])


if __name__ == "__main__":
  app.run(main)
