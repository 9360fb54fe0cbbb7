"""Which CQT columns belong to which video frame: the one owner of audio framing.

Video frame t is shown at time t / fps. Its audio window A_t is the `WINDOW_COLUMNS` (87) CQT
columns centred on the column nearest to that time; columns before the start or past the end
of the audio are zero. Column m of the CQT is centred on sample m * HOP_LENGTH, so the centre
column of frame t is round(t * sample_rate / (fps * hop)). Each frame's centre is computed
from t directly (never accumulated), so there is no drift over long files at any fps,
29.97 (30000/1001) included.

The same arithmetic is available for NumPy (`window_centers`, `frame_windows`) and inside a
TensorFlow graph (`window_centers_tf`, `frame_windows_tf`); tests check that they agree.
"""

import numpy as np
import tensorflow as tf

from apvg_tf.audio import params


def num_video_frames(num_samples, fps, sample_rate=params.SAMPLE_RATE):
  """Number of whole video frames that fit in `num_samples` of audio.

  Args:
    num_samples: int, length of the waveform in samples.
    fps: float, video frame rate.
    sample_rate: int, audio sample rate in Hz.

  Returns:
    int T such that frame T-1 starts (time (T-1)/fps) inside the audio.
  """
  if num_samples <= 0:
    return 0
  # Frame t exists when t / fps < duration; the epsilon absorbs float error at exact ends.
  return int(np.ceil(num_samples * float(fps) / sample_rate - 1e-9))


def num_cqt_columns(num_samples, hop_length=params.HOP_LENGTH):
  """Number of CQT columns for a waveform of `num_samples` (centred columns, 1 + N // hop)."""
  return 1 + int(num_samples) // hop_length


def window_centers(frame_indices, fps, sample_rate=params.SAMPLE_RATE,
                   hop_length=params.HOP_LENGTH):
  """Centre CQT column of each video frame (NumPy).

  Args:
    frame_indices: int array [T] of video frame indices.
    fps: float, video frame rate.
    sample_rate: int, audio sample rate.
    hop_length: int, CQT hop in samples.

  Returns:
    int64 array [T]: round(t * sample_rate / (fps * hop_length)), rounding halves up.
  """
  t = np.asarray(frame_indices, dtype=np.float64)
  return np.floor(t * (sample_rate / (float(fps) * hop_length)) + 0.5).astype(np.int64)


def window_centers_tf(frame_indices, fps, sample_rate=params.SAMPLE_RATE,
                      hop_length=params.HOP_LENGTH):
  """TensorFlow twin of `window_centers`: int tensor [T] -> int64 tensor [T] (float64 math)."""
  t = tf.cast(frame_indices, tf.float64)
  # tf.cast of a Python float goes through float32 (29.97 would lose 7 digits): convert
  # Python numbers straight to float64.
  fps = tf.cast(tf.convert_to_tensor(fps, dtype_hint=tf.float64), tf.float64)
  ratio = tf.constant(float(sample_rate), tf.float64) / (fps * hop_length)
  return tf.cast(tf.floor(t * ratio + 0.5), tf.int64)


def frame_windows(cqt, fps, num_frames, first_frame=0, sample_rate=params.SAMPLE_RATE,
                  hop_length=params.HOP_LENGTH, window=params.WINDOW_COLUMNS):
  """The audio window of every video frame (NumPy).

  Args:
    cqt: float array [n_bins, M], a CQT (log-magnitude, normalised or not).
    fps: float, video frame rate.
    num_frames: int T, number of video frames wanted.
    first_frame: int, index of the first video frame (for windows of a longer clip).
    sample_rate: int, audio sample rate.
    hop_length: int, CQT hop.
    window: int, columns per window (87).

  Returns:
    float32 array [T, n_bins, window]; columns outside [0, M) are zero.
  """
  cqt = np.asarray(cqt, dtype=np.float32)
  n_bins = cqt.shape[0]
  centers = window_centers(np.arange(first_frame, first_frame + num_frames), fps,
                           sample_rate, hop_length)
  half = window // 2
  columns = centers[:, None] + np.arange(-half, window - half)[None, :]  # [T, window]
  # Zero columns on both sides; any column outside the audio is clipped onto one of them.
  padded = np.concatenate(
      [np.zeros((n_bins, half), np.float32), cqt, np.zeros((n_bins, window), np.float32)], 1)
  index = np.clip(columns + half, 0, padded.shape[1] - 1)
  return np.transpose(padded[:, index], (1, 0, 2))


def frame_windows_tf(cqt_columns, fps, frame_indices, column_offset=0, total_columns=None,
                     sample_rate=params.SAMPLE_RATE, hop_length=params.HOP_LENGTH,
                     window=params.WINDOW_COLUMNS, pad_value=None):
  """TensorFlow twin of `frame_windows`, for use inside tf.data and exported graphs.

  Args:
    cqt_columns: float tensor [M, n_bins] (time-major, as the CQT layer returns it): the
      clip's columns `column_offset` to `column_offset + M - 1`.
    fps: scalar, video frame rate.
    frame_indices: int tensor [T] of video frame indices within the clip.
    column_offset: clip index of `cqt_columns[0]` (a stored segment holds only the columns
      its frames need).
    total_columns: columns of the whole clip (default: `column_offset + M`); windows are
      `pad_value` outside [0, total_columns).
    sample_rate: int, audio sample rate.
    hop_length: int, CQT hop.
    window: int, columns per window.
    pad_value: optional float [n_bins] (or scalar), the columns outside the clip (default
      zero). Training pads normalised columns with zero; raw columns padded with the
      dataset's CQT mean normalise to the same zero.

  Returns:
    float32 tensor [T, n_bins, window].
  """
  cqt_columns = tf.convert_to_tensor(cqt_columns, tf.float32)
  local_columns = tf.shape(cqt_columns, out_type=tf.int64)[0]
  column_offset = tf.cast(column_offset, tf.int64)
  if total_columns is None:
    total_columns = column_offset + local_columns
  total_columns = tf.cast(total_columns, tf.int64)
  centers = window_centers_tf(frame_indices, fps, sample_rate, hop_length)
  half = window // 2
  columns = centers[:, None] + tf.range(-half, window - half, dtype=tf.int64)[None, :]
  local = columns - column_offset
  valid = (columns >= 0) & (columns < total_columns) & (local >= 0) & (local < local_columns)
  # The padding is one more row of the table, so positions wholly outside the columns given
  # (M = 0: a streamed chunk past the song's end) gather it too.
  pad = tf.zeros([], tf.float32) if pad_value is None else tf.cast(pad_value, tf.float32)
  table = tf.concat([cqt_columns, tf.broadcast_to(pad, tf.shape(cqt_columns)[1:])[None]], 0)
  gathered = tf.gather(table, tf.where(valid, local, local_columns))  # [T, w, bins]
  return tf.transpose(gathered, [0, 2, 1])
