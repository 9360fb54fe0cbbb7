"""The audio of the virtual performer: FluidSynth with the GM soundfont, or a built-in synth.

Two back-ends turn a Piece into a mono float32 waveform at 44.1 kHz of exactly
round(piece.duration * 44100) samples:

- "fluidsynth": the `fluidsynth` program renders, through the General MIDI soundfont of the
  Debian package `fluid-soundfont-gm` (cello is GM program 43, trombone 58), a MIDI file
  written with pretty_midi in which every note stands alone; each rendered note then gets
  the player's envelope (`_note_envelope`) and is laid on the piece's timeline. Vibrato is
  written as pitch bends following `music.vibrato`, so the audio wavers exactly when and as
  fast as the cellist's hand shakes.
- "harmonic": an additive synthesizer (bowed string or brass spectrum, the same envelope,
  vibrato, bow or breath noise), used when FluidSynth or the soundfont is missing.

Both add a quiet room tone, and both are deterministic: FluidSynth renders offline with
reverb and chorus off, and the noise comes from generators seeded by the seed and piece.
"""

import os
import shutil
import subprocess
import tempfile

import numpy as np

from apvg_tf.audio import params
from apvg_tf.errors import InputError
from apvg_tf.synth import music

SOUNDFONT_PATHS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2")
BACKENDS = ("fluidsynth", "harmonic")
ROOM_TONE_RMS = 0.002  # About -54 dBFS of background noise.
# Seconds from a note-on to the onset that librosa's detector (default settings, hop 512)
# reports, on either back-end: the attack takes that long to rise. Measured on generated
# pieces, the median is 24-34 ms by back-end and instrument (tests/test_synth.py measures
# it again). Motion events stay at the note-on, where the bow turns; the sound follows.
ONSET_LATENCY = 0.03


def find_soundfont():
  """Path of the General MIDI soundfont, or None if it is not installed."""
  for path in SOUNDFONT_PATHS:
    if os.path.isfile(path):
      return path
  return None


def fluidsynth_available():
  """True when both the `fluidsynth` program and the GM soundfont are installed."""
  return shutil.which("fluidsynth") is not None and find_soundfont() is not None


def choose_backend(requested="auto"):
  """Resolves "auto" to "fluidsynth" when installed, else "harmonic"; checks explicit names.

  Raises:
    InputError: unknown name, or "fluidsynth" asked for but not installed.
  """
  if requested == "auto":
    return "fluidsynth" if fluidsynth_available() else "harmonic"
  if requested not in BACKENDS:
    raise InputError(f"unknown audio back-end {requested!r}; use auto, fluidsynth or harmonic")
  if requested == "fluidsynth" and not fluidsynth_available():
    raise InputError("the fluidsynth audio back-end needs the programs of the Debian packages "
                     "fluidsynth and fluid-soundfont-gm (`make setup` installs them as root); "
                     "use --audio_backend=harmonic or auto")
  return requested


def render_audio(piece, instrument, backend, seed=0, sample_rate=params.SAMPLE_RATE):
  """Renders a piece to a mono waveform.

  Args:
    piece: a music.Piece.
    instrument: "cello" or "trombone".
    backend: "fluidsynth" or "harmonic" (resolve "auto" with `choose_backend` first).
    seed: seeds the noise of the built-in synth.
    sample_rate: Hz.

  Returns:
    float32 [round(piece.duration * sample_rate)] in [-1, 1].
  """
  num_samples = int(round(piece.duration * sample_rate))
  if backend == "fluidsynth":
    audio = _render_fluidsynth(piece, instrument, sample_rate)
  elif backend == "harmonic":
    audio = _render_harmonic(piece, instrument, seed, sample_rate)
  else:
    raise InputError(f"unknown audio back-end {backend!r}")
  out = np.zeros(num_samples, np.float32)
  out[:min(len(audio), num_samples)] = audio[:num_samples]
  out += _room_tone(num_samples, seed, piece.piece_id)
  return np.clip(out, -1.0, 1.0)


def _room_tone(num_samples, seed, piece_id, level=ROOM_TONE_RMS):
  """Quiet low-passed noise, as every recording room has: rests are not digital silence.

  Without it, the first note after a rest rises from -inf dB, which no microphone records,
  and its log-spectral jump dwarfs every other onset of the piece.
  """
  rng = np.random.default_rng([int(seed)] + list(piece_id.encode()) + [5])
  noise = rng.standard_normal(num_samples + 64)
  noise = np.convolve(noise, np.hanning(16), mode="same")[32:32 + num_samples]
  return (level * noise / (np.std(noise) + 1e-12)).astype(np.float32)


# --------------------------------------------------------------------------- FluidSynth


_GAP = 0.6  # Seconds of silence between the isolated notes of the rendering pass.
_RELEASE = 0.15  # Seconds of a note's release kept after its end.
_MAX_LEAD = 2205  # Samples (50 ms) of silence at most trimmed from a sample's start.


def _isolated_notes_midi(piece, instrument, path):
  """Writes every note of the piece alone, `_GAP` apart, with its vibrato as pitch bends.

  Returns:
    list of the start time of each note in the written file.
  """
  import pretty_midi  # pylint: disable=g-import-not-at-top
  spec = music.instrument_spec(instrument)
  midi = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
  track = pretty_midi.Instrument(program=spec.gm_program - 1, name=instrument)
  starts = []
  t = 0.2
  for note in piece.notes:
    starts.append(t)
    track.notes.append(pretty_midi.Note(int(note.velocity), int(note.pitch), t,
                                        t + note.duration))
    rate, depth, delay = music.vibrato(note)
    if depth > 0:
      times = np.arange(delay, note.duration, 0.01)
      ramp = np.clip((times - delay) / 0.25, 0, 1)
      semitones = depth * ramp * np.sin(2 * np.pi * rate * (times - delay))
      for time, bend in zip(times, semitones):
        track.pitch_bends.append(pretty_midi.PitchBend(int(round(bend / 2.0 * 8191)),
                                                       float(t + time)))
      track.pitch_bends.append(pretty_midi.PitchBend(0, float(t + note.duration + 0.05)))
    t += note.duration + _RELEASE + _GAP
  midi.instruments.append(track)
  midi.write(path)
  return starts


def _smoothed_rms(x, width):
  kernel = np.ones(width) / width
  return np.sqrt(np.convolve(x.astype(np.float64) ** 2, kernel, mode="same"))


def _render_fluidsynth(piece, instrument, sample_rate):
  """Renders each note with FluidSynth, then lays the notes on the piece's timeline.

  The GM samples were recorded as single sustained notes: the cello one swells for a third
  of a second. Played back to back they smear every note change, which neither sounds like
  a bow change nor gives an onset. So each note is rendered on its own and given the
  envelope of `_note_envelope` (the sample's timbre, vibrato and noise stay; only its
  slowly varying level is replaced), as a player's bow or tongue shapes every note.
  """
  import soundfile  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory(prefix="apvg_fluidsynth_") as folder:
    midi_path = os.path.join(folder, "notes.mid")
    wav_path = os.path.join(folder, "notes.wav")
    starts = _isolated_notes_midi(piece, instrument, midi_path)
    command = ["fluidsynth", "-ni", "-R", "0", "-C", "0", "-g", "1.0", "-F", wav_path,
               "-r", str(sample_rate), find_soundfont(), midi_path]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not os.path.isfile(wav_path):
      raise RuntimeError(f"fluidsynth failed ({result.returncode}): {result.stderr[-500:]}")
    rendered, rate = soundfile.read(wav_path, dtype="float32", always_2d=True)
  if rate != sample_rate:
    raise RuntimeError(f"fluidsynth wrote {rate} Hz instead of {sample_rate}")
  rendered = rendered.mean(axis=1)
  out = np.zeros(int(round(piece.duration * sample_rate)) + sample_rate, np.float64)
  width = int(0.03 * sample_rate)
  bows = _bow_positions(piece, instrument)
  for note, source_start, bow in zip(piece.notes, starts, bows):
    length = int(round((note.duration + _RELEASE) * sample_rate))
    first = int(round(source_start * sample_rate))
    segment = rendered[first:first + length + _MAX_LEAD]
    segment = np.pad(segment, (0, length + _MAX_LEAD - len(segment)))
    # Some samples begin with up to 25 ms of near-silence: start the note where it sounds.
    quick = _smoothed_rms(segment[:int(0.3 * sample_rate)], int(0.005 * sample_rate))
    lead = min(int(np.argmax(quick > 0.1 * quick.max())), _MAX_LEAD)
    segment = segment[lead:lead + length]
    level = np.maximum(_smoothed_rms(segment, width), 1e-5)
    envelope = _note_envelope(note, instrument, length, sample_rate, bow)
    gain = np.minimum(envelope / level, 30.0)
    begin = int(round(note.start * sample_rate))
    out[begin:begin + length] += (segment * gain)[:len(out) - begin]
  return out.astype(np.float32)


# --------------------------------------------------------------------------- built-in synth


def _harmonic_amplitudes(instrument, f0, loud, sample_rate):
  """Relative amplitudes of harmonics 1..K below 0.45 * sample_rate."""
  k = np.arange(1, 41, dtype=np.float64)
  k = k[k * f0 < min(0.45 * sample_rate, 12000.0)]
  if instrument == "cello":
    # Bowed string: sawtooth-like 1/k, with a body resonance bump near 200-600 Hz.
    amp = 1.0 / k ** (1.15 - 0.25 * loud)
    freq = k * f0
    amp *= 1.0 + 0.8 * np.exp(-((np.log2(freq) - np.log2(350.0)) / 0.9) ** 2)
  else:
    # Brass: the spectrum brightens with loudness (the "blare" of ff).
    amp = k ** 0.6 * np.exp(-k * f0 / (600.0 + 2400.0 * loud ** 1.5))
  return k, amp / np.sqrt(np.sum(amp ** 2))


def _bow_positions(piece, instrument):
  """Per note (bow position at start, at end) for a bowed instrument, else None per note."""
  if instrument != "cello":
    return [None] * len(piece.notes)
  return [tuple(span) for span in music.note_bow_positions(piece.notes)]


def _note_envelope(note, instrument, length, sample_rate, bow=None):
  """RMS level over time of one note, `length` samples from its onset (release included).

  A quick attack (bow bite or tongue), an accent that settles, a sustain set by the
  velocity, and a release after the note's end. Slurred notes start softer. A bowed note's
  level also follows the bow: louder toward the frog (`music.BOW_WEIGHT`).

  Args:
    note: the music.Note.
    instrument: instrument name.
    length: samples, release included.
    sample_rate: Hz.
    bow: (position at the note's start, at its end), 0 frog .. 1 tip, or None (not bowed).

  Returns:
    float64 [length].
  """
  t = np.arange(length) / sample_rate
  loud = note.velocity / 127.0
  attack = (0.03 if instrument == "cello" else 0.015) * (0.6 if note.slur else 1.0)
  env = np.minimum(t / attack, 1.0) ** 2
  env *= 0.75 + 0.25 * np.exp(-np.maximum(t - attack, 0) / 0.12)
  env *= np.clip((note.duration + _RELEASE - t) / _RELEASE, 0, 1)
  if bow is not None:
    position = bow[0] + (bow[1] - bow[0]) * np.clip(t / max(note.duration, 1e-6), 0, 1)
    env *= 1.0 + music.BOW_WEIGHT * (0.5 - position)
  return 0.25 * loud ** 1.5 * env


def _render_harmonic(piece, instrument, seed, sample_rate):
  """Additive synthesis: harmonics with `_note_envelope`, vibrato, and bow or breath noise."""
  # Seeded by the id's bytes (not hash(), which varies per process).
  rng = np.random.default_rng([int(seed)] + list(piece.piece_id.encode()) + [3])
  num_samples = int(round(piece.duration * sample_rate))
  out = np.zeros(num_samples + sample_rate, np.float64)
  for note, bow in zip(piece.notes, _bow_positions(piece, instrument)):
    loud = note.velocity / 127.0
    start = int(round(note.start * sample_rate))
    length = int(round((note.duration + _RELEASE) * sample_rate))
    t = np.arange(length) / sample_rate
    f0 = 440.0 * 2.0 ** ((note.pitch - 69) / 12.0)
    rate, depth, delay = music.vibrato(note)
    semitones = np.zeros_like(t)
    if depth > 0:
      ramp = np.clip((t - delay) / 0.25, 0, 1)
      semitones = depth * ramp * np.sin(2 * np.pi * rate * np.maximum(t - delay, 0))
    phase = 2 * np.pi * np.cumsum(f0 * 2.0 ** (semitones / 12.0)) / sample_rate
    k, amp = _harmonic_amplitudes(instrument, f0, loud, sample_rate)
    offsets = rng.uniform(0, 2 * np.pi, len(k))
    tone = np.zeros_like(t)
    for kk, aa, oo in zip(k, amp, offsets):
      tone += aa * np.sin(kk * phase + oo)
    # Bow hiss or breath: high-passed noise, strongest in the attack, then a steady floor.
    noise = np.diff(np.concatenate([[0.0], rng.standard_normal(length)]))
    noise_env = (0.08 * np.exp(-t / 0.05) + 0.015) * (1.0 if instrument == "cello" else 0.6)
    # The tone has unit RMS (amplitudes are normalised, sines have RMS 1/sqrt(2)).
    envelope = _note_envelope(note, instrument, length, sample_rate, bow) * np.sqrt(2.0)
    out[start:start + length] += envelope * (tone + noise_env * noise)
  return out.astype(np.float32)
