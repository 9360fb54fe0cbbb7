"""Writing H.264 mp4 videos with the music muxed in, via the ffmpeg of `imageio-ffmpeg`.

Frames are piped as raw RGB to ffmpeg (libx264, yuv420p, so every player opens the file;
odd sizes are padded by one pixel because yuv420p needs even dimensions). Audio, if any,
is written to a temporary wav and muxed in as AAC once the video is complete. Everything is
written to temporary files in the destination folder and renamed at the end, so a crash
never leaves a truncated video under the final name.

  write_video(path, frames, fps, audio=None)   all at once (array or iterable of frames)
  VideoWriter(path, fps)                       streaming: write(frames), add_audio(samples)
"""

import fractions
import os
import subprocess

import numpy as np

from apvg_tf.errors import InputError

DEFAULT_SAMPLE_RATE = 44100
_AUDIO_BLOCK = 1 << 20  # Samples written to the soundtrack at a time.


def ffmpeg_exe():
  """Path of the ffmpeg binary shipped with the imageio-ffmpeg wheel (the one lookup).

  Raises:
    InputError: if there is none (the wheel missing, or no binary for this platform).
  """
  try:
    import imageio_ffmpeg  # pylint: disable=g-import-not-at-top  (only where ffmpeg runs)
    return imageio_ffmpeg.get_ffmpeg_exe()
  except Exception as e:  # pylint: disable=broad-except  (ImportError, RuntimeError, ...)
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    raise InputError(f"ffmpeg was not found ({first}); install the imageio-ffmpeg wheel "
                     "(pip install imageio-ffmpeg), or convert the audio to WAV") from None


def _rate(fps):
  """fps as an exact ffmpeg rational (29.97... -> 30000/1001)."""
  if not fps or fps <= 0:
    raise InputError(f"fps must be positive, got {fps}")
  rate = fractions.Fraction(float(fps)).limit_denominator(1001)
  return f"{rate.numerator}/{rate.denominator}"


class VideoWriter:
  """Streams frames into an mp4; optional mono audio is muxed in on `close`.

  Usage:
    with VideoWriter("out.mp4", fps=30) as video:
      for chunk in chunks:
        video.write(chunk)           # uint8 [H, W, 3] or [T, H, W, 3]
      video.add_audio(waveform)      # float32 [N] in [-1, 1] (may be called repeatedly)

  Leaving the `with` block on an exception removes the temporary files and writes nothing.
  """

  def __init__(self, path, fps, *, sample_rate=DEFAULT_SAMPLE_RATE, crf=18, preset="veryfast"):
    """Opens a writer.

    Args:
      path: the .mp4 to write.
      fps: frame rate.
      sample_rate: rate of the audio given to `add_audio`.
      crf: x264 quality (lower is better; 18 is visually lossless).
      preset: x264 speed preset.

    Raises:
      InputError: if the folder of `path` does not exist or fps is not positive.
    """
    self.path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(self.path))
    if not os.path.isdir(folder):
      raise InputError(f"cannot write {self.path}: the folder {folder} does not exist")
    self._rate = _rate(fps)
    self._sample_rate = int(sample_rate)
    self._crf, self._preset = int(crf), preset
    stem = os.path.join(folder, f".{os.path.basename(self.path)}.{os.getpid()}")
    self._video_tmp, self._audio_tmp, self._final_tmp = (
        stem + ".video.mp4", stem + ".audio.wav", stem + ".muxed.mp4")
    self._process = None
    self._size = None
    self._audio = []
    self.num_frames = 0

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if exc_type is None:
      self.close()
    else:
      self.abort()
    return False

  def _start(self, height, width):
    pad = "pad=ceil(iw/2)*2:ceil(ih/2)*2"
    command = [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", self._rate, "-i", "-", "-vf", pad,
               "-c:v", "libx264", "-preset", self._preset, "-crf", str(self._crf),
               "-pix_fmt", "yuv420p", "-movflags", "+faststart", self._video_tmp]
    self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    self._size = (height, width)

  def write(self, frames):
    """Appends one frame uint8 [H, W, 3] or several [T, H, W, 3] (RGB)."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
      frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
      raise InputError(f"frames must be [T, H, W, 3] or [H, W, 3] RGB, got {frames.shape}")
    if frames.dtype != np.uint8:
      raise InputError(f"frames must be uint8, got {frames.dtype}")
    if self._process is None:
      self._start(*frames.shape[1:3])
    if frames.shape[1:3] != self._size:
      raise InputError(f"frame size {frames.shape[1:3]} differs from the first {self._size}")
    try:
      self._process.stdin.write(np.ascontiguousarray(frames).tobytes())
    except BrokenPipeError as e:
      raise RuntimeError(f"ffmpeg stopped: {self._process.stderr.read().decode()[-500:]}") from e
    self.num_frames += len(frames)

  def add_audio(self, samples):
    """Appends mono float audio samples ([N], in [-1, 1]) to the soundtrack."""
    self._audio.append(np.asarray(samples, np.float32).reshape(-1))

  def close(self):
    """Finishes the video, muxes the audio, and moves the file to its final name."""
    import soundfile  # pylint: disable=g-import-not-at-top
    if self._process is None:
      raise InputError(f"no frames were written to {self.path}")
    try:
      self._process.stdin.close()
      error = self._process.stderr.read().decode()
      if self._process.wait() != 0:
        raise RuntimeError(f"ffmpeg failed writing {self.path}: {error[-500:]}")
      if self._audio:
        # Block by block: a 10-minute soundtrack is never copied whole.
        with soundfile.SoundFile(self._audio_tmp, "w", self._sample_rate, 1,
                                 subtype="PCM_16") as sound:
          for piece in self._audio:
            for start in range(0, len(piece), _AUDIO_BLOCK):
              sound.write(np.clip(piece[start:start + _AUDIO_BLOCK], -1, 1))
        command = [ffmpeg_exe(), "-y", "-loglevel", "error", "-i", self._video_tmp,
                   "-i", self._audio_tmp, "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
                   "-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart", self._final_tmp]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
          raise RuntimeError(f"ffmpeg failed muxing {self.path}: {result.stderr[-500:]}")
        os.replace(self._final_tmp, self.path)
      else:
        os.replace(self._video_tmp, self.path)
    finally:
      self._cleanup()

  def abort(self):
    """Stops ffmpeg and removes the temporary files; nothing is written."""
    if self._process is not None and self._process.poll() is None:
      self._process.kill()
      self._process.wait()
    self._cleanup()

  def _cleanup(self):
    for path in (self._video_tmp, self._audio_tmp, self._final_tmp):
      if os.path.exists(path):
        os.remove(path)


def write_video(path, frames, fps, audio=None, sample_rate=DEFAULT_SAMPLE_RATE):
  """Writes an H.264 mp4, with the audio muxed in as AAC when given.

  Args:
    path: the .mp4 to write; its folder must exist.
    frames: uint8 [T, H, W, 3] RGB, or an iterable of [H, W, 3] frames (streamed).
    fps: frame rate.
    audio: optional float32 [N] mono waveform in [-1, 1].
    sample_rate: the audio's sample rate.

  Raises:
    InputError: missing folder, no frames, or frames of the wrong type or shape.
  """
  with VideoWriter(path, fps, sample_rate=sample_rate) as video:
    for frame in frames:
      video.write(frame)
    if audio is not None:
      video.add_audio(audio)
