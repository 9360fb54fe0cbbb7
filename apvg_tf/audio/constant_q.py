"""The paper's constant-Q transform: one definition, a Keras layer and its NumPy twin.

Definition (84 bins from C1, 12 bins per octave, hop 256, 44.1 kHz; `params`). Bin k has
centre frequency f_k = FMIN * 2^(k / 12) and librosa's constant-Q wavelet
h_k[d] = w_k[d] * exp(2 pi i f_k d / sr) (Hann window w_k of fractional length L_k, about
17 periods of f_k; `librosa.filters.wavelet(..., filter_scale=1, norm=1)`, so sum |h_k| = 1).
Column m is centred on sample m * hop and computed at full rate:

  C[k, m] = sqrt(L_k) * sum_d h_k[d] * x[m * hop - d],   m = 0 .. M-1,  M = 1 + N // hop,

with x = 0 outside [0, N) (librosa.cqt's default constant padding). The sqrt(L_k) factor is
librosa's own scale: `librosa.cqt` multiplies the L1-normalised wavelet by L_k / n_fft, takes
an n_fft-point FFT (which multiplies a convolution by n_fft) and divides the response by
sqrt(L_k) (`scale=True`). The offset d is the wavelet's own sample index (d = 0 where its
phase is zero), the alignment librosa's centred STFT frames give. So |C| is librosa.cqt
without its multi-rate approximations: with an odd hop (librosa then never downsamples) and
sparsity=0 the two agree to 4e-5 (tests). At hop 256, librosa.cqt (sparsified FFT basis,
octave-by-octave downsampling) is 6.2e-3 away on the URMP fixture and 8.0e-3 on a 4-s C2-C8
sweep (relative Frobenius error of the magnitudes). Fast sweeps through the lowest two
octaves differ more (~1.2e-2): librosa computes those at 344 and 689 Hz, which shifts them
in time by up to half a low-rate sample (64 input samples).

Implementation. Bins are grouped by octave so the low octaves use long kernels (C1: 23,371
taps) and the high ones short kernels (B7: 194 taps). Each group's kernels share one support,
rounded out to whole hops, so the correlation becomes a stride-1 convolution over blocks of
`hop` samples (the block's samples are the channels): one `conv1d` per octave, no framing of
the signal into long overlapping windows, memory linear in N. The NumPy twin (`cqt_magnitude`)
evaluates the same sums in float64 as one matrix product per kernel block.
"""

import collections
import functools

import numpy as np
import tensorflow as tf

from apvg_tf import errors
from apvg_tf.audio import params

# One octave group of filters, in correlation form over hop-sized blocks:
#   C[first_bin + j, m] = sum_i (kernel[i, j] + 1j * kernel[i, num_bins + j])
#                                * x[(m + start_block) * hop + i],   i = 0 .. K-1,
# with K = kernel.shape[0], a multiple of hop.
FilterGroup = collections.namedtuple("FilterGroup",
                                     ["first_bin", "num_bins", "start_block", "kernel"])


@functools.lru_cache(maxsize=8)
def cqt_filter_groups(*, sample_rate=params.SAMPLE_RATE, hop_length=params.HOP_LENGTH,
                      fmin=params.FMIN, n_bins=params.N_BINS,
                      bins_per_octave=params.BINS_PER_OCTAVE):
  """The constant-Q filters of the paper, trimmed and grouped by octave (float64).

  The one place where the filters are made: both `cqt_magnitude` and the `CQT` layer use it.

  Args:
    sample_rate: int, rate of the waveform the filters apply to.
    hop_length: int, samples between CQT columns.
    fmin: float, centre frequency of bin 0 in Hz.
    n_bins: int, number of bins.
    bins_per_octave: int, bins per octave (also the group size).

  Returns:
    Tuple of `FilterGroup`s, lowest frequencies first. `kernel` is a read-only float64 array
    [K, 2 * num_bins]: real parts of the bins' correlation kernels, then imaginary parts,
    already multiplied by sqrt(L_k); K is a multiple of `hop_length`.

  Raises:
    ValueError: if the highest filter would reach above the Nyquist frequency.
  """
  import librosa  # pylint: disable=g-import-not-at-top  (slow import, only needed here)

  freqs = librosa.cqt_frequencies(n_bins=n_bins, fmin=fmin, bins_per_octave=bins_per_octave)
  lengths, cutoff = librosa.filters.wavelet_lengths(freqs=freqs, sr=sample_rate)
  if cutoff > sample_rate / 2:
    raise ValueError(f"CQT filters up to {cutoff:.0f} Hz exceed the Nyquist frequency of "
                     f"sample_rate={sample_rate}; use fewer bins or a higher sample rate.")
  # pad_fft=True centres every filter in an even-length array, so index n_fft // 2 is the
  # wavelet's zero-phase sample d = 0 (as in librosa.cqt's centred STFT frames).
  wavelets, _ = librosa.filters.wavelet(freqs=freqs, sr=sample_rate, filter_scale=1, norm=1,
                                        pad_fft=True, window="hann", dtype=np.complex128)
  centre = wavelets.shape[1] // 2
  groups = []
  for first_bin in range(0, n_bins, bins_per_octave):
    bins = range(first_bin, min(first_bin + bins_per_octave, n_bins))
    # Correlation offset n = -d: sum_d h[d] x[t - d] = sum_n h[-n] x[t + n].
    taps = []
    for k in bins:
      support = np.flatnonzero(wavelets[k])
      offsets = centre - support
      taps.append((offsets, wavelets[k, support] * np.sqrt(lengths[k])))
    lowest = min(int(offsets.min()) for offsets, _ in taps)
    highest = max(int(offsets.max()) for offsets, _ in taps)
    start_block = lowest // hop_length  # floor: the support starts on a block boundary
    num_blocks = -(-(highest + 1 - start_block * hop_length) // hop_length)
    kernel = np.zeros((num_blocks * hop_length, 2 * len(bins)))
    for j, (offsets, values) in enumerate(taps):
      kernel[offsets - start_block * hop_length, j] = values.real
      kernel[offsets - start_block * hop_length, len(bins) + j] = values.imag
    kernel.setflags(write=False)
    groups.append(FilterGroup(first_bin, len(bins), start_block, kernel))
  return tuple(groups)


def _as_mono_44k(waveform, sample_rate):
  """Checks a waveform and brings it to params.SAMPLE_RATE (float64 [N])."""
  waveform = np.asarray(waveform)
  if waveform.ndim != 1:
    raise errors.InputError(
        f"The CQT expects a mono waveform of shape [N], got shape {waveform.shape}; "
        "downmix first (apvg_tf.audio.load_waveform returns mono).")
  if not np.all(np.isfinite(waveform)):
    raise errors.InputError("The waveform contains NaN or infinite samples; the CQT of "
                            "such a signal is undefined. Check how it was decoded.")
  waveform = waveform.astype(np.float64)
  if sample_rate != params.SAMPLE_RATE:
    import librosa  # pylint: disable=g-import-not-at-top
    waveform = librosa.resample(waveform, orig_sr=sample_rate, target_sr=params.SAMPLE_RATE,
                                res_type="soxr_hq")
  return waveform


def cqt_magnitude(waveform, sample_rate=params.SAMPLE_RATE):
  """Linear CQT magnitude |C| (NumPy float64 reference; module docstring has the equation).

  Args:
    waveform: float array [N], mono.
    sample_rate: int, its rate; other rates are resampled to 44.1 kHz first (soxr_hq),
      because the features are always defined at 44.1 kHz.

  Returns:
    float64 array [84, M], M = 1 + N' // 256 where N' is the length at 44.1 kHz.

  Raises:
    InputError: if the waveform is not 1-D or has non-finite samples.
  """
  x = _as_mono_44k(waveform, sample_rate)
  hop = params.HOP_LENGTH
  groups = cqt_filter_groups()
  num_columns = 1 + len(x) // hop
  # Zero blocks before and after the signal, as many as the longest kernels reach.
  left = max(0, -min(g.start_block for g in groups))
  right = max(g.start_block + g.kernel.shape[0] // hop for g in groups)
  num_blocks = num_columns + left + right - 1
  blocks = np.zeros((num_blocks, hop))
  blocks.reshape(-1)[left * hop:left * hop + len(x)] = x
  out = np.empty((params.N_BINS, num_columns))
  for group in groups:
    nb = group.num_bins
    response = np.zeros((num_columns, 2 * nb))
    # sum_i kernel[i] x[(m + start) * hop + i], split into whole blocks: block j of the
    # kernel meets signal block m + start + j (contiguous rows, so BLAS runs at full speed).
    for j, kernel_block in enumerate(group.kernel.reshape(-1, hop, 2 * nb)):
      first = left + group.start_block + j
      response += blocks[first:first + num_columns] @ kernel_block
    out[group.first_bin:group.first_bin + nb] = np.hypot(response[:, :nb], response[:, nb:]).T
  return out


def cqt(waveform, sample_rate=params.SAMPLE_RATE):
  """Log-magnitude CQT of the paper, the NumPy twin of the `CQT` layer.

  Args:
    waveform: float array [N], mono.
    sample_rate: int, its rate (resampled to 44.1 kHz first if different).

  Returns:
    float32 array [84, M] = log(|C| + LOG_EPS), computed in float64; M = 1 + N' // 256.

  Raises:
    InputError: if the waveform is not 1-D or has non-finite samples.
  """
  return np.log(cqt_magnitude(waveform, sample_rate) + params.LOG_EPS).astype(np.float32)


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class CQT(tf.keras.layers.Layer):
  """Constant-Q transform layer: float32 waveforms [B, N] -> [B, M, n_bins].

  Computes C[b, m, k] = sqrt(L_k) * sum_d h_k[d] * x[b, m * hop - d] (module docstring) with
  fixed, non-trainable filters from `cqt_filter_groups`, and returns log(|C| + LOG_EPS)
  (`log=True`) or |C|. M = 1 + N // hop; N may be unknown (None) when traced. The values
  equal `cqt(x)` transposed, up to float32 rounding (relative error ~1e-7).

  Only TensorFlow ops run (pad, reshape, slice, conv1d, sqrt, log): the layer works inside
  tf.function, tf.data, SavedModel and ONNX export (tf2onnx: Pad, Reshape, Slice, Conv).
  Memory is linear in N: at most about ten float32 copies of the input (~100 MB per minute
  of audio). For very long recordings or streaming, call it on chunks: columns
  [a, b) of the whole transform equal columns [c, c + b - a) of the transform of
  x[a * hop - c * hop : b * hop + c * hop] (zeros outside the signal) with
  c * hop = `context_samples` (11,776 samples at the defaults).
  """

  def __init__(self, *, log=True, sample_rate=params.SAMPLE_RATE,
               hop_length=params.HOP_LENGTH, fmin=params.FMIN, n_bins=params.N_BINS,
               bins_per_octave=params.BINS_PER_OCTAVE, **kwargs):
    """Initialises the layer.

    Args:
      log: bool; True returns log(|C| + params.LOG_EPS), False the linear magnitude |C|.
      sample_rate: int, rate of the input waveforms (the paper's features use 44100).
      hop_length: int, samples between columns.
      fmin: float, centre frequency of bin 0 in Hz.
      n_bins: int, number of frequency bins.
      bins_per_octave: int, bins per octave.
      **kwargs: standard Layer arguments (name, ...). dtype defaults to float32, because
        the filters need float32 precision even under a mixed-precision policy.
    """
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    self.log = bool(log)
    self.sample_rate = int(sample_rate)
    self.hop_length = int(hop_length)
    self.fmin = float(fmin)
    self.n_bins = int(n_bins)
    self.bins_per_octave = int(bins_per_octave)
    self._groups = cqt_filter_groups(
        sample_rate=self.sample_rate, hop_length=self.hop_length, fmin=self.fmin,
        n_bins=self.n_bins, bins_per_octave=self.bins_per_octave)
    # Zero blocks needed before the signal (kernels reach back) and after it (forward).
    self._left_blocks = max(0, -min(g.start_block for g in self._groups))
    self._right_blocks = max(
        g.start_block + g.kernel.shape[0] // self.hop_length for g in self._groups)

  @property
  def context_samples(self):
    """Samples of context each side that make a chunk's columns exact (a multiple of hop)."""
    return max(self._left_blocks, self._right_blocks) * self.hop_length

  def build(self, input_shape):
    hop = self.hop_length
    self._kernels = []
    for i, group in enumerate(self._groups):
      # [K, 2nb] -> conv1d filter [K / hop, hop, 2nb]: tap i = block j, in-block sample r.
      kernel = group.kernel.reshape(-1, hop, 2 * group.num_bins).astype(np.float32)
      self._kernels.append(self.add_weight(
          name=f"octave_{i}_kernel", shape=kernel.shape, dtype=tf.float32,
          initializer=tf.keras.initializers.Constant(kernel), trainable=False))
    super().build(input_shape)

  def call(self, waveform):
    """Transforms a batch of waveforms.

    Args:
      waveform: float tensor [B, N] at `sample_rate`; B and N may be unknown.

    Returns:
      float32 tensor [B, M, n_bins], M = 1 + N // hop_length, bins from low to high.
    """
    hop = self.hop_length
    x = tf.cast(waveform, tf.float32)
    batch = tf.shape(x)[0]
    length = tf.shape(x)[1]
    num_columns = 1 + length // hop
    # Blocks of hop samples: column m of a group reads blocks m + start .. m + start + K/hop - 1
    # (start counted from the first zero block).
    num_blocks = num_columns + self._left_blocks + self._right_blocks - 1
    x = tf.pad(x, [[0, 0], [self._left_blocks * hop,
                            num_blocks * hop - length - self._left_blocks * hop]])
    blocks = tf.reshape(x, [batch, num_blocks, hop])
    magnitudes = []
    for group, kernel in zip(self._groups, self._kernels):
      start = group.start_block + self._left_blocks
      span = num_columns + kernel.shape[0] - 1
      response = tf.nn.conv1d(blocks[:, start:start + span], kernel, stride=1,
                              padding="VALID")  # [B, M, 2nb]: real parts, then imaginary
      real, imag = tf.split(response, 2, axis=-1)
      magnitudes.append(tf.sqrt(tf.square(real) + tf.square(imag)))
    magnitude = tf.concat(magnitudes, axis=-1)
    if self.log:
      return tf.math.log(magnitude + params.LOG_EPS)
    return magnitude

  def compute_output_shape(self, input_shape):
    input_shape = tf.TensorShape(input_shape)
    length = input_shape[1]
    columns = None if length is None else 1 + length // self.hop_length
    return tf.TensorShape([input_shape[0], columns, self.n_bins])

  def get_config(self):
    config = super().get_config()
    config.update(log=self.log, sample_rate=self.sample_rate, hop_length=self.hop_length,
                  fmin=self.fmin, n_bins=self.n_bins, bins_per_octave=self.bins_per_octave)
    return config


def normalize_cqt(values, mean, std, bins_axis=-1):
  """(log-CQT - mean) / std per bin, with a dataset's training statistics (TF).

  The one normalisation: the data pipeline, evaluation and the exported model all call it.

  Args:
    values: float [..., 84, ...] log-CQT values, the bins on `bins_axis`.
    mean: float [84], the training set's per-bin mean (manifest "cqt_mean").
    std: float [84], its per-bin standard deviation (manifest "cqt_std").
    bins_axis: -1 for columns [..., 84], -2 for windows [..., 84, 87].

  Returns:
    float32 tensor, the shape of `values`.
  """
  shape = [params.N_BINS] + [1] * (-1 - bins_axis)
  # NumPy made constants here, so inside a trace they are constants of the graph (a captured
  # eager tensor would become an extra input of the ONNX graph). A multiply by the inverse:
  # graph optimisation rewrites a division into exactly this, so eager and graph runs agree.
  mean = tf.constant(np.asarray(mean, np.float32).reshape(shape))
  inv_std = tf.constant((1.0 / np.asarray(std, np.float32)).astype(np.float32).reshape(shape))
  return (tf.convert_to_tensor(values, tf.float32) - mean) * inv_std
