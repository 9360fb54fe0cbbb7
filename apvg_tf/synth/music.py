"""The music of the virtual performer: note sequences, generated or read from MIDI, cut into pieces.

A piece is a monophonic note sequence with its beat grid and phrases, in seconds from the
start of the piece's audio. Pieces are the unit of the dataset's splits. They come either
from a seeded generator (scales, arpeggios, melodic walks, repeated notes, long notes, slurs,
rests, dynamics from pp to ff, tempo changes) or from MIDI files (`read_midi_pieces`).

Everything that sound and motion must agree on lives here: the instrument's range and
General MIDI program, the notes with their slurs, the vibrato schedule (`vibrato`), so that
the left hand of the cellist shakes at the rate the audio wavers, and the bowing
(`bowing`), so that the sound's level follows the bow as it does on a real string.
"""

import dataclasses
import os

import numpy as np

from apvg_tf import instruments
from apvg_tf.errors import InputError

LEAD_IN = 0.6  # Seconds of silence before the first note: the performer sets the bow.
TAIL = 0.8  # Seconds after the last note: the sound rings out, the bow comes off.
MIN_NOTE = 0.06  # Seconds; shorter MIDI notes are lengthened (no body moves faster).


@dataclasses.dataclass(frozen=True)
class InstrumentSpec:
  """What the music needs to know of an instrument.

  Attributes:
    name: "cello" or "trombone".
    gm_program: General MIDI program number, 1-based as printed in the GM table.
    lowest: lowest MIDI pitch the instrument plays.
    highest: highest MIDI pitch.
    comfortable: (low, high) pitches most generated music stays within.
  """
  name: str
  gm_program: int
  lowest: int
  highest: int
  comfortable: tuple


# The instruments the virtual performer plays, with the part of the range (from
# apvg_tf.instruments) that generated music mostly stays in.
_COMFORTABLE = {"cello": (36, 74), "trombone": (40, 70)}
PLAYABLE = tuple(_COMFORTABLE)


def instrument_spec(name):
  """The InstrumentSpec of `name`; raises InputError for an instrument it cannot play."""
  if name not in _COMFORTABLE:
    raise InputError(f"the virtual performer plays {' and '.join(PLAYABLE)}, not {name!r}")
  lowest, highest = instruments.midi_range(name)
  return InstrumentSpec(name, instruments.gm_program(name), lowest, highest,
                        _COMFORTABLE[name])


@dataclasses.dataclass(frozen=True)
class Note:
  """One note of a monophonic line.

  Attributes:
    start: onset in seconds from the start of the piece.
    end: release in seconds (> start).
    pitch: MIDI pitch.
    velocity: MIDI velocity 1-127 (the loudness).
    slur: True if the note is slurred from the previous one (same bow stroke, no tongued
      attack); never True for the first note, after a rest or on a repeated pitch.
    downbeat: True if the note starts on the first beat of a bar.
  """
  start: float
  end: float
  pitch: int
  velocity: int
  slur: bool = False
  downbeat: bool = False

  @property
  def duration(self):
    return self.end - self.start


@dataclasses.dataclass(frozen=True)
class Piece:
  """A piece of music, the unit of the splits.

  Attributes:
    piece_id: e.g. "piece_0003".
    notes: tuple of Note, sorted by start, non-overlapping.
    duration: seconds of audio the piece takes (notes plus lead-in and tail).
    beats: float64 [B] beat times in seconds.
    downbeats: float64 [D] times of the first beat of each bar.
    phrases: tuple of (start, end) seconds, the phrases the body sways with.
    source: where the notes came from ("generated:<seed>:<index>" or "<file>#<track>").
  """
  piece_id: str
  notes: tuple
  duration: float
  beats: np.ndarray
  downbeats: np.ndarray
  phrases: tuple
  source: str


def after_rest(notes, index, gap=0.25):
  """True if note `index` starts the piece or follows a silence of at least `gap` seconds."""
  return index == 0 or notes[index].start - notes[index - 1].end >= gap


def vibrato(note):
  """The vibrato a player puts on `note`: (rate Hz, depth semitones, delay s); depth 0 if none.

  Long notes get vibrato, short ones don't; it starts after a delay, as players start it once
  the note has settled. The sound back-ends and the cellist's left hand both read this.
  """
  if note.duration < 0.45:
    return 0.0, 0.0, 0.0
  loud = note.velocity / 127.0
  return 5.2 + 0.8 * loud, 0.12 + 0.12 * loud, 0.18


# --------------------------------------------------------------------------- bowing

MAX_BOW_SPEED = 2.5  # Bow lengths per second that a lifted bow travels, averaged over a retake.
# How much louder the string sounds at the frog than at the tip: the arm's weight bears on
# the string through a lever that shortens toward the frog, so a down-bow fades and an up-bow
# swells unless the player compensates (never fully). Level factor 1 + BOW_WEIGHT * (0.5 -
# position): +-20 %, about 3.5 dB from frog to tip.
BOW_WEIGHT = 0.4
BOW_RANGE = (0.05, 0.93)  # The part of the bow (0 frog .. 1 tip) a cellist plays with.


def bow_strokes(notes):
  """Bow strokes: (first note index, last note index, direction +1 down / -1 up).

  A stroke is a note and the notes slurred to it. Down-bow after a rest and on the first
  beat of a bar, otherwise the opposite of the previous stroke.
  """
  strokes, direction = [], -1
  k = 0
  while k < len(notes):
    last = k
    while last + 1 < len(notes) and notes[last + 1].slur:
      last += 1
    direction = 1 if (after_rest(notes, k) or notes[k].downbeat) else -direction
    strokes.append((k, last, direction))
    k = last + 1
  return strokes


def strokes_since_rest(notes, times):
  """Bow strokes begun since the last rest at each time, or -1 where no note sounds.

  After a rest the bow is set at the frog (`bowing`), so this count is how many strokes a
  listener must follow to know where the bow is.

  Args:
    notes: list of Note (start, end and slur are read).
    times: float array [T] of times in seconds.

  Returns:
    int64 [T]: 0 during the first stroke after a rest (or the piece's start), 1 during the
    next, ...; -1 at times inside no note.
  """
  times = np.asarray(times, np.float64)
  count = np.full(times.shape, -1, np.int64)
  index = -1
  for first, _, _ in bow_strokes(notes):
    index = 0 if after_rest(notes, first) else index + 1
    count[times >= notes[first].start] = index
  sounding = np.zeros(times.shape, bool)
  for note in notes:
    sounding |= (times >= note.start) & (times < note.end)
  count[~sounding] = -1
  return count


def bowing(notes, lo=BOW_RANGE[0], hi=BOW_RANGE[1]):
  """The cellist's bowing: per stroke its times, where it starts and ends, and any retake.

  The amount of bow grows with loudness and duration. After a rest the bow is set at the
  frog for the down-bow, as far as the rest gives the lifted bow time to travel. When the
  bow has too little left in a stroke's direction, it is lifted and set back first: during
  the rest before the stroke, or in the last moments of the previous stroke, which then
  ends early. The right arm (performer) and the sound (its level follows the bow's position,
  `BOW_WEIGHT`) both read this.

  Returns:
    list of dicts per stroke: first, last (note indices), start, end (s), from, to (bow
    position 0..1 at start and end), direction (+1 down, -1 up), volume (0..1), retake
    ((t0, t1, position) or None).
  """
  plan = []
  p = 0.25
  for first, last, direction in bow_strokes(notes):
    start = notes[first].start
    following = notes[last + 1].start if last + 1 < len(notes) else None
    rest_after = following is None or following - notes[last].end >= 0.25
    end = notes[last].end + 0.05 if rest_after else following
    volume = float(np.mean([notes[i].velocity for i in range(first, last + 1)])) / 127.0
    wanted = float(np.clip((end - start) * (0.35 + 1.0 * volume ** 1.2), 0.12, hi - lo))
    room = (hi - p) if direction > 0 else (p - lo)
    gap = start - notes[first - 1].end if first else start
    retake = None
    if first and after_rest(notes, first) and p > lo:
      # Set the bow at the frog during the rest (a lifted bow moves at most MAX_BOW_SPEED).
      back = min(0.4, gap)
      retake = (start - back, start, max(lo, p - MAX_BOW_SPEED * back))
    elif room < min(wanted, 0.3):
      back = min(0.35, gap) if gap >= 0.12 else min(0.16, 0.35 * notes[first - 1].duration)
      # A short retake sets the bow back only partly.
      if direction > 0:
        target = max(lo, hi - wanted, p - MAX_BOW_SPEED * back)
      else:
        target = min(hi, lo + wanted, p + MAX_BOW_SPEED * back)
      retake = (start - back, start, target)
    if retake is not None:
      if plan:
        plan[-1]["end"] = min(plan[-1]["end"], retake[0])
      p = retake[2]
      room = (hi - p) if direction > 0 else (p - lo)
    amount = min(wanted, room)
    plan.append(dict(first=first, last=last, start=start, end=end, direction=direction,
                     volume=volume, retake=retake, **{"from": p, "to": p + direction * amount}))
    p = p + direction * amount
  return plan


def note_bow_positions(notes):
  """Bow position (0 frog .. 1 tip) at each note's start and end: float64 [N, 2].

  The bow moves evenly through its stroke, so a note's span is its share of the stroke.
  """
  out = np.zeros((len(notes), 2), np.float64)
  for stroke in bowing(notes):
    length = max(stroke["end"] - stroke["start"], 1e-6)
    for i in range(stroke["first"], stroke["last"] + 1):
      for j, t in enumerate((notes[i].start, min(notes[i].end, stroke["end"]))):
        frac = np.clip((t - stroke["start"]) / length, 0.0, 1.0)
        out[i, j] = stroke["from"] + frac * (stroke["to"] - stroke["from"])
  return out


# --------------------------------------------------------------------------- generated pieces

_DYNAMICS = (33, 49, 64, 80, 96, 112)  # pp, p, mp, mf, f, ff.
_PATTERNS = ("scale", "arpeggio", "walk", "repeated", "long")
# Note lengths in beats that each pattern draws from (with weights).
_RHYTHMS = {
    "scale": ((0.5, 1.0), (0.6, 0.4)),
    "arpeggio": ((0.5, 1.0, 1.5), (0.5, 0.35, 0.15)),
    "walk": ((0.5, 1.0, 1.5, 2.0), (0.3, 0.4, 0.15, 0.15)),
    "repeated": ((0.5, 1.0), (0.5, 0.5)),
    "long": ((2.0, 3.0, 4.0), (0.5, 0.3, 0.2)),
}
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)


def _scale_pitches(spec, tonic, mode):
  steps = _MAJOR if mode == "major" else _MINOR
  return np.array([p for p in range(spec.lowest, spec.highest + 1)
                   if (p - tonic) % 12 in steps])


def _phrase_pitches(rng, pattern, scale, index, count, low, high):
  """Scale-degree indices of `count` notes of one phrase, starting near `index`."""
  lo = int(np.searchsorted(scale, low))
  hi = int(np.searchsorted(scale, high, side="right")) - 1
  out = []
  direction = rng.choice((-1, 1))
  i = int(np.clip(index, lo, hi))
  while len(out) < count:
    if pattern == "scale":
      step = direction
    elif pattern == "arpeggio":
      step = direction * 2 if len(out) % 3 != 2 else direction * 3
    elif pattern == "repeated":
      step = 0 if len(out) % int(rng.integers(2, 5)) else direction * int(rng.integers(1, 3))
    elif pattern == "long":
      step = int(rng.choice((-2, -1, 1, 2, 3, -3)))
    else:  # Melodic random walk with an occasional leap.
      step = int(rng.choice((-2, -1, 1, 2, -4, 4, -5, 5), p=(.2, .25, .25, .2, .025, .025, .025,
                                                              .025)))
    if not lo <= i + step <= hi:
      direction = -direction
      step = -step
    i = int(np.clip(i + step, lo, hi))
    out.append(i)
  return out


def generate_piece(instrument, duration, seed, index):
  """Generates one piece of exactly `duration` seconds, deterministic in (seed, index).

  The piece is a chain of 2- or 4-bar phrases, each with a pattern (scale, arpeggio, melodic
  walk, repeated notes, long notes), a dynamic that may swell or fade, slurs (never across
  a repeated pitch), an optional tempo change and a rest at its end; the last phrase slows.

  Args:
    instrument: "cello" or "trombone".
    duration: seconds of audio the piece must fill (>= 3).
    seed: the dataset seed.
    index: index of the piece; the piece id is f"piece_{index:04d}".

  Returns:
    A Piece.
  """
  spec = instrument_spec(instrument)
  rng = np.random.default_rng([int(seed), int(index), 7])
  tonic = int(rng.integers(0, 12))
  mode = "major" if rng.random() < 0.6 else "minor"
  scale = _scale_pitches(spec, tonic, mode)
  low, high = spec.comfortable
  if rng.random() < 0.25:  # Some pieces visit the top of the range.
    high = spec.highest
  meter = int(rng.choice((2, 3, 4), p=(0.2, 0.3, 0.5)))
  tempo = float(rng.uniform(66, 120))
  end_time = duration - TAIL
  t = LEAD_IN
  degree = int(np.searchsorted(scale, rng.integers(low + 5, high - 5)))
  notes, beats, downbeats, phrases = [], [], [], []
  slur_probability = float(rng.uniform(0.1, 0.5))
  while t < end_time - 0.5:
    if phrases and rng.random() < 0.3:  # Tempo change at a phrase boundary.
      tempo = float(np.clip(tempo * rng.uniform(0.8, 1.25), 56, 132))
    pattern = str(rng.choice(_PATTERNS, p=(0.25, 0.2, 0.3, 0.1, 0.15)))
    bars = int(rng.choice((2, 4)))
    lengths, weights = _RHYTHMS[pattern]
    # The phrase in beats: note lengths filling all but the last beats, then maybe a rest.
    total_beats = bars * meter
    rest_beats = float(rng.choice((0, 1, 2), p=(0.35, 0.45, 0.2))) if total_beats > 2 else 0
    durations = []
    while sum(durations) < total_beats - rest_beats - 1e-9:
      left = total_beats - rest_beats - sum(durations)
      d = float(rng.choice(lengths, p=weights))
      durations.append(min(d, left))
    beat_length = 60.0 / tempo
    last_phrase = t + total_beats * beat_length >= end_time - 2.0
    # Beat times; the last phrase slows down by up to 30 % (ritardando).
    beat_lengths = beat_length * (1 + (0.3 * np.arange(total_beats + 1) / total_beats
                                       if last_phrase else 0 * np.arange(total_beats + 1)))
    beat_times = t + np.concatenate([[0.0], np.cumsum(beat_lengths[:-1])])
    phrase_end = beat_times[-1]

    def at(b, beat_times=beat_times, beat_lengths=beat_lengths):
      whole = int(np.floor(b))
      return beat_times[whole] + (b - whole) * beat_lengths[whole]

    dyn0 = int(rng.integers(0, len(_DYNAMICS)))
    dyn1 = int(np.clip(dyn0 + rng.choice((-2, -1, 0, 0, 1, 2)), 0, len(_DYNAMICS) - 1))
    degrees = _phrase_pitches(rng, pattern, scale, degree, len(durations), low, high)
    degree = degrees[-1]
    b = 0.0
    phrase_notes = []
    for k, (d, deg) in enumerate(zip(durations, degrees)):
      start, stop = at(b), at(b + d)
      if start >= end_time - 0.2:
        break
      stop = min(stop, end_time)
      frac = k / max(len(durations) - 1, 1)
      velocity = _DYNAMICS[dyn0] + frac * (_DYNAMICS[dyn1] - _DYNAMICS[dyn0])
      downbeat = abs(b / meter - round(b / meter)) < 1e-6
      velocity += 6 * downbeat + rng.uniform(-4, 4)
      pitch = int(scale[deg])
      slur = bool(phrase_notes and rng.random() < slur_probability
                  and phrase_notes[-1]["pitch"] != pitch
                  and stop - phrase_notes[-1]["group_start"] < 2.4)
      group_start = phrase_notes[-1]["group_start"] if slur else start
      phrase_notes.append(dict(start=start, stop=stop, pitch=pitch,
                               velocity=int(np.clip(round(velocity), 20, 127)), slur=slur,
                               downbeat=downbeat, group_start=group_start))
      b += d
    for k, n in enumerate(phrase_notes):
      following = phrase_notes[k + 1] if k + 1 < len(phrase_notes) else None
      # Legato into a slurred note; detache leaves a short gap that the bow change takes.
      if following is not None and following["slur"]:
        end = following["start"]
      else:
        end = n["start"] + (n["stop"] - n["start"]) * (0.9 if following is not None else 0.95)
      notes.append(Note(float(n["start"]), float(end), n["pitch"], n["velocity"], n["slur"],
                        bool(n["downbeat"])))
    beats.extend(beat_times[:-1].tolist())
    downbeats.extend(beat_times[:-1:meter].tolist())
    phrases.append((float(t), float(min(phrase_end, end_time))))
    t = phrase_end
  beats = np.array([b for b in beats if b < duration], np.float64)
  downbeats = np.array([b for b in downbeats if b < duration], np.float64)
  return Piece(f"piece_{index:04d}", tuple(notes), float(duration), beats, downbeats,
               tuple(phrases), f"generated:{seed}:{index}")


def piece_lengths(total_seconds, target=30.0, minimum_pieces=3):
  """Splits `total_seconds` into equal piece lengths near `target` (at least 3 pieces).

  Three pieces is the least that gives every split (train, validation, test) one piece.
  """
  if total_seconds <= 0:
    raise InputError(f"--minutes must be positive (got {total_seconds / 60:g})")
  count = max(minimum_pieces, int(round(total_seconds / target)))
  if total_seconds / count < 3.0:
    raise InputError(f"{total_seconds:.1f} s of music is too short: the {count} pieces (one "
                     "per split at least) need 3 s each; ask for --minutes=0.15 or more")
  return [total_seconds / count] * count


def generate_pieces(instrument, minutes, seed):
  """Generated pieces totalling `minutes` of audio (pieces of 20-40 s when there is room)."""
  return [generate_piece(instrument, length, seed, i)
          for i, length in enumerate(piece_lengths(minutes * 60.0))]


# --------------------------------------------------------------------------- MIDI files


def _pick_track(midi, path, spec, track):
  import pretty_midi  # pylint: disable=g-import-not-at-top
  instruments = midi.instruments
  listing = ", ".join(
      f"{i}: {'drums' if inst.is_drum else pretty_midi.program_to_instrument_name(inst.program)}"
      f" ({len(inst.notes)} notes)" for i, inst in enumerate(instruments)) or "none"
  if track is not None:
    if not 0 <= track < len(instruments):
      raise InputError(f"--track={track} does not exist in {path}; its tracks are: {listing}")
    return instruments[track]
  matches = [inst for inst in instruments if not inst.is_drum and (
      inst.program == spec.gm_program - 1 or spec.name in (inst.name or "").lower())]
  if not matches:
    raise InputError(f"{path} has no {spec.name} track (General MIDI program "
                     f"{spec.gm_program}); its tracks are: {listing}. Pick one with --track=N.")
  return max(matches, key=lambda inst: len(inst.notes))


def _monophonic(raw_notes, spec):
  """Melody line of a track: the top note of chords, legato overlaps become slurs."""
  raw = sorted(raw_notes, key=lambda n: (n.start, -n.pitch))
  line = []
  for n in raw:
    if line and n.start - line[-1]["start"] < 0.03:  # A chord: the top note was taken.
      continue
    pitch = int(n.pitch)
    while pitch < spec.lowest:
      pitch += 12
    while pitch > spec.highest:
      pitch -= 12
    line.append(dict(start=float(n.start), end=float(n.end), pitch=pitch,
                     velocity=int(np.clip(n.velocity, 1, 127))))
  notes = []
  for k, n in enumerate(line):
    following = line[k + 1]["start"] if k + 1 < len(line) else np.inf
    # Overlapping notes are MIDI's way of writing legato; a repeated pitch cannot be slurred.
    legato = bool(notes) and notes[-1]["overlap"] and notes[-1]["pitch"] != n["pitch"]
    n["overlap"] = n["end"] > following + 1e-3
    n["end"] = min(n["end"], following)
    n["end"] = max(n["end"], n["start"] + MIN_NOTE)
    n["slur"] = legato
    notes.append(n)
  # Enforce a minimum length without overlapping the next note.
  for k in range(len(notes) - 1):
    if notes[k + 1]["start"] - notes[k]["start"] < MIN_NOTE:
      notes[k + 1]["start"] = notes[k]["start"] + MIN_NOTE
      notes[k + 1]["end"] = max(notes[k + 1]["end"], notes[k + 1]["start"] + MIN_NOTE)
    notes[k]["end"] = min(notes[k]["end"], notes[k + 1]["start"])
  return notes


def _cut_points(notes, count):
  """Indices where `count` pieces start, preferring the widest gaps near equal lengths."""
  first, last = notes[0]["start"], notes[-1]["end"]
  length = (last - first) / count
  cuts = [0]
  for k in range(1, count):
    target = first + k * length
    best, best_score = None, None
    for i in range(cuts[-1] + 1, len(notes)):
      distance = abs(notes[i]["start"] - target)
      if distance > 0.34 * length and best is not None:
        if notes[i]["start"] > target:
          break
        continue
      gap = notes[i]["start"] - notes[i - 1]["end"]
      score = distance - 2.0 * min(gap, 2.0)
      if best_score is None or score < best_score:
        best, best_score = i, score
    if best is None or len(notes) - best < count - k:
      break
    cuts.append(best)
  return cuts


def read_midi_pieces(paths, instrument, track=None, max_minutes=None, first_index=0):
  """Reads the notes of one track of each MIDI file and cuts them into pieces of 20-40 s.

  The track is `track` (index into the file's tracks, 0-based, as `pretty_midi` lists them)
  or else the longest track whose General MIDI program is the instrument's (or whose name
  contains it). Chords keep their top note, overlapping notes become slurs, notes outside
  the instrument's range move by octaves into it. Each piece starts after a short lead-in.

  Args:
    paths: MIDI file paths.
    instrument: "cello" or "trombone".
    track: optional track index.
    max_minutes: optional cap on the total duration of the pieces.
    first_index: number of the first piece id.

  Returns:
    List of Piece, at least 3 (one per split).

  Raises:
    InputError: unreadable file, no track of the instrument, a track without notes, or too
      little music for three pieces.
  """
  import pretty_midi  # pylint: disable=g-import-not-at-top
  spec = instrument_spec(instrument)
  material = []  # (path, notes, beats, downbeats)
  for path in paths:
    if not os.path.isfile(path):
      raise InputError(f"MIDI file {path} does not exist")
    try:
      midi = pretty_midi.PrettyMIDI(path)
    except Exception as e:  # pretty_midi/mido raise many types for a bad file.
      raise InputError(f"cannot read {path} as a MIDI file ({type(e).__name__}: {e})") from e
    if not any(inst.notes for inst in midi.instruments):
      raise InputError(f"{path} has no notes; give a MIDI file with a {spec.name} part")
    chosen = _pick_track(midi, path, spec, track)
    if not chosen.notes:
      raise InputError(f"the {spec.name} track of {path} has no notes; pick another with "
                       "--track=N or give a different file")
    notes = _monophonic(chosen.notes, spec)
    index = midi.instruments.index(chosen)
    material.append((f"{os.path.basename(path)}#{index}", notes, midi.get_beats(),
                     midi.get_downbeats()))
  seconds = [n[-1]["end"] - n[0]["start"] for _, n, _, _ in material]
  budget = np.inf if max_minutes is None else float(max_minutes) * 60.0
  usable = min(sum(seconds), budget)
  length = usable / max(3, int(round(usable / 30.0)))  # Pieces of 20-40 s, 3 at least.
  pieces = []
  for (source, notes, beats, downbeats), file_seconds in zip(material, seconds):
    cuts = _cut_points(notes, max(1, min(int(round(file_seconds / length)), len(notes))))
    for c, start_index in enumerate(cuts):
      if budget < 3.0:
        break
      stop_index = cuts[c + 1] if c + 1 < len(cuts) else len(notes)
      chunk = notes[start_index:stop_index]
      offset = chunk[0]["start"] - LEAD_IN
      kept = [n for n in chunk if n["end"] - offset + TAIL <= budget] or chunk[:1]
      duration = kept[-1]["end"] - offset + TAIL
      budget -= duration
      piece_beats = np.asarray(beats, np.float64) - offset
      piece_downbeats = np.asarray(downbeats, np.float64) - offset
      in_piece = lambda x, d=duration: x[(x >= 0) & (x < d)]
      piece_beats, piece_downbeats = in_piece(piece_beats), in_piece(piece_downbeats)
      out = []
      for k, n in enumerate(kept):
        start = n["start"] - offset
        downbeat = bool(len(piece_downbeats)) and float(
            np.min(np.abs(piece_downbeats - start))) < 0.04
        out.append(Note(start, n["end"] - offset, n["pitch"], n["velocity"],
                        bool(n["slur"]) and k > 0, downbeat))
      pieces.append(Piece(f"piece_{first_index + len(pieces):04d}", tuple(out), duration,
                          piece_beats, piece_downbeats, tuple(_phrases(out)), source))
  if len(pieces) < 3:
    raise InputError(f"the MIDI files give {len(pieces)} piece(s); a dataset needs at least "
                     "3 (one per split): give longer files (about 15 s of notes or more)")
  return pieces


def _phrases(notes):
  """Phrases of a MIDI line: runs of notes separated by rests of 0.3 s or more."""
  phrases, start = [], notes[0].start
  for k in range(1, len(notes)):
    if notes[k].start - notes[k - 1].end >= 0.3:
      phrases.append((start, notes[k - 1].end))
      start = notes[k].start
  phrases.append((start, notes[-1].end))
  return phrases


# --------------------------------------------------------------------------- splits

SPLITS = ("train", "validation", "test")


def assign_splits(pieces, seed):
  """Assigns whole pieces to splits, about 80/10/10 and at least one piece in each.

  Args:
    pieces: list of Piece (at least 3).
    seed: the dataset seed; the assignment is a seeded shuffle of the pieces.

  Returns:
    dict piece_id -> split name.
  """
  count = len(pieces)
  if count < 3:
    raise InputError(f"{count} piece(s) cannot fill three splits")
  held_out = max(1, int(round(0.1 * count)))
  order = np.random.default_rng([int(seed), 11]).permutation(count)
  names = ["validation"] * held_out + ["test"] * held_out + ["train"] * (count - 2 * held_out)
  return {pieces[i].piece_id: names[k] for k, i in enumerate(order)}
