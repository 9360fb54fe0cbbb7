"""The TFRecord schema of a dataset: one owner for how a clip is stored.

A clip is stored as one TFRecord file of consecutive *segments* (at most
`MAX_SEGMENT_FRAMES` video frames each), so that a long recording never makes one huge
record. A segment holds its frames (encoded PNG or JPEG), keypoints, the waveform samples of
its time span, and the CQT columns its frames' audio windows need, including the context
columns on either side; the audio window of any frame can therefore be cut from its own
segment exactly as from the whole clip.

Feature keys of a segment (all scalars unless noted):
  clip_id (bytes), segment_index, num_segments, frame_start, num_frames, clip_num_frames,
  frames (bytes list [num_frames]), keypoints (bytes: float32 [num_frames, 67, 3]),
  sample_start, waveform (bytes: float32 [samples]), cqt_offset, cqt_total_columns,
  cqt (bytes: float32 [columns, 84], log-magnitude, not normalised).
"""

import numpy as np
import tensorflow as tf

from apvg_tf import skeleton
from apvg_tf.audio import params

FORMAT_VERSION = 1
MAX_SEGMENT_FRAMES = 900

_INT = tf.io.FixedLenFeature([], tf.int64)
_BYTES = tf.io.FixedLenFeature([], tf.string)
FEATURES = {
    "clip_id": _BYTES, "segment_index": _INT, "num_segments": _INT, "frame_start": _INT,
    "num_frames": _INT, "clip_num_frames": _INT,
    "frames": tf.io.RaggedFeature(tf.string), "keypoints": _BYTES,
    "sample_start": _INT, "waveform": _BYTES,
    "cqt_offset": _INT, "cqt_total_columns": _INT, "cqt": _BYTES,
}


def _int(value):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _bytes(value):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def serialize_segment(*, clip_id, segment_index, num_segments, frame_start, clip_num_frames,
                      encoded_frames, keypoints, sample_start, waveform, cqt_offset,
                      cqt_total_columns, cqt_columns):
  """Serializes one segment to a tf.train.Example string.

  Args:
    clip_id: str.
    segment_index: int, position of this segment in the clip.
    num_segments: int, segments in the clip.
    frame_start: int, index in the clip of this segment's first frame.
    clip_num_frames: int, frames in the whole clip.
    encoded_frames: list of n bytes (PNG or JPEG).
    keypoints: float32 [n, 67, 3].
    sample_start: int, index in the clip's waveform of this segment's first sample.
    waveform: float32 [samples].
    cqt_offset: int, clip column index of `cqt_columns[0]`.
    cqt_total_columns: int, CQT columns of the whole clip.
    cqt_columns: float32 [columns, 84] log-magnitude.

  Returns:
    bytes, a serialized tf.train.Example.
  """
  keypoints = np.ascontiguousarray(keypoints, np.float32)
  assert keypoints.shape == (len(encoded_frames), skeleton.NUM_KEYPOINTS, 3), keypoints.shape
  feature = {
      "clip_id": _bytes(clip_id.encode()), "segment_index": _int(segment_index),
      "num_segments": _int(num_segments), "frame_start": _int(frame_start),
      "num_frames": _int(len(encoded_frames)), "clip_num_frames": _int(clip_num_frames),
      "frames": tf.train.Feature(bytes_list=tf.train.BytesList(value=list(encoded_frames))),
      "keypoints": _bytes(keypoints.tobytes()),
      "sample_start": _int(sample_start),
      "waveform": _bytes(np.ascontiguousarray(waveform, np.float32).tobytes()),
      "cqt_offset": _int(cqt_offset), "cqt_total_columns": _int(cqt_total_columns),
      "cqt": _bytes(np.ascontiguousarray(cqt_columns, np.float32).tobytes()),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def parse_segment(serialized):
  """Parses a serialized segment (graph-compatible).

  Args:
    serialized: scalar string tensor.

  Returns:
    dict of tensors: the scalar fields as int64, `frames` string [n], `keypoints` float32
    [n, 67, 3], `waveform` float32 [samples], `cqt` float32 [columns, 84].
  """
  ex = tf.io.parse_single_example(serialized, FEATURES)
  ex["keypoints"] = tf.reshape(tf.io.decode_raw(ex["keypoints"], tf.float32),
                               [-1, skeleton.NUM_KEYPOINTS, 3])
  ex["waveform"] = tf.io.decode_raw(ex["waveform"], tf.float32)
  ex["cqt"] = tf.reshape(tf.io.decode_raw(ex["cqt"], tf.float32), [-1, params.N_BINS])
  return ex


def segment_bounds(clip_num_frames, max_segment_frames=MAX_SEGMENT_FRAMES):
  """[(first_frame, end_frame)] of the segments of a clip of `clip_num_frames` frames."""
  starts = list(range(0, max(clip_num_frames, 1), max_segment_frames))
  return [(s, min(s + max_segment_frames, clip_num_frames)) for s in starts]
