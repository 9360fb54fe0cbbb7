"""The audio feature settings of the paper (Sec. IV-A), shared by every module.

44.1 kHz mono, constant-Q transform with 84 bins (7 octaves of 12 bins from C1), hop 256
samples, and an 87-column window (about 0.5 s) of CQT columns per video frame.
"""

SAMPLE_RATE = 44100
HOP_LENGTH = 256
N_BINS = 84
BINS_PER_OCTAVE = 12
FMIN = 32.70319566257483  # C1 in Hz (librosa.note_to_hz("C1")).
WINDOW_COLUMNS = 87
# Log-magnitude is log(|C| + LOG_EPS): the floor keeps silence finite (log(1e-5) = -11.5)
# while staying below the quietest bins of real recordings (|C| ~ 1e-4 at -80 dBFS).
LOG_EPS = 1e-5
