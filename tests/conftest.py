"""Test setup: the repository root on sys.path, and apvg_tf imported before TensorFlow."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import apvg_tf  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# Real recordings for tests; absent on a user's machine, where those tests skip.
FIXTURES = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "urmp")


def write_random_dataset(path, *, splits=("train", "train", "test"), seconds=2.0, resolution=32,
                         seed=0, fps=30.0):
  """A small dataset of random frames and keypoints over noise audio (for mechanics tests).

  Returns:
    The dataset folder.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from apvg_tf import audio, data  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  with data.DatasetWriter(path, instrument="cello", fps=fps, resolution=resolution,
                          source="test", command="pytest") as writer:
    for k, split in enumerate(splits):
      n = int(seconds * audio.SAMPLE_RATE)
      t = audio.num_video_frames(n, fps)
      writer.add_clip(split=split, clip_id=f"{split}_{k}",
                      frames=rng.integers(0, 256, (t, resolution, resolution, 3), np.uint8),
                      keypoints=rng.random((t, 67, 3)).astype(np.float32),
                      waveform=(0.1 * rng.standard_normal(n)).astype(np.float32))
  return str(path)


def debug_config(dataset_dir, **overrides):
  """configs/debug.py on `dataset_dir`, deterministic, with top-level `overrides`."""
  from configs import debug  # pylint: disable=g-import-not-at-top
  config = debug.get_config()
  config.dataset_dir = dataset_dir
  config.deterministic = True
  for key, value in overrides.items():
    config[key] = value
  return config


import pytest  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope="session")
def trained_pipeline(tmp_path_factory):
  """`--config.stage=all` on the debug config, one step per stage (KHP, CVG, STU).

  Shared by the STU and generation tests (training three stages takes about a minute). Its
  KP has a lookahead of 2 frames and an arm path (trained on transposed music), so export,
  ONNX and generation are tested with both.

  Returns:
    (workdir, config, per-stage results of train_and_evaluate).
  """
  from apvg_tf.training import trainer  # pylint: disable=g-import-not-at-top
  base = tmp_path_factory.mktemp("pipeline")
  dataset = write_random_dataset(base / "data", seconds=3.0, resolution=64)
  config = debug_config(dataset, stage="all", num_train_steps=1)
  config.eval.checkpoint = "latest"
  config.khp.lookahead_frames = 2
  config.khp.pitch_shift, config.khp.pitch_arm_units = 2, 4
  workdir = str(base / "run")
  return workdir, config, trainer.train_and_evaluate(config, workdir)
