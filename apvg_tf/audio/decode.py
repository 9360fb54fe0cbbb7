"""Decoding audio files into mono waveforms at the feature sample rate.

`load_waveform` (NumPy, any file) reads WAV, FLAC, OGG/Vorbis and MP3 with libsndfile
(soundfile), falling back to tensorflow-io and then ffmpeg when it cannot read a file;
everything else (mp4, m4a, mov, mkv, webm, aac, ..., including the audio track of a video)
goes through the ffmpeg binary of the `imageio-ffmpeg` wheel. Every decoder streams: blocks
are downmixed (mean of the channels) and resampled with soxr (`soxr_hq`, streamed) as they
arrive, so a long song costs its 44.1 kHz waveform and one block, not copies of the file.
Every problem with the file raises `apvg_tf.errors.InputError` with a one-line message.

`decode_waveform_tf` decodes encoded bytes inside a TensorFlow graph (tf.data), reading the
sample rate from the file header with TensorFlow string ops.
"""

import os
import re
import subprocess
import tempfile

import numpy as np
import tensorflow as tf

from apvg_tf import errors, video_io
from apvg_tf.audio import params

# Extensions tensorflow-io decodes; anything else goes to ffmpeg directly.
_TFIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3")
_WAV_EXTENSIONS = (".wav", ".wave")
# Placeholder data sizes that streaming writers leave in WAV headers.
_UNKNOWN_WAV_SIZES = (0, 0xFFFFFFFF)
# Frames decoded at a time (memory: one block besides the result).
_BLOCK_FRAMES = 1 << 20


class _NoAudioTrack(Exception):
  """ffmpeg opened the file but found no audio stream in it."""


def load_waveform(path, sample_rate=params.SAMPLE_RATE):
  """Reads an audio or video file as a mono waveform.

  Args:
    path: str or os.PathLike, an audio file (wav, flac, ogg, mp3, m4a, aac, ...) or a video
      file with an audio track (mp4, mov, mkv, webm, ...).
    sample_rate: int, rate of the returned waveform in Hz.

  Returns:
    float32 array [N]: the mean of the channels, resampled to `sample_rate` (soxr_hq), in
    [-1, 1] for integer sources. Silence is a valid result; an empty one is not.

  Raises:
    InputError: the file is missing, empty, not audio, truncated or corrupt, has no audio
      track, has zero samples, or has NaN or infinite samples.
  """
  path = os.fspath(path)
  if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
    raise errors.InputError(f"sample_rate must be a positive integer, got {sample_rate!r}.")
  if not os.path.exists(path):
    raise errors.InputError(f"Audio file not found: {path}. Check the path and try again.")
  if not os.path.isfile(path):
    raise errors.InputError(f"{path} is a directory, not an audio file; pass a file path.")
  if os.path.getsize(path) == 0:
    raise errors.InputError(f"{path} is empty (0 bytes); pass a file that contains audio.")

  extension = os.path.splitext(path)[1].lower()
  decoders = [_decode_ffmpeg]
  if extension in _TFIO_EXTENSIONS:
    # libsndfile first: it reads from disk block by block, where tensorflow-io holds the
    # whole file in memory.
    decoders = [_decode_soundfile, _decode_tfio, _decode_ffmpeg]
  if extension in _WAV_EXTENSIONS:
    header = _read_wav_header(path)
    if header is not None:
      _check_wav_complete(path, header)
      if header["format"] == 1 and header["bits"] == 32:
        # tensorflow-io 0.37 reads 32-bit integer PCM as float32 (garbage); skip it.
        decoders.remove(_decode_tfio)

  failures = []
  for decoder in decoders:
    try:
      rate, blocks = decoder(path)
      first = next(blocks, None)  # A decoder that cannot read the start hands over to the next.
      break
    except _NoAudioTrack:
      raise errors.InputError(
          f"{path} has no audio track; pass a file with sound, or mux the music into the "
          "video first (ffmpeg -i video -i music -map 0:v -map 1:a ...).") from None
    except errors.InputError:
      raise
    except Exception as e:  # pylint: disable=broad-except  (decoders raise anything)
      failures.append(f"{decoder.__name__.replace('_decode_', '')}: {_first_line(e)}")
  else:
    raise errors.InputError(_undecodable_message(path, failures))
  return _mono(path, rate, int(sample_rate), first, blocks)


def _mono(path, rate, sample_rate, first, blocks):
  """Downmixes and resamples decoded blocks one at a time.

  Memory is the result plus one block, whatever the file's length, rate and channel count:
  a 10-minute song costs its 44.1 kHz float32 waveform (106 MB) and nothing more.

  Args:
    path: the file (for messages).
    rate: its sample rate.
    sample_rate: the rate to return.
    first: the first block, float32 [n, C], or None if the file has no samples.
    blocks: iterator over the remaining blocks.

  Returns:
    float32 [N] at `sample_rate`.
  """
  resampler = None
  if rate != sample_rate:
    import soxr  # pylint: disable=g-import-not-at-top  (librosa's soxr_hq, streamed)
    resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
  read, written, block = 0, 0, first
  # The mono blocks go to a temporary file and come back as one array: freed blocks would
  # otherwise stay in the heap beside the result (glibc does not return them), doubling the
  # peak for a long song.
  with tempfile.TemporaryFile() as spool:
    while block is not None:
      if not np.all(np.isfinite(block)):
        raise errors.InputError(
            f"{path} contains NaN or infinite sample values, so it is corrupt; re-export it "
            "(e.g. as 16-bit WAV) and try again.")
      read += len(block)
      try:
        following = next(blocks, None)
      except Exception as e:  # pylint: disable=broad-except  (decoders raise anything)
        raise errors.InputError(
            f"{path} could not be decoded after {read / rate:.1f} s ({_first_line(e)}); the "
            "file is truncated or corrupt: re-export it and try again.") from None
      mono = block.mean(axis=1, dtype=np.float64).astype(np.float32)
      if resampler is not None:
        mono = resampler.resample_chunk(mono, last=following is None)
      spool.write(np.ascontiguousarray(mono, np.float32).tobytes())
      written += len(mono)
      block = following
    if read == 0:
      raise errors.InputError(
          f"{path} contains no audio samples (length 0); pass a non-empty recording.")
    # The length librosa.resample gives (ceil(N * ratio)); the stream may end a sample short.
    length = read if resampler is None else int(np.ceil(read * sample_rate / rate))
    spool.write(np.zeros(max(length - written, 0), np.float32).tobytes())
    spool.seek(0)
    return np.fromfile(spool, dtype=np.float32, count=length)


def _first_line(exception):
  """The first non-empty line of an exception's message, without TF op decorations."""
  text = re.sub(r"\{\{function_node [^}]*\}\}|\[Op:[^\]]*\]", "", str(exception))
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  text = lines[0] if lines else type(exception).__name__
  return text if len(text) <= 120 else text[:117] + "..."


def _to_float32(samples):
  """Integer PCM (as the decoders return it) to float32 in [-1, 1]; floats pass through."""
  samples = np.asarray(samples)
  if samples.dtype == np.uint8:
    return (samples.astype(np.float32) - 128.0) / 128.0
  if samples.dtype == np.int16:
    return samples.astype(np.float32) / 32768.0
  if samples.dtype == np.int32:  # 24-bit samples arrive left-aligned in int32.
    return (samples.astype(np.float64) / 2147483648.0).astype(np.float32)
  return samples.astype(np.float32)


def _decode_tfio(path):
  """tensorflow-io decoder: (rate, iterator of float32 [n, C] blocks), read lazily."""
  import tensorflow_io as tfio  # pylint: disable=g-import-not-at-top  (slow import)
  audio = tfio.audio.AudioIOTensor(path)
  frames = int(audio.shape[0])

  def blocks():
    for start in range(0, frames, _BLOCK_FRAMES):
      samples = _to_float32(audio[start:start + _BLOCK_FRAMES].numpy())
      yield samples.reshape(samples.shape[0], -1)

  return int(audio.rate.numpy()), blocks()


def _decode_soundfile(path):
  """libsndfile decoder: (rate, iterator of float32 [n, C] blocks)."""
  import soundfile  # pylint: disable=g-import-not-at-top
  sound = soundfile.SoundFile(path)

  def blocks():
    with sound:
      while True:
        samples = sound.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
        if not len(samples):
          return
        yield samples

  return int(sound.samplerate), blocks()


def _decode_ffmpeg(path):
  """ffmpeg decoder: the first audio stream at its own rate and channel count, streamed.

  ffmpeg writes float32 WAV to a pipe, so the header tells the channel count and rate
  without parsing ffmpeg's log (channel layout names vary).

  Returns:
    (rate, iterator of float32 [n, C] blocks).
  """
  command = [video_io.ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", path,
             "-map", "0:a:0", "-vn", "-sn", "-dn", "-f", "wav", "-c:a", "pcm_f32le", "-"]
  log = tempfile.TemporaryFile()  # A file, not a pipe: ffmpeg never blocks on its log.
  process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)

  def fail():
    process.stdout.close()
    code = process.wait()
    log.seek(0)
    text = log.read().decode("utf-8", "replace")
    log.close()
    if "matches no streams" in text:
      raise _NoAudioTrack()
    lines = [line for line in text.splitlines() if line.strip()]
    raise RuntimeError(lines[-1] if lines else f"ffmpeg exited with {code} and no audio")

  channels = rate = None
  if process.stdout.read(12)[:4] != b"RIFF":
    fail()
  while True:
    head = process.stdout.read(8)
    if len(head) < 8:
      fail()
    chunk, size = head[:4], int.from_bytes(head[4:], "little")
    if chunk == b"data":  # Its size field is a placeholder on a pipe: read to the end.
      break
    body = process.stdout.read(size + (size & 1))
    if chunk == b"fmt " and len(body) >= 8:
      channels = int.from_bytes(body[2:4], "little")
      rate = int.from_bytes(body[4:8], "little")
  if not channels or not rate:
    fail()

  def blocks():
    frame_bytes, rest = 4 * channels, b""
    try:
      while True:
        data = rest + process.stdout.read(_BLOCK_FRAMES * frame_bytes)
        usable = len(data) // frame_bytes * frame_bytes
        if usable:
          yield np.frombuffer(data[:usable], dtype="<f4").reshape(-1, channels)
        rest = data[usable:]
        if len(data) == len(rest):  # End of the stream.
          break
      if process.wait() != 0:
        fail()
    finally:  # Also when the reader stops early (a bad sample): no ffmpeg left behind.
      if process.poll() is None:
        process.kill()
        process.wait()
      log.close()

  return rate, blocks()


def _read_wav_header(path):
  """Parses a RIFF/WAVE header; None if the file does not start like one.

  Returns:
    dict with format (1 PCM, 3 float; WAVE_FORMAT_EXTENSIBLE resolved), channels, rate,
    bits, block_align, data_size (declared bytes) and data_offset, or None where a field is
    missing (a header cut short).
  """
  with open(path, "rb") as f:
    head = f.read(1 << 16)
  if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
    return None
  header = dict(format=None, channels=None, rate=None, bits=None, block_align=None,
                data_size=None, data_offset=None)
  position = 12
  while position + 8 <= len(head):
    chunk = head[position:position + 4]
    size = int.from_bytes(head[position + 4:position + 8], "little")
    body = head[position + 8:position + 8 + size]
    if chunk == b"fmt " and len(body) >= 16:
      header.update(format=int.from_bytes(body[0:2], "little"),
                    channels=int.from_bytes(body[2:4], "little"),
                    rate=int.from_bytes(body[4:8], "little"),
                    block_align=int.from_bytes(body[12:14], "little"),
                    bits=int.from_bytes(body[14:16], "little"))
      if header["format"] == 0xFFFE and len(body) >= 26:
        header["format"] = int.from_bytes(body[24:26], "little")  # the SubFormat GUID
    elif chunk == b"data":
      header.update(data_size=size, data_offset=position + 8)
      break
    position += 8 + size + (size & 1)
  return header


def _check_wav_complete(path, header):
  """Raises InputError if a WAV file holds fewer audio bytes than its header declares."""
  if header["data_size"] is None or header["data_size"] in _UNKNOWN_WAV_SIZES:
    return
  available = os.path.getsize(path) - header["data_offset"]
  # One frame of slack: some writers round the declared size.
  if available < header["data_size"] - (header["block_align"] or 1):
    raise errors.InputError(
        f"{path} is truncated: its header declares {header['data_size']} bytes of audio but "
        f"only {max(available, 0)} are present; re-export or re-download the file.")


def _looks_like_media(head):
  """Whether the first bytes of a file carry a known audio or video signature."""
  signatures = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"ID3", b"FORM", b"caff",
                b"\x1a\x45\xdf\xa3", b"\x30\x26\xb2\x75", b"#!AMR", b"MThd")
  if head.startswith(signatures) or head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
    return True
  # MPEG audio frame or ADTS (AAC) sync word.
  return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0


def _undecodable_message(path, failures):
  """The InputError message for a file that no decoder could read."""
  with open(path, "rb") as f:
    head = f.read(64)
  detail = "; ".join(failures)
  if not _looks_like_media(head):
    kind = "text" if all(32 <= b < 127 or b in (9, 10, 13) for b in head) else "unknown data"
    return (f"{path} is not an audio file (its contents look like {kind}, not WAV, FLAC, OGG, "
            f"MP3 or a video container); pass a real recording. Decoders said: {detail}")
  return (f"{path} could not be decoded: it looks truncated or corrupt; re-export or "
          f"re-download it. Decoders said: {detail}")


# ------------------------------------------------------------------------------------------
# Decoding inside a TensorFlow graph.
# ------------------------------------------------------------------------------------------

_TF_FORMATS = ("wav", "flac", "ogg", "mp3")


def decode_waveform_tf(contents, file_format, *, mono=False, sample_rate=None):
  """Decodes encoded audio bytes with TensorFlow (tensorflow-io) ops, for tf.data.

  The sample rate (and for WAV/FLAC the sample type) is read from the file header with
  TensorFlow string ops, so the function traces once per `file_format` and works in
  `Dataset.map`. Malformed bytes fail with `tf.errors.InvalidArgumentError` at run time
  (an InputError cannot be raised from a graph); check files with `load_waveform` first.

  Args:
    contents: scalar tf.string, the bytes of a whole file.
    file_format: Python str, one of 'wav', 'flac', 'ogg', 'mp3'.
    mono: bool; True averages the channels, giving C = 1.
    sample_rate: optional int; if given, resamples to it with tensorflow-io's resampler,
      delay-compensated (`_resample_tf`); close to, not bit-identical with, soxr_hq.

  Returns:
    waveform: float32 [N, C], in [-1, 1] for integer PCM.
    rate: int64 scalar, the sample rate of `waveform` (`sample_rate` when given).

  Raises:
    InputError: `file_format` is not supported (at trace time).
  """
  file_format = str(file_format).lower().lstrip(".")
  file_format = {"wave": "wav", "oga": "ogg"}.get(file_format, file_format)
  if file_format not in _TF_FORMATS:
    raise errors.InputError(f"decode_waveform_tf supports {', '.join(_TF_FORMATS)}, not "
                            f"{file_format!r}; use load_waveform for other formats.")
  import tensorflow_io as tfio  # pylint: disable=g-import-not-at-top  (slow import)
  contents = tf.convert_to_tensor(contents, tf.string)
  decoder = {"wav": _decode_wav_tf, "flac": _decode_flac_tf, "ogg": _decode_ogg_tf,
             "mp3": _decode_mp3_tf}[file_format]
  waveform, rate = decoder(contents, tfio)
  waveform = tf.ensure_shape(waveform, [None, None])
  if mono:
    waveform = tf.reduce_mean(waveform, axis=1, keepdims=True)
  if sample_rate is not None:
    target = tf.constant(int(sample_rate), tf.int64)
    waveform = tf.cond(tf.equal(rate, target), lambda: waveform,
                       lambda: _resample_tf(waveform, rate, target))
    waveform = tf.ensure_shape(waveform, [None, None])
    rate = target
  return waveform, rate


def _resample_tf(waveform, rate_in, rate_out):
  """Resamples float32 [N, C] with tensorflow-io's resampler, without its delay.

  The resampler (the op under `tfio.audio.resample`, called on [N, C] directly because the
  wrapper's vectorized_map falls back to a while_loop with a warning) delays its output by
  a whole number of input samples that depends on the rates (32 when upsampling, 36 for
  48 -> 44.1 kHz, 64 for 88.2 -> 44.1 kHz, measured). The delay is measured on an impulse
  and the input advanced by it, so the result lines up with `load_waveform`'s soxr_hq.

  Args:
    waveform: float32 [N, C].
    rate_in: int64 scalar, its rate.
    rate_out: int64 scalar, the rate wanted.

  Returns:
    float32 [N', C], N' ~ N * rate_out / rate_in (soxr's length in every case tested).
  """
  from tensorflow_io.python.ops import core_ops  # pylint: disable=g-import-not-at-top
  probe_length, position = 1024, 384
  impulse = tf.one_hot(position, probe_length, dtype=tf.float32)[:, None]
  response = core_ops.io_audio_resample(impulse, rate_in=rate_in, rate_out=rate_out)[:, 0]
  peak = tf.argmax(response, output_type=tf.int32)
  peak = tf.clip_by_value(peak, 1, tf.shape(response)[0] - 2)
  # Parabolic interpolation of the (linear-phase, symmetric) peak for sub-sample accuracy.
  before, at, after = response[peak - 1], response[peak], response[peak + 1]
  curvature = before - 2.0 * at + after
  offset = tf.where(tf.abs(curvature) > 1e-12, 0.5 * (before - after) / curvature, 0.0)
  ratio = tf.cast(rate_out, tf.float32) / tf.cast(rate_in, tf.float32)
  delay = tf.cast(tf.round((tf.cast(peak, tf.float32) + offset) / ratio) - position, tf.int32)
  delay = tf.clip_by_value(delay, 0, tf.minimum(position, tf.shape(waveform)[0]))
  advanced = tf.concat([waveform[delay:], tf.zeros([delay, tf.shape(waveform)[1]])], axis=0)
  return core_ops.io_audio_resample(advanced, rate_in=rate_in, rate_out=rate_out)


def _uint_le(contents, offset, size):
  """Little-endian unsigned integer of `size` bytes at `offset` (int64 scalar)."""
  raw = tf.io.decode_raw(tf.strings.substr(contents, offset, size), tf.uint8)
  weights = tf.constant([256 ** i for i in range(size)], tf.int64)
  return tf.reduce_sum(tf.cast(raw, tf.int64) * weights)


def _fail(message):
  """A branch result that fails at run time with `message` (float32 [0, 1])."""
  with tf.control_dependencies([tf.debugging.Assert(False, [message])]):
    return tf.zeros([0, 1], tf.float32)


def _decode_wav_tf(contents, tfio):
  """WAV bytes -> (float32 [N, C], int64 rate); PCM 8/16/24/32-bit and float32."""
  length = tf.cast(tf.strings.length(contents), tf.int64)

  def not_fmt(position):
    # Stop at the end of the data, whatever chunk sits there.
    return tf.logical_and(position + 8 <= length,
                          tf.not_equal(tf.strings.substr(
                              contents, tf.minimum(position, length), 4), "fmt "))

  def next_chunk(position):
    size = _uint_le(contents, position + 4, 4)
    return [position + 8 + size + size % 2]

  position = tf.while_loop(not_fmt, next_chunk, [tf.constant(12, tf.int64)])[0]
  tag = _uint_le(contents, position + 8, 2)
  rate = _uint_le(contents, position + 12, 4)
  bits = _uint_le(contents, position + 22, 2)
  tag = tf.cond(tf.equal(tag, 0xFFFE), lambda: _uint_le(contents, position + 32, 2),
                lambda: tag)
  int_pcm = tf.equal(tag, 1)
  branch = tf.case([
      (tf.logical_and(tf.equal(tag, 3), tf.equal(bits, 32)), lambda: tf.constant(0)),
      (tf.logical_and(int_pcm, tf.equal(bits, 16)), lambda: tf.constant(1)),
      (tf.logical_and(int_pcm, tf.equal(bits, 24)), lambda: tf.constant(2)),
      # tensorflow-io returns 32-bit integer PCM as float32 bit patterns: bitcast back.
      (tf.logical_and(int_pcm, tf.equal(bits, 32)), lambda: tf.constant(3)),
      (tf.logical_and(int_pcm, tf.equal(bits, 8)), lambda: tf.constant(4)),
  ], default=lambda: tf.constant(5))
  decode = lambda dtype: tfio.audio.decode_wav(contents, dtype=dtype)
  waveform = tf.switch_case(branch, [
      lambda: decode(tf.float32),
      lambda: tf.cast(decode(tf.int16), tf.float32) / 32768.0,
      lambda: tf.cast(tf.cast(decode(tf.int32), tf.float64) / 2147483648.0, tf.float32),
      lambda: tf.cast(tf.cast(tf.bitcast(decode(tf.float32), tf.int32), tf.float64)
                      / 2147483648.0, tf.float32),
      lambda: (tf.cast(decode(tf.uint8), tf.float32) - 128.0) / 128.0,
      lambda: _fail("Unsupported WAV sample format (use PCM 8/16/24/32-bit or float32)"),
  ])
  return waveform, rate


def _decode_flac_tf(contents, tfio):
  """FLAC bytes -> (float32 [N, C], int64 rate), from the STREAMINFO block."""
  info = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, 18, 4), tf.uint8), tf.int64)
  rate = info[0] * 4096 + info[1] * 16 + info[2] // 16  # 20 bits
  bits = (info[2] % 2) * 16 + info[3] // 16 + 1  # 5 bits, stored minus one
  decode = lambda dtype: tfio.audio.decode_flac(contents, dtype=dtype)
  branch = tf.case([(bits <= 8, lambda: tf.constant(0)), (bits <= 16, lambda: tf.constant(1)),
                    (bits <= 32, lambda: tf.constant(2))], default=lambda: tf.constant(3))
  waveform = tf.switch_case(branch, [
      lambda: (tf.cast(decode(tf.uint8), tf.float32) - 128.0) / 128.0,
      lambda: tf.cast(decode(tf.int16), tf.float32) / 32768.0,
      lambda: tf.cast(tf.cast(decode(tf.int32), tf.float64) / 2147483648.0, tf.float32),
      lambda: _fail("Unsupported FLAC bit depth"),
  ])
  return waveform, rate


def _decode_ogg_tf(contents, tfio):
  """Ogg/Vorbis bytes -> (float32 [N, C], int64 rate), from the identification header."""
  # First page: 27 header bytes + one lacing byte per segment; the packet then holds
  # type (1), "vorbis" (6), version (4), channels (1), rate (4).
  segments = _uint_le(contents, 26, 1)
  rate = _uint_le(contents, 27 + segments + 12, 4)
  return tfio.audio.decode_vorbis(contents), rate


def _decode_mp3_tf(contents, tfio):
  """MP3 bytes -> (float32 [N, C], int64 rate), from the first frame header."""
  # Skip an ID3v2 tag: 10 bytes, a "syncsafe" size (7 bits per byte), optional footer.
  def id3_size():
    size = tf.io.decode_raw(tf.strings.substr(contents, 6, 4), tf.uint8)
    size = tf.reduce_sum(tf.cast(size, tf.int64) * tf.constant([2 ** 21, 2 ** 14, 2 ** 7, 1],
                                                               tf.int64))
    footer = tf.cast(_uint_le(contents, 5, 1) // 16 % 2, tf.int64) * 10
    return 10 + size + footer

  start = tf.cond(tf.equal(tf.strings.substr(contents, 0, 3), "ID3"), id3_size,
                  lambda: tf.constant(0, tf.int64))
  # The first valid frame header within 64 KiB (padding may follow the tag).
  window = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, start, 65536), tf.uint8),
                   tf.int32)
  b0, b1, b2 = window[:-2], window[1:-1], window[2:]
  version = b1 // 8 % 4  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
  layer = b1 // 2 % 4
  rate_index = b2 // 4 % 4
  bitrate_index = b2 // 16
  valid = ((b0 == 255) & (b1 >= 224) & (version != 1) & (layer != 0) & (rate_index != 3)
           & (bitrate_index != 15) & (bitrate_index != 0))
  found = tf.reduce_any(valid)
  with tf.control_dependencies([tf.debugging.Assert(found, ["No MP3 frame header found"])]):
    index = tf.argmax(tf.cast(valid, tf.int32), output_type=tf.int32)
  table = tf.constant([[11025, 12000, 8000], [0, 0, 0], [22050, 24000, 16000],
                       [44100, 48000, 32000]], tf.int64)
  rate = table[version[index], rate_index[index]]
  return tfio.audio.decode_mp3(contents), rate
