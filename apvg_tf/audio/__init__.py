"""Audio in: decoding, the constant-Q transform of the paper, and framing per video frame.

Public API (DESIGN.md):
  load_waveform(path, sample_rate=44100) -> float32 [N] mono.
  cqt(waveform, sample_rate=44100) -> float32 [84, M] log-magnitude (NumPy, float64 inside).
  CQT: Keras layer, float32 [B, N] -> [B, M, 84], the same values as `cqt`.
  frame_windows(cqt, fps, num_frames) -> float32 [num_frames, 84, 87].
"""

from apvg_tf.audio.params import (BINS_PER_OCTAVE, FMIN, HOP_LENGTH, LOG_EPS, N_BINS,
                                  SAMPLE_RATE, WINDOW_COLUMNS)
from apvg_tf.audio.framing import (frame_windows, frame_windows_tf, num_cqt_columns,
                                   num_video_frames, window_centers, window_centers_tf)
from apvg_tf.audio.decode import load_waveform, decode_waveform_tf
from apvg_tf.audio.constant_q import CQT, cqt, cqt_magnitude, normalize_cqt
