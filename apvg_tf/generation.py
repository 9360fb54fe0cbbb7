"""Music in, performance video out, streamed: the library behind generate.py.

The song is decoded once (float32 mono at 44.1 kHz: 10 MB per minute); everything after that
runs chunk by chunk of `chunk_frames` video frames, so memory does not grow with the song:
  CQT columns the chunk's windows need (the CQT layer on the waveform slice plus its context,
  exact: see `audio.CQT`) -> windows (`audio.frame_windows_tf`, the one framing) -> the
  model's `step` with the recurrent state carried (`apvg_tf.streaming`, the one loop) ->
  frames piped to ffmpeg (and keypoints written to the JSON track as they come).
The music is muxed in at the end, and the mp4 is renamed into place only when complete.
Freed heap memory is handed back to the system after every chunk (`release_free_memory`):
without that, glibc's allocator kept the chunks' freed tensors and the resident size crept up
with the length of the song.
"""

import ctypes
import functools
import json
import os

import numpy as np
import tensorflow as tf
import tqdm

from apvg_tf import audio, skeleton, streaming, video_io
from apvg_tf.errors import InputError
from apvg_tf.export_format import to_uint8


def check_output_folder(path):
  """InputError unless the folder `path` would be written into exists (None: no output)."""
  if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
    raise InputError(f"the folder of {path!r} does not exist; create it first")


@functools.lru_cache(maxsize=None)
def _malloc_trim():
  """glibc's `malloc_trim`, or None where the C library has none (macOS, Windows, musl)."""
  try:
    trim = ctypes.CDLL(None).malloc_trim
  except (AttributeError, OSError, TypeError):
    return None
  trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
  return trim


def release_free_memory():
  """Returns the heap memory that has been freed to the system (glibc; a no-op elsewhere).

  Each chunk allocates and frees the same tensors (TensorFlow's CPU allocator is malloc),
  from several threads and so several malloc arenas. glibc only gives memory back from the
  top of a heap, so the freed blocks in between stayed resident and the process grew with the
  number of chunks, not with what is alive. malloc_trim(0) gives every whole free page of every
  arena back (madvise); nothing alive moves, so the results are the same. It costs a walk of
  the free lists and the page faults of reusing those pages: small next to a chunk's step.
  """
  trim = _malloc_trim()
  if trim is not None:
    trim(0)


class KeypointsJson:
  """The keypoint track file, written frame by frame as `generate_video` makes the frames.

  The bytes are those of data.manifest.write_json_atomic(path, {"fps", "layout", "keypoints"})
  (json.dump with indent=1), without holding the whole track as Python floats (about 190 MB
  for 10 minutes). Written to a temporary file and renamed on `close`.
  """

  _LAYOUT = "apvg_tf.skeleton (67 points: body, left hand, right hand)"

  def __init__(self, path, fps):
    self.path = path
    self._tmp = f"{path}.tmp{os.getpid()}"
    # The dict without its last entry, reopened for "keypoints" (the last key, as before).
    head = json.dumps({"fps": fps, "layout": self._LAYOUT}, indent=1)
    self._file = open(self._tmp, "w")  # pylint: disable=consider-using-with
    self._file.write(head[:-len("\n}")] + ',\n "keypoints": [')
    self._separator = "\n  "

  def write(self, keypoints):
    """Appends frames: float [T, 67, 2]."""
    for frame in np.round(keypoints, 5):
      # A frame's lines sit two levels deeper in the file than in its own dump.
      self._file.write(self._separator +
                       json.dumps(frame.tolist(), indent=1).replace("\n", "\n  "))
      self._separator = ",\n  "

  def close(self):
    """Finishes the file and moves it to its final name."""
    try:
      self._file.write("\n ]\n}")
      self._file.flush()
      os.fsync(self._file.fileno())
      self._file.close()
      os.replace(self._tmp, self.path)
    finally:
      self.abort()

  def abort(self):
    """Removes the temporary file; nothing is written."""
    self._file.close()
    if os.path.exists(self._tmp):
      os.remove(self._tmp)


class StreamingCQT:
  """Log-CQT columns [a, b) of a waveform, computed from the slice around them."""

  def __init__(self, waveform):
    self.waveform = np.asarray(waveform, np.float32)
    self.layer = audio.CQT(name="cqt")
    self.total_columns = audio.num_cqt_columns(len(self.waveform))
    self.context = self.layer.context_samples
    self.hop = self.layer.hop_length
    self._columns = tf.function(lambda x: self.layer(x[None])[0],
                                input_signature=[tf.TensorSpec([None], tf.float32)])

  def columns(self, first, last):
    """float32 [last - first, 84]: columns first .. last - 1 (clipped to the song)."""
    first, last = max(first, 0), min(last, self.total_columns)
    begin, end = first * self.hop - self.context, last * self.hop + self.context
    piece = self.waveform[max(begin, 0):max(min(end, len(self.waveform)), 0)]
    left = max(0, -begin)  # Zeros outside the signal, as the whole transform sees them.
    piece = np.pad(piece, (left, end - begin - left - len(piece)))
    context_columns = self.context // self.hop
    return self._columns(piece).numpy()[context_columns:context_columns + last - first]


def generate_video(runner, waveform, out_path, *, seed=0, keypoints_json=None,
                   skeleton_video=None, progress=True, on_progress=None):
  """Generates the performance video of a waveform.

  Args:
    runner: from `runtime.load_runner`.
    waveform: float32 [N] mono at 44.1 kHz.
    out_path: the mp4 to write (H.264 with the music as AAC).
    seed: seed of the coarse video's noise.
    keypoints_json: optional path for the keypoint track ({"fps", "keypoints": [T][67][2]}).
    skeleton_video: optional path for an mp4 of the predicted skeletons, with the music.
    progress: show a tqdm progress bar with frames/s.
    on_progress: optional `on_progress(done, total)`, called with the frames made so far
      before the first chunk and after each one (the web page's bar). An exception it raises
      stops the generation and leaves no file, as any error does (a cancelled request).

  Returns:
    dict: frames, seconds, fps.

  Raises:
    InputError: if the waveform is empty or the output folder does not exist.
  """
  meta = runner.metadata
  fps, chunk, res = meta["fps"], int(meta["chunk_frames"]), int(meta["resolution"])
  waveform = np.asarray(waveform, np.float32)
  num_frames = audio.num_video_frames(len(waveform), fps)
  if num_frames == 0:
    raise InputError("the audio is empty (0 samples): nothing to perform")
  for path in (out_path, keypoints_json, skeleton_video):
    check_output_folder(path)
  cqt = StreamingCQT(waveform)
  # Columns outside the song: the raw CQT mean normalises to zero, training's padding (an
  # export older than this field pads with raw zeros).
  pad = meta.get("cqt_mean")
  half = audio.WINDOW_COLUMNS // 2

  def windows(first, last):
    """The windows of positions first .. last - 1, from the columns they need."""
    heard = np.arange(first, last)
    centers = audio.window_centers(heard, fps)
    low, high = max(int(centers[0]) - half, 0), int(centers[-1]) + half + 1
    return audio.frame_windows_tf(cqt.columns(low, high), fps, heard, column_offset=low,
                                  total_columns=cqt.total_columns, pad_value=pad).numpy()

  rng = np.random.default_rng(seed)
  noise = lambda first, last: rng.standard_normal(
      (last - first, meta["z_dim"])).astype(np.float32)
  track = None  # KeypointsJson, opened at the first keypoints (a model may have none).
  writers = [video_io.VideoWriter(out_path, fps)]
  if skeleton_video:
    writers.append(video_io.VideoWriter(skeleton_video, fps))
  bar = tqdm.tqdm(total=num_frames, unit="frame", desc="generating") if progress else None
  chunks = streaming.stream(lambda w, n, state, k: runner.step(w, n, state),
                            runner.initial_state(), windows, num_frames,
                            lookahead=int(meta.get("lookahead_frames", 0)),
                            chunk_frames=chunk, noise=noise)
  made = 0
  try:
    if on_progress is not None:
      on_progress(0, num_frames)
    for _, outputs, _ in chunks:
      writers[0].write(to_uint8(outputs["frames"][0]))
      if "keypoints" in outputs:
        if keypoints_json:
          if track is None:
            track = KeypointsJson(keypoints_json, fps)
          track.write(outputs["keypoints"][0])
        if skeleton_video:
          blank = np.full((res, res, 3), 24, np.uint8)
          writers[1].write(np.stack([skeleton.draw_skeleton(blank, k)
                                     for k in outputs["keypoints"][0]]))
      done = len(outputs["frames"][0])
      del outputs  # So that its memory is free when it is handed back.
      release_free_memory()
      if bar is not None:
        bar.update(done)
      made += done
      if on_progress is not None:
        on_progress(made, num_frames)
    for writer in writers:
      writer.add_audio(waveform)
      writer.close()
    if track is not None:
      track.close()
  except BaseException:
    for writer in writers:
      writer.abort()
    if track is not None:
      track.abort()
    raise
  finally:
    if bar is not None:
      bar.close()
  return {"frames": num_frames, "seconds": len(waveform) / audio.SAMPLE_RATE, "fps": fps}
