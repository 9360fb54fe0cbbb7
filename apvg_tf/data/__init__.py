"""The dataset format (DESIGN.md, "Data"): a folder of manifest.json and TFRecord shards.

  DatasetWriter    writes a dataset (every source uses it).
  read_clips       whole clips as NumPy arrays.
  make_dataset     the one tf.data pipeline of windows for training and evaluation.
  load_manifest    the checked manifest of a dataset folder.
"""

from apvg_tf.data.manifest import load_manifest, split_clips
from apvg_tf.data.pipeline import (clip_windows, expand_audio, make_dataset, make_windows,
                                   normalize_cqt, resize_frames)
from apvg_tf.data.reader import read_clips
from apvg_tf.data.writer import DatasetWriter
