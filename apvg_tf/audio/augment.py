"""Pitch and tempo augmentation of the KP's training windows: more music from the same data.

Pitch (`pitch_shift`). With 12 bins per octave, transposing music by k semitones moves its
constant-Q transform by k bins: bin b of the shifted CQT is bin b - k of the original. The
windows the KP reads are normalised per bin with the dataset's statistics, so a shift undoes
the normalisation, moves the log-magnitudes and normalises again; bins moved in from outside
the 84 hold silence (log(LOG_EPS)). Columns outside the clip, which the pipeline leaves at 0
(the mean, as generation pads them), stay 0.

Why it is valid for the KP (measured on the virtual cellist,
experiments/results/khp_augmentation.md; tests/test_synth.py checks it): transposing a piece by 1 to
5 semitones moves the bow hand by 0.003-0.007 on average (normalised units; its test error is
about 0.08) and no point outside the left arm by more than 0.008, while the stopping arm moves
by 0.03-0.06. So the shifted windows train the bow and the body on music the model has not
heard, and the left arm's loss is masked for them (`pitch_arms`: the arms that follow the
pitch on each instrument), or, with the KP's arm path, that path hears the untransposed ones.

Tempo (`time_stretch`). The music and the motion of a window are played faster or slower
together: output frame t shows source time t * rate, its keypoints interpolated between the
two nearest frames and its audio window read from the CQT columns around that time, spaced
`rate` columns apart (the windows of consecutive frames overlap, so together they hold the
columns from the first frame's window to the last one's; frames whose stretched window
reaches beyond are not scored). Every keypoint keeps its label; what a tempo change does not
preserve is how much bow a real player would use, so the rate stays within about +-25%.
"""

import numpy as np
import tensorflow as tf

from apvg_tf import instruments, skeleton
from apvg_tf.audio import framing, params


def pitch_arms(instrument):
  """Indices of the keypoints a transposition moves on `instrument`: int32 [K].

  The hands of `instruments.pitch_hands` (the cello's left, the trombone's slide hand) with
  their elbows and wrists. Their confidence is set to 0 on pitch-shifted examples, so
  neither eq. (2) nor eq. (3) trains them there.
  """
  return np.array(skeleton.arm_points(instruments.pitch_hands(instrument)), np.int32)


def pitch_shift(audio, semitones, cqt_mean, cqt_std):
  """Transposes normalised CQT windows by a whole number of semitones per example.

  Args:
    audio: float32 [B, T, 84, W], per-frame windows normalised as `data.normalize_cqt`.
    semitones: int32 [B], the shift of each example (positive: higher).
    cqt_mean: float [84], the dataset's per-bin log-CQT mean (manifest "cqt_mean").
    cqt_std: float [84], its per-bin standard deviation (manifest "cqt_std").

  Returns:
    float32 [B, T, 84, W]: example i transposed by semitones[i] and normalised again.
  """
  if params.BINS_PER_OCTAVE != 12:
    raise ValueError("pitch_shift assumes one CQT bin per semitone")
  audio = tf.cast(audio, tf.float32)
  semitones = tf.cast(semitones, tf.int32)
  mean = tf.constant(np.asarray(cqt_mean, np.float32)[:, None])  # [84, 1]
  std = tf.constant(np.asarray(cqt_std, np.float32)[:, None])
  log_magnitude = audio * std + mean
  bins = tf.range(params.N_BINS, dtype=tf.int32)[None, :] - semitones[:, None]
  inside = (bins >= 0) & (bins < params.N_BINS)  # [B, 84]
  moved = tf.gather(log_magnitude, tf.clip_by_value(bins, 0, params.N_BINS - 1), axis=2,
                    batch_dims=1)
  silence = tf.cast(np.log(params.LOG_EPS), tf.float32)
  moved = tf.where(inside[:, None, :, None], moved, silence)
  shifted = (moved - mean) / std
  padding = tf.reduce_all(tf.equal(audio, 0.0), axis=2, keepdims=True)  # [B, T, 1, W]
  shifted = tf.where(padding, tf.zeros_like(shifted), shifted)
  # Unshifted examples come back bit for bit (the round trip through log-magnitudes would not).
  return tf.where(tf.equal(semitones, 0)[:, None, None, None], audio, shifted)


def mask_pitch_arms(keypoints, shifted, instrument, kept_weight=1.0):
  """Masks the arms that follow the pitch (`pitch_arms`) on shifted examples.

  Args:
    keypoints: float32 [B, T, 67, 3].
    shifted: bool [B], which examples were transposed.
    instrument: the dataset's instrument.
    kept_weight: the arms' confidence is multiplied by this on unshifted examples. With
      1 / (1 - p), p the probability of a shift, the arms' expected weight per example stays
      what it is without augmentation.

  Returns:
    float32 [B, T, 67, 3].
  """
  arm = np.zeros([skeleton.NUM_KEYPOINTS], bool)
  arm[pitch_arms(instrument)] = True
  scale = tf.where(tf.convert_to_tensor(shifted), 0.0, float(kept_weight))  # [B]
  weight = tf.where(tf.constant(arm)[None, :], scale[:, None], 1.0)  # [B, 67]
  confidence = keypoints[..., 2] * weight[:, None, :]
  return tf.concat([keypoints[..., :2], confidence[..., None]], -1)


def time_stretch(audio, keypoints, rates, start_frames, fps, sample_rate=params.SAMPLE_RATE,
                 hop_length=params.HOP_LENGTH, lookahead_frames=0):
  """Plays each window of frames at its own tempo; the number of frames stays T.

  Args:
    audio: float32 [B, T, 84, W], the per-frame windows of frames start .. start + T - 1 of a
      clip (`data.expand_audio`).
    keypoints: float32 [B, T, 67, 3].
    rates: float32 [B]: output frame t shows source time t * rate (rate > 1: faster). Output
      frames whose audio window reaches past the columns the input windows hold (with
      rate > 1: the first frames, and those near or past the last source frame) get
      confidence 0, so no loss scores them.
    start_frames: int [B], the clip frame of each window's first frame (window centres are
      computed from it exactly as `framing.window_centers_tf` does).
    fps: the dataset's frame rate.
    sample_rate: audio sample rate.
    hop_length: CQT hop.
    lookahead_frames: D, the KP's lookahead: frame t is scored only if the audio of frame
      t + D is still read from the source.

  Returns:
    (audio float32 [B, T, 84, W], keypoints float32 [B, T, 67, 3]). With rate 1 both equal
    the input.
  """
  audio = tf.cast(audio, tf.float32)
  keypoints = tf.cast(keypoints, tf.float32)
  rates = tf.cast(rates, tf.float32)
  num_frames = tf.shape(audio)[1]
  width = audio.shape[-1]
  half = width // 2
  frames = (tf.cast(start_frames, tf.int64)[:, None]
            + tf.range(num_frames, dtype=tf.int64)[None, :])  # [B, T]
  centers = framing.window_centers_tf(frames, fps, sample_rate, hop_length)  # [B, T] int64
  # Relative to the first frame's centre, so float32 keeps sub-column precision in long clips.
  centers = tf.cast(centers - centers[:, :1], tf.float32)
  last = tf.cast(num_frames - 1, tf.float32)
  source = tf.cast(tf.range(num_frames), tf.float32)[None, :] * rates[:, None]  # [B, T]
  heard = source + float(lookahead_frames) * rates[:, None]  # The last audio frame t hears.
  valid = heard <= last + 1e-4
  source = tf.minimum(source, last)
  f0 = tf.cast(tf.floor(source), tf.int32)
  f1 = tf.minimum(f0 + 1, num_frames - 1)
  w = source - tf.cast(f0, tf.float32)  # [B, T]

  def lerp(values, index0, index1, weight):  # values [B, T, ...], index/weight [B, N].
    a, b = tf.gather(values, index0, batch_dims=1), tf.gather(values, index1, batch_dims=1)
    weight = tf.reshape(weight, tf.concat([tf.shape(weight), tf.ones([tf.rank(a) - 2],
                                                                      tf.int32)], 0))
    return a + weight * (b - a)

  coords = lerp(keypoints[..., :2], f0, f1, w)
  # Between two frames a point counts only as much as its less certain end.
  c0 = tf.gather(keypoints[..., 2], f0, batch_dims=1)
  confidence = tf.where((w > 0)[..., None],
                        tf.minimum(c0, tf.gather(keypoints[..., 2], f1, batch_dims=1)), c0)
  # Output column j of frame t reads the clip's CQT at column x (fractional), linearly.
  center = lerp(centers, f0, f1, w)  # [B, T]
  # The windows hold columns -half .. centers[-1] + half; a frame whose window reaches
  # outside would read repeated edge columns, so it is not scored.
  reach = half * rates[:, None]
  valid &= (center - reach >= -half - 1e-3) & (center + reach <= centers[:, -1:] + half + 1e-3)
  confidence = tf.where(valid[..., None], confidence, 0.0)
  offsets = tf.cast(tf.range(width) - half, tf.float32)  # [W]
  x = center[:, :, None] + offsets[None, None, :] * rates[:, None, None]  # [B, T, W]
  x = tf.reshape(x, [tf.shape(x)[0], -1])  # [B, T * W]
  columns = tf.transpose(audio, [0, 1, 3, 2])  # [B, T, W, 84]
  ratio = float(sample_rate) / (float(fps) * hop_length)  # Columns per frame.

  def column(m):  # Integer columns m [B, N] (from the first centre) -> [B, N, 84].
    frame = tf.clip_by_value(tf.cast(tf.round(m / ratio), tf.int32), 0, num_frames - 1)
    j = tf.cast(m - tf.gather(centers, frame, batch_dims=1), tf.int32) + half
    index = tf.stack([frame, tf.clip_by_value(j, 0, width - 1)], -1)  # [B, N, 2]
    return tf.gather_nd(columns, index, batch_dims=1)

  x0 = tf.floor(x)
  a = (x - x0)[..., None]
  values = column(x0) * (1.0 - a) + column(x0 + 1.0) * a  # [B, T * W, 84]
  values = tf.reshape(values, tf.shape(columns))
  return (tf.transpose(values, [0, 1, 3, 2]),
          tf.concat([coords, confidence[..., None]], -1))
