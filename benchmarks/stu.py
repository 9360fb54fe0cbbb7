"""Benchmark: STU frames/s and the full three-stage pipeline frames/s, at 128 and 256.

  python benchmarks/stu.py [--out=outputs/benchmarks] [--config=configs/synth_cello.py]

Untrained models of the config's sizes (speed does not depend on the weights), batch 1,
chunks of `eval.chunk_frames`, noise audio, after one traced chunk:
  stu_<R>       the STU alone on given coarse frames, heatmaps and keypoints
  pipeline_<R>  KP + DLT + CVG + STU (PerformanceGenerator.step): audio windows in, frames out
At 256 the STU gets one more encoder level and the CVG the 256 overrides of benchmarks/cvg.py.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apvg_tf  # noqa: F401  pylint: disable=g-bad-import-order,unused-import
from absl import app, flags
from ml_collections import config_flags
import numpy as np
import tensorflow as tf

from apvg_tf import heatmap
from apvg_tf.models import coarse_video_generator, keypoint_predictor, performance_generator
from apvg_tf.models import structured_temporal_unet
from benchmarks import common

_OUT = flags.DEFINE_string("out", "outputs/benchmarks", "Folder for the JSON results.")
_CONFIG = config_flags.DEFINE_config_file("config", "configs/synth_cello.py", "Config to time.")
_FRAMES = flags.DEFINE_integer("frames", 128, "Frames per measurement.")


def main(argv):
  del argv
  config = _CONFIG.value
  chunk, total = config.eval.chunk_frames, _FRAMES.value
  rows = []
  for resolution in (128, 256):
    stu_config = config.stu.copy_and_resolve_references()
    cvg_config = config.cvg.copy_and_resolve_references()
    if resolution == 256:
      stu_config.encoder_channels = tuple(stu_config.encoder_channels) + (
          stu_config.encoder_channels[-1],)
      cvg_config.update(common.CVG_OVERRIDES_256)
    channels = heatmap.num_channels(stu_config.heatmap_parts, stu_config.limb_maps)
    stu = structured_temporal_unet.structured_temporal_unet_from_config(
        stu_config, resolution, channels)
    rng = np.random.default_rng(0)
    inputs = {"coarse": rng.random((1, total, resolution, resolution, 3), np.float32),
              "heatmaps": rng.random((1, total, resolution, resolution, channels), np.float32),
              "keypoints": rng.uniform(0.1, 0.9, (1, total, 67, 3)).astype(np.float32),
              "audio": rng.standard_normal((1, total, 84, 87)).astype(np.float32)}
    stu_step = tf.function(lambda x, g: stu(x, initial_state=g, return_state=True))
    state = [stu.zero_state(1)]

    def run_stu(x):
      _, state[0] = stu_step(x, state[0])

    chunks = [{k: v[:, s:s + chunk] for k, v in inputs.items()} for s in range(0, total, chunk)]
    run_stu(chunks[0])  # Trace.
    start = time.perf_counter()
    for c in chunks:
      run_stu(c)
    rows.append({"measure": f"stu_{resolution}", "value": total / (time.perf_counter() - start),
                 "unit": "frames/s", "detail": f"batch 1, chunks of {chunk}"})

    generator = performance_generator.PerformanceGenerator(
        stu=stu, keypoint_predictor=keypoint_predictor.keypoint_predictor_from_config(
            # The instrument only picks the arm path's points, not its cost.
            config.khp, np.full((67, 2), 0.5), instrument="cello"),
        coarse_video_generator=coarse_video_generator.coarse_video_generator_from_config(
            cvg_config, resolution),
        heatmap_radius=stu_config.heatmap_radius, heatmap_parts=stu_config.heatmap_parts,
        limb_maps=stu_config.limb_maps, limb_width=stu_config.limb_width)
    step = tf.function(generator.step)
    pipeline_state = [generator.initial_state(1)]

    def run_pipeline(audio):
      _, pipeline_state[0] = step(audio, pipeline_state[0])

    # Each step also takes the windows of the KP's lookahead after its chunk (generation's way).
    ahead = generator.lookahead
    audio = np.concatenate([inputs["audio"], inputs["audio"][:, :ahead]], 1)
    audio_chunks = [audio[:, s:s + chunk + ahead] for s in range(0, total, chunk)]
    run_pipeline(audio_chunks[0])  # Trace.
    start = time.perf_counter()
    for a in audio_chunks:
      run_pipeline(a)
    rows.append({"measure": f"pipeline_{resolution}",
                 "value": total / (time.perf_counter() - start), "unit": "frames/s",
                 "detail": f"KP + DLT + CVG + STU, batch 1, chunks of {chunk}"})
  common.report("stu", rows, _OUT.value, ["measure", "value", "unit", "detail"])


if __name__ == "__main__":
  app.run(main)
