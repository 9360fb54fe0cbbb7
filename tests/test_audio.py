"""Tests of apvg_tf.audio: the CQT (layer, NumPy twin, librosa) and decoding (known answers)."""

import functools
import os
import shutil
import subprocess
import tempfile

from absl.testing import parameterized
import imageio_ffmpeg
import librosa
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from apvg_tf import errors
from apvg_tf.audio import constant_q, decode, params
from conftest import FIXTURES

MIX = os.path.join(FIXTURES, "mix.wav")
VIDEO = os.path.join(FIXTURES, "urmp_vln1.mp4")
SR = params.SAMPLE_RATE


def chirp(seconds, f0, f1, fade=0.2):
  """Exponential sine sweep f0 -> f1 Hz at 44.1 kHz with raised-cosine fades (float32)."""
  t = np.arange(int(seconds * SR)) / SR
  rate = np.log(f1 / f0) / seconds
  x = 0.5 * np.sin(2 * np.pi * f0 * (np.exp(rate * t) - 1) / rate)
  n = int(fade * SR)
  ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
  x[:n] *= ramp
  x[-n:] *= ramp[::-1]
  return x.astype(np.float32)


@functools.lru_cache(maxsize=None)
def signal(name):
  """The test signals: a chirp over the bins, and real music (URMP mix) at 44.1 kHz."""
  if name == "chirp":
    return chirp(4.0, 65.4, 4186.0, fade=0.3)  # C2 -> C8
  if not os.path.exists(MIX):
    pytest.skip(f"{MIX} is absent (shared fixtures not installed)")
  return decode.load_waveform(MIX)  # 48 kHz 16-bit -> 44.1 kHz


def relative_error(got, want):
  return np.linalg.norm(got - want) / np.linalg.norm(want)


def layer_cqt(waveform, **kwargs):
  """The CQT layer on one waveform, as [84, M] like the NumPy twin."""
  return constant_q.CQT(**kwargs)(waveform[None]).numpy()[0].T


class ConstantQTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("chirp", "mix")
  def test_layer_equals_numpy_twin(self, name):
    x = signal(name)
    want = constant_q.cqt_magnitude(x)
    got = layer_cqt(x, log=False)
    self.assertEqual(got.shape, want.shape)
    self.assertLessEqual(relative_error(got, want), 1e-5)  # measured 2e-7 to 8e-7
    # Float32 sums leave an absolute error that scales with the loudest bin: measured 3e-7
    # of it with TensorFlow's own kernels, 1.8e-6 with oneDNN's on an AVX-512 CPU.
    self.assertLessEqual(np.abs(got - want).max(), 1e-5 * want.max())
    # Log outputs: that error moves log(|C| + 1e-5) only where |C| is near the 1e-5 floor
    # (by up to 0.6 next to the chirp's 21-high peak with oneDNN); where |C| >= 1e-2 the two
    # agree to 1e-3, and the layer applies the twin's floor and log to its own magnitudes.
    log_want, log_got = constant_q.cqt(x), layer_cqt(x)
    self.assertEqual(log_want.dtype, np.float32)
    loud = want >= 1e-2
    self.assertGreater(loud.mean(), 0.1)
    self.assertAllClose(log_got[loud], log_want[loud], atol=1e-3, rtol=0)
    self.assertAllClose(log_got, np.log(got + params.LOG_EPS), atol=1e-5, rtol=0)

  @parameterized.parameters(("chirp", 1e-2), ("mix", 1e-2))
  def test_close_to_librosa_cqt(self, name, tolerance):
    # librosa.cqt is multi-rate (octave-wise downsampling, sparsified FFT basis); measured
    # 8.0e-3 on the chirp and 6.2e-3 on the mix.
    x = signal(name)
    want = np.abs(librosa.cqt(x, sr=SR, hop_length=256, fmin=params.FMIN, n_bins=84,
                              bins_per_octave=12))
    got = constant_q.cqt_magnitude(x)
    self.assertEqual(got.shape, (84, 1 + len(x) // 256))
    self.assertEqual(got.shape, want.shape)
    self.assertLessEqual(relative_error(got, want), tolerance)

  def test_equals_full_rate_librosa_cqt(self):
    # With an odd hop librosa never downsamples, and with sparsity=0 it keeps the whole FFT
    # basis: what remains is the definition itself (filters, sqrt(L) scale, centring), so the
    # two agree to 4e-5 (librosa's one-sided spectrum drops the filters' tiny negative side).
    x = chirp(1.5, 40.0, 4000.0)
    want = np.abs(librosa.cqt(x, sr=SR, hop_length=255, fmin=params.FMIN, n_bins=84,
                              bins_per_octave=12, sparsity=0.0))
    got = layer_cqt(x, log=False, hop_length=255)
    self.assertEqual(got.shape, want.shape)
    self.assertLessEqual(relative_error(got, want), 1e-4)

  @parameterized.parameters(9, 45, 81)  # A1 = 55 Hz, A4 = 440 Hz, A7 = 3520 Hz
  def test_pure_tone_peaks_in_its_bin(self, k):
    f = params.FMIN * 2 ** (k / 12)
    x = np.sin(2 * np.pi * f * np.arange(2 * SR) / SR).astype(np.float32)
    magnitude = layer_cqt(x, log=False)[:, 172]  # column 172 = 1.0 s, far from both ends
    self.assertEqual(np.argmax(magnitude), k)
    # sin = (e^{iwt} - e^{-iwt}) / 2i and sum |h_k| = 1 with h_k tuned to f: |C| = sqrt(L_k)/2.
    length = librosa.filters.wavelet_lengths(
        freqs=librosa.cqt_frequencies(n_bins=84, fmin=params.FMIN), sr=SR)[0][k]
    self.assertAllClose(magnitude[k], np.sqrt(length) / 2, rtol=2e-3)

  def test_silence_is_log_eps(self):
    x = np.zeros(SR, np.float32)
    expected = np.full((84, 1 + SR // 256), np.log(params.LOG_EPS), np.float32)
    self.assertAllEqual(constant_q.cqt(x), expected)
    self.assertAllClose(layer_cqt(x), expected, atol=1e-6, rtol=0)

  def test_unknown_length_and_batch(self):
    layer = constant_q.CQT()
    run = tf.function(layer, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    rng = np.random.default_rng(0)
    batch = 0.1 * rng.standard_normal((2, 3000)).astype(np.float32)
    both = run(batch).numpy()
    for b in range(2):
      self.assertAllClose(both[b], run(batch[b:b + 1]).numpy()[0], atol=1e-5, rtol=0)
    for n in (0, 1, 255, 256, 257, 1000):
      self.assertEqual(run(tf.zeros([1, n])).shape, (1, 1 + n // 256, 84))
    self.assertEqual(layer.compute_output_shape([3, 1000]), [3, 4, 84])
    self.assertEqual(layer.compute_output_shape([3, None]).as_list(), [3, None, 84])
    self.assertEmpty(layer.trainable_weights)
    self.assertLen(layer.non_trainable_weights, 7)  # one kernel per octave

  def test_chunks_with_context_equal_the_whole(self):
    layer = constant_q.CQT(log=False)
    context = layer.context_samples // 256  # columns of context on each side
    self.assertEqual(layer.context_samples, 46 * 256)
    x = signal("chirp")
    whole = layer(x[None]).numpy()[0]
    padded = np.pad(x, (context * 256, context * 256 + 256))
    chunks = []
    for a in range(0, whole.shape[0], 200):  # columns [a, a + 200)
      b = min(a + 200, whole.shape[0])
      piece = padded[a * 256:(b + 2 * context) * 256]
      chunks.append(layer(piece[None]).numpy()[0, context:context + b - a])
    self.assertAllClose(np.concatenate(chunks), whole, atol=1e-5, rtol=0)

  def test_config_and_saved_model_round_trip(self):
    layer = constant_q.CQT(log=False, name="cqt")
    config = layer.get_config()
    self.assertEqual(config["hop_length"], 256)
    self.assertFalse(config["log"])
    x = chirp(0.5, 200.0, 2000.0, fade=0.05)[None]
    want = layer(x).numpy()
    clone = tf.keras.layers.deserialize(tf.keras.layers.serialize(layer))
    self.assertIsInstance(clone, constant_q.CQT)
    self.assertAllClose(clone(x), want, atol=0, rtol=0)
    inputs = tf.keras.Input([None])
    model = tf.keras.Model(inputs, layer(inputs))
    directory = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, directory)
    path = os.path.join(directory, "model")
    model.save(path)
    restored = tf.keras.models.load_model(path)
    self.assertIsInstance(restored.layers[-1], constant_q.CQT)
    self.assertAllClose(restored(x), want, atol=1e-6, rtol=0)

  def test_other_sample_rates_are_resampled_to_44k(self):
    x = signal("chirp")
    x22 = librosa.resample(x, orig_sr=SR, target_sr=22050, res_type="soxr_hq")
    got = constant_q.cqt(x22, sample_rate=22050)
    self.assertEqual(got.shape, (84, 1 + (2 * len(x22)) // 256))

  def test_rejects_multichannel_and_nan(self):
    with self.assertRaisesRegex(errors.InputError, "mono waveform"):
      constant_q.cqt(np.zeros((2, 100)))
    with self.assertRaisesRegex(errors.InputError, "NaN"):
      constant_q.cqt(np.array([0.0, np.nan]))


# ----------------------------------------------------------------------------------------
# Decoding.
# ----------------------------------------------------------------------------------------

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg(*arguments):
  """Runs the bundled ffmpeg; False if it failed (e.g. an encoder is missing)."""
  result = subprocess.run([FFMPEG, "-y", "-nostdin", "-loglevel", "error", *arguments],
                          capture_output=True, check=False)
  return result.returncode == 0


def tone(seconds, rate, frequency=440.0, amplitude=0.3):
  return (amplitude * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate))


def assert_is_tone(y, seconds, frequency=440.0, amplitude=0.3, exact=True):
  """y is the tone at 44.1 kHz: its length, its frequency and, when `exact`, its samples."""
  assert y.dtype == np.float32 and y.ndim == 1
  if exact:
    assert len(y) == int(seconds * SR)
    interior = slice(1000, -1000)  # away from the resampler's edges
    np.testing.assert_allclose(y[interior], tone(seconds, SR, frequency, amplitude)[interior],
                               atol=2e-3)
  else:  # lossy codecs: encoder delay and padding, but the same tone
    assert abs(len(y) - seconds * SR) < 0.1 * SR
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * SR / len(y) - frequency) < 2.0
    rms = np.sqrt(np.mean(y[len(y) // 4:-len(y) // 4] ** 2))
    assert abs(rms - amplitude / np.sqrt(2)) < 0.1 * amplitude


def test_wav_16bit_8khz_mono_is_resampled(tmp_path):
  path = str(tmp_path / "a.wav")
  soundfile.write(path, tone(1.0, 8000), 8000, subtype="PCM_16")
  assert_is_tone(decode.load_waveform(path), 1.0)


def test_wav_96khz_stereo_float_is_averaged(tmp_path):
  path = str(tmp_path / "a.wav")
  x = tone(1.0, 96000)
  soundfile.write(path, np.stack([x, -0.5 * x], 1), 96000, subtype="FLOAT")
  assert_is_tone(decode.load_waveform(path), 1.0, amplitude=0.25 * 0.3)  # (1 - 0.5) / 2


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_24", "PCM_32", "DOUBLE"])
def test_wav_subtypes(tmp_path, subtype):
  # 32-bit integer PCM is misread by tensorflow-io and 64-bit float unsupported: the
  # loader must use its fallbacks and still return the right samples.
  path = str(tmp_path / "a.wav")
  soundfile.write(path, tone(1.0, SR), SR, subtype=subtype)
  y = decode.load_waveform(path)
  atol = 1e-2 if subtype == "PCM_U8" else 1e-6
  np.testing.assert_allclose(y, tone(1.0, SR), atol=atol)


@pytest.mark.parametrize("extension,rate,kwargs,exact", [
    ("flac", 48000, dict(subtype="PCM_24"), True),
    ("ogg", SR, dict(format="OGG", subtype="VORBIS"), False),
])
def test_flac_and_ogg(tmp_path, extension, rate, kwargs, exact):
  path = str(tmp_path / f"a.{extension}")
  x = tone(1.0, rate)
  soundfile.write(path, np.stack([x, x], 1), rate, **kwargs)
  assert_is_tone(decode.load_waveform(path), 1.0, exact=exact)


@pytest.mark.parametrize("name,arguments", [
    ("a.mp3", ["-c:a", "libmp3lame"]),
    ("a.m4a", ["-c:a", "aac"]),
    ("a.mp4", ["-f", "lavfi", "-i", "color=c=blue:s=64x64:d=1", "-shortest", "-c:v",
               "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"]),
])
def test_compressed_formats_through_ffmpeg(tmp_path, name, arguments):
  source = str(tmp_path / "source.wav")
  soundfile.write(source, tone(1.0, SR), SR, subtype="PCM_16")
  path = str(tmp_path / name)
  if not ffmpeg("-i", source, *arguments, path):
    pytest.skip(f"the bundled ffmpeg cannot encode {name}")
  assert_is_tone(decode.load_waveform(path), 1.0, exact=False)


@pytest.mark.parametrize("decoder", ["soundfile", "tfio", "ffmpeg"])
@pytest.mark.parametrize("rate", [SR, 48000])
def test_streamed_decoding_equals_one_shot(tmp_path, monkeypatch, decoder, rate):
  # Blocks of 1000 frames (the real ones are 2^20): downmixing and soxr_hq resampling block
  # by block must give what one pass over the whole stereo file gives.
  monkeypatch.setattr(decode, "_BLOCK_FRAMES", 1000)
  rng = np.random.default_rng(0)
  stereo = (0.3 * rng.standard_normal((int(0.5 * rate) + 123, 2))).astype(np.float32)
  path = str(tmp_path / "a.wav")
  soundfile.write(path, stereo, rate, subtype="FLOAT")
  got_rate, blocks = getattr(decode, "_decode_" + decoder)(path)
  assert got_rate == rate
  got = decode._mono(path, rate, SR, next(blocks), blocks)  # pylint: disable=protected-access
  want = stereo.mean(axis=1, dtype=np.float64).astype(np.float32)
  if rate != SR:
    want = librosa.resample(want, orig_sr=rate, target_sr=SR, res_type="soxr_hq")
  assert got.dtype == np.float32 and got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_fixture_video_audio_track():
  if not os.path.exists(VIDEO):
    pytest.skip(f"{VIDEO} is absent (shared fixtures not installed)")
  y = decode.load_waveform(VIDEO)
  assert y.dtype == np.float32 and y.ndim == 1
  assert 5 * SR < len(y) < 60 * SR  # a short clip of real music
  assert np.all(np.isfinite(y)) and 0.001 < np.sqrt(np.mean(y ** 2)) and np.abs(y).max() <= 1


def test_silence_is_valid(tmp_path):
  path = str(tmp_path / "silence.wav")
  soundfile.write(path, np.zeros(10 * SR), SR, subtype="PCM_16")
  y = decode.load_waveform(path)
  assert y.shape == (10 * SR,) and not y.any()


def bad_input(tmp_path, kind):
  """Writes one kind of bad input file and returns its path."""
  good = str(tmp_path / "good.wav")
  soundfile.write(good, tone(1.0, SR), SR, subtype="PCM_16")
  with open(good, "rb") as f:
    data = f.read()
  path = str(tmp_path / "bad.wav")
  if kind == "missing":
    return str(tmp_path / "missing.wav")
  if kind == "directory":
    return str(tmp_path)
  if kind == "text":
    with open(path, "w") as f:
      f.write("this is a text file, not audio\n" * 20)
  elif kind == "empty":
    open(path, "wb").close()
  elif kind == "cut_header":
    with open(path, "wb") as f:
      f.write(data[:30])
  elif kind == "cut_data":
    with open(path, "wb") as f:
      f.write(data[:44 + 10])  # the header and 5 of the 44100 samples it declares
  elif kind == "zero_length":
    soundfile.write(path, np.zeros(0), SR, subtype="PCM_16")
  elif kind == "nan":
    soundfile.write(path, np.array([0.1, np.nan, np.inf] * 100, np.float32), SR,
                    subtype="FLOAT")
  elif kind == "no_audio_track":
    path = str(tmp_path / "silent_film.mp4")
    assert ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64:d=1", "-an", "-c:v", "libx264",
                  "-pix_fmt", "yuv420p", path)
  return path


@pytest.mark.parametrize("kind,message", [
    ("missing", "not found"),
    ("directory", "is a directory"),
    ("text", "is not an audio file"),
    ("empty", "is empty"),
    ("cut_header", "truncated or corrupt"),
    ("cut_data", "is truncated"),
    ("zero_length", "no audio samples"),
    ("nan", "NaN or infinite"),
    ("no_audio_track", "no audio track"),
])
def test_bad_inputs_raise_input_error(tmp_path, kind, message):
  path = bad_input(tmp_path, kind)
  with pytest.raises(errors.InputError, match=message) as caught:
    decode.load_waveform(path)
  assert "\n" not in str(caught.value)  # one line, as the CLIs print it


# ----------------------------------------------------------------------------------------
# Decoding inside a TensorFlow graph.
# ----------------------------------------------------------------------------------------


def encoded_files(directory):
  """(path, format) of small stereo files in every format and sample type the graph reads."""
  x = tone(0.5, 22050)
  stereo = np.stack([x, 0.5 * x], 1)
  files = []
  for subtype in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"):
    files.append((os.path.join(directory, f"{subtype}.wav"), "wav", dict(subtype=subtype)))
  files.append((os.path.join(directory, "a.flac"), "flac", dict(subtype="PCM_24")))
  files.append((os.path.join(directory, "a.ogg"), "ogg", dict(format="OGG",
                                                               subtype="VORBIS")))
  out = []
  for path, file_format, kwargs in files:
    soundfile.write(path, stereo, 22050, **kwargs)
    out.append((path, file_format))
  mp3 = os.path.join(directory, "a.mp3")
  if ffmpeg("-i", out[1][0], "-c:a", "libmp3lame", mp3):  # with an ID3 tag in front
    out.append((mp3, "mp3"))
  return out


def test_decode_waveform_tf_equals_load_waveform(tmp_path):
  for path, file_format in encoded_files(str(tmp_path)):
    contents = tf.io.read_file(path)
    waveform, rate = decode.decode_waveform_tf(contents, file_format)
    assert waveform.dtype == tf.float32 and waveform.shape[1] == 2, path
    assert int(rate) == 22050, path
    mono = tf.reduce_mean(waveform, axis=1).numpy()
    np.testing.assert_allclose(mono, decode.load_waveform(path, sample_rate=22050),
                               atol=1e-6, err_msg=path)


def test_decode_waveform_tf_in_tf_data_with_resampling(tmp_path):
  # Inside Dataset.map (graph mode), mono at 44.1 kHz; the delay-compensated tensorflow-io
  # resampler lands within 1e-3 of load_waveform's soxr_hq.
  files = encoded_files(str(tmp_path))
  for path, file_format in (files[1], files[5]):  # 16-bit WAV and 24-bit FLAC at 22.05 kHz
    dataset = tf.data.Dataset.from_tensors(tf.io.read_file(path)).map(
        lambda c, f=file_format: decode.decode_waveform_tf(c, f, mono=True, sample_rate=SR))
    (waveform, rate), = list(dataset)
    assert int(rate) == SR and waveform.shape[1] == 1
    want = decode.load_waveform(path)
    assert abs(waveform.shape[0] - len(want)) <= 1
    n = min(len(want), waveform.shape[0])
    np.testing.assert_allclose(waveform.numpy()[100:n - 100, 0], want[100:n - 100], atol=1e-3)


def test_decode_waveform_tf_rejects_other_formats():
  with pytest.raises(errors.InputError, match="supports wav"):
    decode.decode_waveform_tf(tf.constant(b""), "m4a")


def _harmonic_tone(midi, seconds=2.0, partials=4, fade=0.3):
  """A steady tone with raised-cosine fades (no onset click to smear over the CQT)."""
  t = np.arange(int(seconds * params.SAMPLE_RATE)) / params.SAMPLE_RATE
  f0 = librosa.midi_to_hz(midi)
  envelope = np.clip(np.minimum(t, seconds - t) / fade, 0, 1)
  envelope = 0.5 - 0.5 * np.cos(np.pi * envelope)
  return envelope * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, partials + 1)) * 0.2


@pytest.mark.parametrize("semitones", [3, -2])
def test_pitch_shift_equals_the_transposed_tone(semitones):
  """Shifting the CQT windows of a tone gives those of the tone transposed (the sign too)."""
  from apvg_tf.audio import augment, framing  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  mean, std = rng.normal(-3, 1, 84), rng.uniform(0.5, 2, 84)
  def log_windows(midi):  # Frames whose windows (and filters) lie in the steady tone: [10, 84, 87].
    return framing.frame_windows(constant_q.cqt(_harmonic_tone(midi)), 30.0, 60)[25:35]
  def windows(midi):
    return ((log_windows(midi) - mean[:, None]) / std[:, None]).astype(np.float32)
  low = 48 if semitones > 0 else 52
  shifted = augment.pitch_shift(windows(low)[None], [semitones], mean, std).numpy()[0]
  transposed = windows(low + semitones)
  # Unshifted, the two tones differ by several normalised units around their partials.
  assert np.abs(windows(low) - transposed).max() > 3
  # Compared where the transposed tone sounds (within 30 dB of its peak; in the troughs
  # between partials, 45 dB down, the filters' leakage does not transpose exactly), in
  # log-magnitude units.
  error = np.abs(shifted - transposed) * std[:, None]
  sounding = log_windows(low + semitones) > log_windows(low + semitones).max() - 3.45
  assert sounding.sum() > 1000
  assert np.percentile(error[sounding], 99) < 0.25, np.percentile(error[sounding], 99)


def test_pitch_shift_round_trip_silence_and_padding():
  from apvg_tf.audio import augment  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  mean, std = rng.normal(-3, 1, 84), rng.uniform(0.5, 2, 84)
  audio = rng.normal(size=(2, 3, 84, 87)).astype(np.float32)
  audio[:, :, :, :5] = 0.0  # Columns outside the clip: the pipeline's zeros.
  up = augment.pitch_shift(audio, [2, 0], mean, std).numpy()
  np.testing.assert_allclose(up[1], audio[1], atol=1e-5)  # A shift of 0 changes nothing.
  back = augment.pitch_shift(up, [-2, 0], mean, std).numpy()
  np.testing.assert_allclose(back[0, :, :82], audio[0, :, :82], atol=1e-4)
  silence = (np.log(params.LOG_EPS) - mean[:2]) / std[:2]
  np.testing.assert_allclose(up[0, 0, :2, 10], silence, rtol=1e-5)  # Moved in: silence.
  assert np.all(up[:, :, :, :5] == 0)  # Padding stays padding.


@pytest.mark.parametrize("instrument,side,other", [("cello", "left", "right"),
                                                    ("trombone", "right", "left")])
def test_mask_pitch_arms_only_on_shifted_examples(instrument, side, other):
  """Only the arm that follows the pitch (the cello's stopping hand, the trombone's slide)."""
  from apvg_tf import skeleton  # pylint: disable=g-import-not-at-top
  from apvg_tf.audio import augment  # pylint: disable=g-import-not-at-top
  keypoints = np.random.default_rng(2).random((2, 4, 67, 3)).astype(np.float32)
  masked = augment.mask_pitch_arms(keypoints, [True, False], instrument).numpy()
  np.testing.assert_array_equal(masked[..., :2], keypoints[..., :2])
  np.testing.assert_array_equal(masked[1], keypoints[1])
  dropped = masked[0, :, :, 2] == 0
  arm = [skeleton.INDEX[f"{side}_elbow"], skeleton.INDEX[f"{side}_wrist"]] + list(
      range(skeleton.PARTS[f"{side}_hand"].start, skeleton.PARTS[f"{side}_hand"].stop))
  assert dropped[:, arm].all() and dropped.sum() == 4 * len(arm)
  assert not dropped[:, skeleton.PARTS[f"{other}_hand"]].any()
  # kept_weight scales the arms of the unshifted examples only.
  weighted = augment.mask_pitch_arms(keypoints, [True, False], instrument, kept_weight=2.0)
  expected = keypoints[1, :, :, 2].copy()
  expected[:, arm] *= 2.0
  np.testing.assert_allclose(weighted.numpy()[1, :, :, 2], expected, rtol=1e-6)
  np.testing.assert_array_equal(weighted.numpy()[0], masked[0])


@pytest.mark.parametrize("rate,lookahead", [(0.8, 0), (1.0, 0), (1.23, 0), (1.23, 4)])
def test_time_stretch_reads_the_clip_at_the_new_tempo(rate, lookahead):
  """Windows and keypoints of a stretched window equal a NumPy reading of the whole clip's CQT
  at source time t * rate (linear interpolation); frames that would read past the columns the
  windows hold, or hear past the last source frame, are not scored; rate 1 is the identity."""
  from apvg_tf.audio import augment, framing  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  fps, start, num_frames = 30.0, 7, 40
  clip_cqt = rng.normal(size=(84, 400)).astype(np.float32)
  audio = framing.frame_windows(clip_cqt, fps, num_frames, first_frame=start)  # [T, 84, 87]
  keypoints = rng.random((num_frames, 67, 3)).astype(np.float32)
  out_audio, out_keypoints = augment.time_stretch(audio[None], keypoints[None], [rate], [start],
                                                  fps, lookahead_frames=lookahead)
  out_audio, out_keypoints = out_audio.numpy()[0], out_keypoints.numpy()[0]
  if rate == 1.0:
    np.testing.assert_array_equal(out_audio, audio)
    np.testing.assert_array_equal(out_keypoints, keypoints)
    return
  centers = framing.window_centers(np.arange(start, start + num_frames), fps).astype(float)
  padded = np.concatenate([np.zeros((84, 1)), clip_cqt, np.zeros((84, 1))], 1)  # Zero outside.
  scored = 0
  for t in range(num_frames):
    source = t * rate
    center = np.interp(min(source, num_frames - 1), np.arange(num_frames), centers)
    x = center + (np.arange(87) - 43) * rate
    if ((t + lookahead) * rate > num_frames - 1 + 1e-4 or x[0] < centers[0] - 43 - 1e-3
        or x[-1] > centers[-1] + 43 + 1e-3):
      assert np.all(out_keypoints[t, :, 2] == 0), t  # Not scored.
      continue
    scored += 1
    low, high = int(np.floor(source)), min(int(np.floor(source)) + 1, num_frames - 1)
    confidence = keypoints[low, :, 2] if source == low else np.minimum(
        keypoints[low, :, 2], keypoints[high, :, 2])
    np.testing.assert_allclose(out_keypoints[t, :, 2], confidence, rtol=1e-6)
    np.testing.assert_allclose(out_keypoints[t, :, :2], [
        [np.interp(source, np.arange(num_frames), keypoints[:, k, d]) for d in range(2)]
        for k in range(67)], atol=1e-5)
    expected = np.stack([np.interp(x, np.arange(-1, 401), padded[b]) for b in range(84)])
    np.testing.assert_allclose(out_audio[t], expected, atol=3e-4)  # float32 columns.
  # Rate 1.23 leaves out the first 2 frames (their windows reach before the first one's) and
  # the frames after source time T - 1 - 43 * 0.23 / (columns per frame) or its lookahead.
  assert scored > (0.7 * num_frames / rate) - lookahead, scored
