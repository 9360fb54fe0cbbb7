"""The one tf.data pipeline for training and evaluation.

An element is a window of `window_frames` consecutive frames of one clip:
  frames        uint8 [T, R, R, 3]   (only if 'frames' is in `fields`)
  audio         float32 [T, 84, 87]  normalised log-CQT window A_t of each frame
  keypoints     float32 [T, 67, 3]   x, y in [0, 1], confidence
  instrument_id int32 []
  clip_index    int32 []             position of the clip in the split's manifest list
  start_frame   int32 []             index in the clip of the window's first frame
Batched: a leading batch axis. Frame decoding and resizing run in the graph, after the
shuffle, so shuffling moves only encoded bytes.

`make_windows` is the per-segment function that cuts windows; it is the same function
eagerly and inside tf.data (tests check both against `read_clips` + `frame_windows`).
"""

import os

import numpy as np
import tensorflow as tf

from apvg_tf import instruments
from apvg_tf.audio import constant_q, framing
from apvg_tf.data import manifest as manifest_lib
from apvg_tf.data import reader, schema
from apvg_tf.errors import InputError

ALL_FIELDS = ("frames", "audio", "keypoints")


def normalize_cqt(cqt_columns, manifest):
  """(log-CQT - mean) / std with the dataset's train statistics: [..., 84] -> [..., 84]."""
  return constant_q.normalize_cqt(cqt_columns, manifest["cqt_mean"], manifest["cqt_std"])


def _span_columns(window_frames, fps, sample_rate, hop_length, window):
  """Most CQT columns the audio windows of `window_frames` consecutive frames can span."""
  return int(np.ceil((window_frames - 1) * sample_rate / (fps * hop_length))) + window + 1


def make_windows(segment, starts, *, window_frames, manifest, clip_index=0):
  """Cuts windows out of one parsed segment.

  A window carries the normalised CQT columns its frames' audio windows span, not the
  windows themselves (about 12 times smaller at 30 fps), so the shuffle buffer stays small;
  `expand_audio` cuts the per-frame windows after shuffling.

  Args:
    segment: dict from `schema.parse_segment`.
    starts: int tensor [W], first frame of each window, relative to the segment.
    window_frames: frames per window (T).
    manifest: the dataset manifest (fps, normalisation statistics).
    clip_index: int, the clip's position in its split.

  Returns:
    dict of tensors with a leading axis W: frames (encoded strings [W, T]), cqt_span
    [W, S, 84], cqt_offset [W] (clip column of cqt_span[:, 0]), cqt_total_columns [W],
    keypoints [W, T, 67, 3], instrument_id, clip_index, start_frame.
  """
  audio_settings = manifest["audio"]
  starts = tf.cast(starts, tf.int64)
  index = starts[:, None] + tf.range(window_frames, dtype=tf.int64)[None, :]  # [W, T]
  num_windows = tf.shape(starts)[0]
  half = audio_settings["window_columns"] // 2
  span = _span_columns(window_frames, manifest["fps"], audio_settings["sample_rate"],
                       audio_settings["hop_length"], audio_settings["window_columns"])
  first = framing.window_centers_tf(starts + segment["frame_start"], manifest["fps"],
                                    audio_settings["sample_rate"],
                                    audio_settings["hop_length"]) - half  # [W]
  columns = first[:, None] + tf.range(span, dtype=tf.int64)[None, :] - segment["cqt_offset"]
  local_count = tf.shape(segment["cqt"], out_type=tf.int64)[0]
  cqt = normalize_cqt(segment["cqt"], manifest)
  # Columns past the segment's stored ones are never read: `expand_audio` zeroes whatever
  # lies outside the clip, and every column inside the clip that a window needs is stored.
  cqt_span = tf.gather(cqt, tf.clip_by_value(columns, 0, tf.maximum(local_count - 1, 0)))
  return {
      "frames": tf.gather(segment["frames"], index),
      "cqt_span": cqt_span,
      "cqt_offset": first,
      "cqt_total_columns": tf.fill([num_windows], segment["cqt_total_columns"]),
      "keypoints": tf.gather(segment["keypoints"], index),
      "instrument_id": tf.fill([num_windows], instruments.instrument_id(manifest["instrument"])),
      "clip_index": tf.fill([num_windows], tf.cast(clip_index, tf.int32)),
      "start_frame": tf.cast(starts + segment["frame_start"], tf.int32),
  }


def expand_audio(window, *, window_frames, manifest):
  """Replaces a window's `cqt_span` by its per-frame audio windows `audio` [T, 84, 87]."""
  window = dict(window)
  frames = tf.cast(window["start_frame"], tf.int64) + tf.range(window_frames, dtype=tf.int64)
  window["audio"] = framing.frame_windows_tf(
      window.pop("cqt_span"), manifest["fps"], frames, column_offset=window.pop("cqt_offset"),
      total_columns=window.pop("cqt_total_columns"),
      sample_rate=manifest["audio"]["sample_rate"], hop_length=manifest["audio"]["hop_length"],
      window=manifest["audio"]["window_columns"])
  return window


def decode_frames(encoded, resolution=None):
  """Decodes [T] encoded frames to uint8 [T, R, R, 3], resized (area) if `resolution` is set."""
  frames = tf.map_fn(reader.decode_frame, encoded,
                     fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
  if resolution is not None:
    resized = tf.image.resize(frames, [resolution, resolution], method="area")
    frames = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
  return frames


def make_dataset(dataset_dir, split, *, window_frames, batch_size, shuffle=True, repeat=True,
                 seed=0, deterministic=False, stride=None, resolution=None, fields=ALL_FIELDS,
                 input_context=None, drop_remainder=True, shuffle_buffer=512, skip_windows=0):
  """The training and evaluation input pipeline.

  Args:
    dataset_dir: a dataset folder.
    split: 'train', 'validation' or 'test'.
    window_frames: frames per window (T).
    batch_size: the GLOBAL batch size; with `input_context`, each input pipeline yields
      `input_context.get_per_replica_batch_size(batch_size)`.
    shuffle: shuffle clips and windows, and start windows at a random phase each epoch.
    repeat: repeat forever.
    seed: seed of every random choice (same seed, same order when `deterministic`).
    deterministic: keep element order fixed despite parallel map/interleave.
    stride: frames between window starts (default `window_frames`, non-overlapping), plus a
      window at each end of every segment, so every frame is in a window on every pass.
    resolution: resize frames to this side if it differs from the dataset's.
    fields: which of 'frames', 'audio', 'keypoints' to produce (skipping 'frames' skips
      all image decoding, e.g. for the keypoint stage).
    input_context: a tf.distribute.InputContext; the files (or, with fewer files than
      pipelines, the windows) are sharded across input pipelines.
    drop_remainder: drop a last partial batch (static batch shapes for XLA and TPUs).
    shuffle_buffer: windows in the shuffle buffer.
    skip_windows: windows of this input pipeline to drop first, before their frames are
      decoded or their audio expanded: a resumed training run passes the windows it has
      trained on, so it continues with exactly the windows an uninterrupted run would see
      (exactly with `deterministic`; otherwise up to the order of parallel reads).

  Returns:
    A tf.data.Dataset of batched dicts (see the module docstring).

  Raises:
    InputError: if the dataset or split is missing or empty, or no clip is long enough.
  """
  manifest = manifest_lib.load_manifest(dataset_dir)
  clips = manifest_lib.split_clips(manifest, split)
  if not any(c["num_frames"] >= window_frames for c in clips):
    raise InputError(f"no clip of split {split!r} has {window_frames} frames (the longest has "
                     f"{max(c['num_frames'] for c in clips)}); lower the window length")
  unknown = set(fields) - set(ALL_FIELDS)
  if unknown:
    raise InputError(f"unknown pipeline fields {sorted(unknown)}; expected some of {ALL_FIELDS}")
  stride = int(stride or window_frames)
  if resolution == manifest["resolution"]:
    resolution = None
  files = [os.path.join(dataset_dir, c["file"]) for c in clips]
  clip_indices = np.arange(len(files), dtype=np.int32)
  per_pipeline_batch = batch_size
  shard_windows = None
  if input_context is not None:
    per_pipeline_batch = input_context.get_per_replica_batch_size(batch_size)
    n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(files) >= n:
      files, clip_indices = files[i::n], clip_indices[i::n]
    else:
      shard_windows = (n, i)

  ds = tf.data.Dataset.from_tensor_slices((files, clip_indices))
  if shuffle:
    ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
  if repeat:
    ds = ds.repeat()
  # One random number per clip visit (a dataset, so the stream is seeded, deterministic and
  # checkpointable) sets where that visit's windows start, so every epoch sees new windows.
  ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed)))

  def windows_of_file(clip, visit_seed):
    path, clip_index = clip
    segments = tf.data.TFRecordDataset(path).map(schema.parse_segment)

    def windows_of_segment(segment):
      last = tf.cast(segment["num_frames"], tf.int32) - window_frames
      phase = tf.constant(0, tf.int32)
      if shuffle:
        phase = tf.random.stateless_uniform(
            [], seed=tf.stack([visit_seed, segment["frame_start"]]), maxval=stride,
            dtype=tf.int32)
      phase = tf.minimum(phase, tf.maximum(last, 0))
      # Every frame of the segment is in a window on every visit: the windows at phase + k *
      # stride, plus the one before the first and the one after the last, moved to start at
      # frame 0 and to end at the segment's last frame. Without those two, the frames before
      # the phase and after the last whole window were skipped on most visits: with 256-frame
      # windows a 900-frame clip's first and last frames were trained on in 1 visit of 256,
      # its first and last 100 frames in about 1 of 4, so the first and last seconds of every
      # piece (the LSTM's start, the final rest) were barely learnt
      # (experiments/results/khp_window_sampler.md).
      starts = tf.range(phase - stride, last + stride, stride)
      starts = tf.unique(tf.clip_by_value(starts, 0, tf.maximum(last, 0))).y
      starts = starts[:tf.where(last >= 0, tf.size(starts), 0)]  # None if the segment is short.
      windows = make_windows(segment, starts, window_frames=window_frames, manifest=manifest,
                             clip_index=clip_index)
      for name in ("frames", "keypoints"):
        if name not in fields:
          windows.pop(name)
      if "audio" not in fields:
        for name in ("cqt_span", "cqt_offset", "cqt_total_columns"):
          windows.pop(name)
      return tf.data.Dataset.from_tensor_slices(windows)

    return segments.flat_map(windows_of_segment)

  ds = ds.interleave(windows_of_file, cycle_length=min(4, len(files)),
                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic or None)
  if shard_windows is not None:
    ds = ds.shard(*shard_windows)
  if shuffle:
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

  if skip_windows:
    ds = ds.skip(int(skip_windows))

  def finish(window):
    if "audio" in fields:
      window = expand_audio(window, window_frames=window_frames, manifest=manifest)
    if "frames" in fields:
      window = {**window, "frames": decode_frames(window["frames"], resolution)}
    return window

  ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic or None)
  ds = ds.batch(per_pipeline_batch, drop_remainder=drop_remainder)
  options = tf.data.Options()
  options.deterministic = bool(deterministic)
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
  return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def clip_windows(clip, manifest, lookahead=0):
  """Normalised audio windows of every frame of a clip: float32 [T + lookahead, 84, 87].

  With `lookahead` D, also the windows of the D frames after the clip's last (what the
  clip's sound reaches of them; zeros beyond), which a KP with that lookahead hears.
  """
  # The pipeline's normaliser, so evaluation sees bit-for-bit the features training saw.
  normalized = normalize_cqt(clip["cqt"].T, manifest).numpy().T
  return framing.frame_windows(normalized, clip["fps"], len(clip["keypoints"]) + lookahead)


def resize_frames(frames, resolution, chunk=256):
  """uint8 [T, H, W, 3] -> uint8 [T, R, R, 3], resized as `decode_frames` does."""
  if frames.shape[1] == resolution and frames.shape[2] == resolution:
    return frames
  out = []
  for start in range(0, len(frames), chunk):
    resized = tf.image.resize(frames[start:start + chunk], [resolution, resolution],
                              method="area")
    out.append(tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8).numpy())
  return np.concatenate(out)
