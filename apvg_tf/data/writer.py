"""`DatasetWriter`: the one writer every source (synth, videos, URMP) uses.

Each clip becomes one TFRecord file under `shards/<split>/`, written to a temporary name and
renamed when complete; the manifest is written last, when the writer closes without an
error. A crashed run therefore leaves no shard that reads as complete, and no manifest.
"""

import os
import re

import cv2
import numpy as np
import tensorflow as tf

from apvg_tf import instruments, skeleton
from apvg_tf.audio import constant_q, framing, params
from apvg_tf.data import manifest as manifest_lib
from apvg_tf.data import schema
from apvg_tf.errors import InputError

_CLIP_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


def encode_frame(frame, frame_format="png"):
  """Encodes an RGB uint8 [H, W, 3] frame to PNG or JPEG (quality 95) bytes."""
  bgr = cv2.cvtColor(np.ascontiguousarray(frame, np.uint8), cv2.COLOR_RGB2BGR)
  if frame_format == "png":
    ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
  else:
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
  if not ok:
    raise InputError(f"could not encode a frame of shape {frame.shape} as {frame_format}")
  return data.tobytes()


class DatasetWriter:
  """Writes a dataset folder: shards per clip, then `manifest.json` on success.

  Usage:
    with DatasetWriter(out_dir, instrument="cello", fps=30.0, resolution=128,
                       source="synth", command=" ".join(sys.argv)) as writer:
      writer.add_clip(split="train", clip_id="piece_0000", frames=..., keypoints=...,
                      waveform=...)

  The mean pose and the CQT normalisation statistics are computed over the train split
  (over all clips if it is empty, e.g. a dataset made only for evaluation).
  """

  def __init__(self, out_dir, *, instrument, fps, resolution, source, command,
               metadata=None, frame_format="png",
               max_segment_frames=schema.MAX_SEGMENT_FRAMES):
    """Opens a writer.

    Args:
      out_dir: the dataset folder (created if missing).
      instrument: instrument name (see apvg_tf.instruments).
      fps: video frame rate of every clip.
      resolution: side of the square frames, in pixels.
      source: what made the data ('synth', 'videos', 'urmp', ...).
      command: the exact command line that made the dataset.
      metadata: optional JSON-serialisable dict stored in the manifest.
      frame_format: 'png' (lossless) or 'jpeg' (quality 95, for real footage).
      max_segment_frames: frames per stored segment.
    """
    if frame_format not in ("png", "jpeg"):
      raise InputError(f"frame_format must be 'png' or 'jpeg', not {frame_format!r}")
    if not fps or fps <= 0:
      raise InputError(f"fps must be positive, got {fps}")
    self._dir = os.fspath(out_dir)
    self._instrument = instruments.check(instrument)
    self._fps = float(fps)
    self._resolution = int(resolution)
    self._source = source
    self._command = command
    self._metadata = dict(metadata or {})
    self._frame_format = frame_format
    self._max_segment_frames = int(max_segment_frames)
    self._splits = {split: [] for split in manifest_lib.SPLITS}
    self._stats = {}  # split -> [cqt sum, cqt sum of squares, columns, keypoint arrays]
    self._closed = False

  def __enter__(self):
    os.makedirs(self._dir, exist_ok=True)
    # A manifest left from an earlier run would make a half-rewritten folder read as
    # complete; it is rewritten when this run finishes.
    stale = os.path.join(self._dir, manifest_lib.MANIFEST)
    if os.path.exists(stale):
      os.remove(stale)
    return self

  def __exit__(self, exc_type, exc, tb):
    if exc_type is None:
      self.close()
    return False

  def add_clip(self, *, split, clip_id, frames, keypoints, waveform):
    """Writes one clip.

    Args:
      split: 'train', 'validation' or 'test'.
      clip_id: unique name of the clip (letters, digits, '_', '-', '.').
      frames: uint8 [T, R, R, 3] RGB frames at the dataset resolution (or an iterable of
        T such frames, so long clips need not be held in memory).
      keypoints: float32 [T, 67, 3], x and y in [0, 1] of the frame, confidence in [0, 1].
      waveform: float32 [N] mono at 44.1 kHz; T must equal
        `apvg_tf.audio.num_video_frames(N, fps)`.

    Raises:
      InputError: on a wrong shape, non-finite values, or a frame count that does not match
        the audio's duration.
    """
    if split not in self._splits:
      raise InputError(f"unknown split {split!r}; expected one of {manifest_lib.SPLITS}")
    if not _CLIP_ID.match(clip_id or "") or any(
        c["clip_id"] == clip_id for clips in self._splits.values() for c in clips):
      raise InputError(f"clip id {clip_id!r} is empty, repeated or has characters other than "
                       "letters, digits, '_', '-' and '.'")
    waveform = np.asarray(waveform, np.float32).reshape(-1)
    keypoints = np.asarray(keypoints, np.float32)
    num_frames = framing.num_video_frames(len(waveform), self._fps)
    if keypoints.shape != (num_frames, skeleton.NUM_KEYPOINTS, 3):
      raise InputError(f"clip {clip_id}: keypoints have shape {keypoints.shape}; expected "
                       f"({num_frames}, {skeleton.NUM_KEYPOINTS}, 3) for {len(waveform)} audio "
                       f"samples at {self._fps} fps")
    if num_frames == 0:
      raise InputError(f"clip {clip_id}: the audio is empty")
    if not np.isfinite(waveform).all():
      raise InputError(f"clip {clip_id}: the waveform has NaN or Inf samples")
    if not np.isfinite(keypoints).all():
      raise InputError(f"clip {clip_id}: the keypoints have NaN or Inf values")
    cqt_columns = constant_q.cqt(waveform).T  # [M, 84]
    if not np.isfinite(cqt_columns).all():
      raise InputError(f"clip {clip_id}: the audio features have NaN or Inf values")

    rel = os.path.join("shards", split, f"{clip_id}.tfrecord")
    path = os.path.join(self._dir, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    bounds = schema.segment_bounds(num_frames, self._max_segment_frames)
    frame_iter = iter(frames)
    half = params.WINDOW_COLUMNS // 2
    try:
      with tf.io.TFRecordWriter(tmp) as records:
        for index, (start, end) in enumerate(bounds):
          encoded = []
          for _ in range(start, end):
            frame = next(frame_iter, None)
            if frame is None:
              raise InputError(f"clip {clip_id}: fewer frames than the {num_frames} its "
                               "audio needs")
            frame = np.asarray(frame)
            if frame.shape != (self._resolution, self._resolution, 3) or frame.dtype != np.uint8:
              raise InputError(f"clip {clip_id}: a frame is {frame.dtype} {frame.shape}; "
                               f"expected uint8 ({self._resolution}, {self._resolution}, 3)")
            encoded.append(encode_frame(frame, self._frame_format))
          sample_start = int(round(start * params.SAMPLE_RATE / self._fps))
          sample_end = (len(waveform) if end == num_frames
                        else int(round(end * params.SAMPLE_RATE / self._fps)))
          centers = framing.window_centers([start, end - 1], self._fps)
          col_start = int(max(centers[0] - half, 0))
          col_end = int(min(centers[1] + half + 1, len(cqt_columns)))
          records.write(schema.serialize_segment(
              clip_id=clip_id, segment_index=index, num_segments=len(bounds),
              frame_start=start, clip_num_frames=num_frames, encoded_frames=encoded,
              keypoints=keypoints[start:end], sample_start=sample_start,
              waveform=waveform[sample_start:sample_end], cqt_offset=col_start,
              cqt_total_columns=len(cqt_columns), cqt_columns=cqt_columns[col_start:col_end]))
      if next(frame_iter, None) is not None:
        raise InputError(f"clip {clip_id}: more frames than the {num_frames} its audio covers")
      os.replace(tmp, path)
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)

    stats = self._stats.setdefault(split, [np.zeros(params.N_BINS), np.zeros(params.N_BINS), 0,
                                           []])
    stats[0] += cqt_columns.sum(0, dtype=np.float64)
    stats[1] += np.square(cqt_columns, dtype=np.float64).sum(0)
    stats[2] += len(cqt_columns)
    stats[3].append(keypoints)
    self._splits[split].append({"clip_id": clip_id, "file": rel, "num_frames": num_frames,
                                "num_samples": len(waveform)})

  def close(self):
    """Writes the manifest; the dataset is complete only after this."""
    if self._closed:
      return
    if not any(self._splits.values()):
      raise InputError(f"no clips were written to {self._dir!r}; nothing to make a dataset of")
    sources = [self._stats["train"]] if "train" in self._stats else list(self._stats.values())
    total = sum(s[2] for s in sources)
    mean = sum(s[0] for s in sources) / total
    var = sum(s[1] for s in sources) / total - mean**2
    # A floor on the std keeps bins that never sound (constant) from blowing up.
    std = np.sqrt(np.maximum(var, 1e-4))
    pose = skeleton.mean_pose(np.concatenate([k for s in sources for k in s[3]]))
    manifest = {
        "format_version": schema.FORMAT_VERSION,
        "instrument": self._instrument,
        "fps": self._fps,
        "resolution": self._resolution,
        "frame_format": self._frame_format,
        "audio": {"sample_rate": params.SAMPLE_RATE, "hop_length": params.HOP_LENGTH,
                  "n_bins": params.N_BINS, "bins_per_octave": params.BINS_PER_OCTAVE,
                  "fmin": params.FMIN, "window_columns": params.WINDOW_COLUMNS,
                  "log_eps": params.LOG_EPS},
        "splits": self._splits,
        "mean_pose": np.round(pose, 6).tolist(),
        "cqt_mean": np.round(mean, 6).tolist(),
        "cqt_std": np.round(std, 6).tolist(),
        "source": self._source,
        "command": self._command,
        "metadata": self._metadata,
    }
    manifest_lib.write_json_atomic(os.path.join(self._dir, manifest_lib.MANIFEST), manifest)
    self._closed = True
