"""`read_clips`: whole clips of a dataset split, as NumPy arrays, for inspection and evaluation."""

import os

import numpy as np
import tensorflow as tf

from apvg_tf.data import manifest as manifest_lib
from apvg_tf.data import schema


def read_segments(path):
  """Parsed segments of one clip file, in order (eager tensors)."""
  segments = [schema.parse_segment(r) for r in tf.data.TFRecordDataset(path)]
  segments.sort(key=lambda s: int(s["segment_index"]))
  return segments


def decode_frame(encoded):
  """Decodes one PNG or JPEG frame (graph-compatible): string -> uint8 [H, W, 3]."""
  return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def read_clips(dataset_dir, split, with_frames=True):
  """Yields the clips of a split, whole.

  Args:
    dataset_dir: a dataset folder (see apvg_tf.data.manifest).
    split: 'train', 'validation' or 'test'.
    with_frames: decode the frames (False skips the costliest part; `frames` is then None).

  Yields:
    dicts with clip_id (str), instrument (str), fps (float), frames uint8 [T, H, W, 3],
    keypoints float32 [T, 67, 3], waveform float32 [N] (mono, 44.1 kHz) and cqt float32
    [84, M] (log-magnitude, not normalised).

  Raises:
    InputError: if the dataset is incomplete or the split is missing or empty.
  """
  manifest = manifest_lib.load_manifest(dataset_dir)
  for clip in manifest_lib.split_clips(manifest, split):
    segments = read_segments(os.path.join(dataset_dir, clip["file"]))
    frames = None
    if with_frames:
      frames = np.concatenate([np.stack([decode_frame(f).numpy() for f in s["frames"]])
                               for s in segments])
    cqt = np.zeros((int(segments[0]["cqt_total_columns"]), segments[0]["cqt"].shape[1]),
                   np.float32)
    for s in segments:
      offset = int(s["cqt_offset"])
      cqt[offset:offset + s["cqt"].shape[0]] = s["cqt"].numpy()
    yield {
        "clip_id": clip["clip_id"],
        "instrument": manifest["instrument"],
        "fps": float(manifest["fps"]),
        "frames": frames,
        "keypoints": np.concatenate([s["keypoints"].numpy() for s in segments]),
        "waveform": np.concatenate([s["waveform"].numpy() for s in segments]),
        "cqt": cqt.T,
    }
