"""The motion of the virtual performer: notes in, keypoints of body and hands out.

A 2D kinematic figure in the image plane: every bone is a fixed-length segment rotated about
its parent joint, and arms reach their targets by two-bone inverse kinematics. So bone
lengths in the image stay exactly constant, whatever the music does. Coordinates are
normalised to [0, 1] of the square frame (x right, y down); one unit is about 1.6 m.

What the notes cause (each note's motion event is reported in `Performance.events`):

- Cello (seated, seen from the front, cello between the knees). Notes are grouped into bow
  strokes: a stroke starts at every note that is not slurred. Direction follows the players'
  rules (`music.bowing`): down-bow on the first beat of a bar and after a rest, alternating
  otherwise; during a rest the bow is set back at the frog; when the bow runs out, or the
  rule asks for two strokes in the same direction, it is retaken (lifted back) at the end of
  the previous one. The amount of bow follows loudness and note length, within the bow, and
  the sound's level follows the bow's position (louder at the frog).
  The bow turns exactly at the onset of a stroke's first note ("bow_change"). Inside a slur
  the left hand causes the event: a shift of position ("shift", the hand glides and arrives
  at the onset), a new finger pressing ("finger") or a new string ("string", the bow arm
  changes level and the contact point moves). The left hand slides along the neck with
  pitch, fingers press by finger number, long notes get vibrato (`music.vibrato`), the bow's
  sounding point moves toward the bridge when loud.
- Trombone (seated, three-quarter view facing right, slide forward and down). The slide
  position (1-7) follows pitch through the harmonic series of B-flat; the slide moves before a
  note and arrives at its onset ("slide"). A note played in the same position is tongued:
  a small dip of the bell and head starts at its onset, larger on accents ("articulation").
  The chest breathes in at rests.
- Both: torso sway over phrases, head nods on beats (stronger on downbeats and when loud),
  and a slow idle drift; nothing moves faster than a hand can.
"""

import dataclasses

import numpy as np

from apvg_tf import skeleton
from apvg_tf.synth import music

# --------------------------------------------------------------------------- keyframe tracks


def _smoothstep(u):
  return u * u * (3.0 - 2.0 * u)


def _trapezoid(u, ramp):
  """Progress 0..1 of a stroke with linear velocity ramps (fraction `ramp` at each end)."""
  ramp = np.clip(ramp, 1e-3, 0.5)
  peak = 1.0 / (1.0 - ramp)
  rise = 0.5 * peak * u * u / ramp
  middle = peak * (u - 0.5 * ramp)
  fall = 1.0 - 0.5 * peak * (1.0 - u) ** 2 / ramp
  return np.where(u < ramp, rise, np.where(u > 1.0 - ramp, fall, middle))


class Track:
  """A scalar (or vector) channel of motion: holds between moves, eases during moves.

  Moves are added in time order: `move(t0, t1, value)` goes from the value held at t0 to
  `value`, arriving at t1, with zero velocity at both ends.
  """

  def __init__(self, value):
    self._initial = np.asarray(value, np.float64)
    self._moves = []  # (t0, t1, v0, v1, ramp or None)

  @property
  def value(self):
    return self._moves[-1][3] if self._moves else self._initial

  @property
  def last_time(self):
    return self._moves[-1][1] if self._moves else -np.inf

  def move(self, t0, t1, value, ramp=None):
    """Eases to `value` between t0 and t1 (smoothstep, or a trapezoid of velocity)."""
    t0 = max(t0, self.last_time)
    value = np.asarray(value, np.float64)
    if t1 <= t0 + 1e-6:
      t1 = t0 + 1e-3
    self._moves.append((float(t0), float(t1), self.value, value, ramp))

  def __call__(self, times):
    """Values at `times` (float [T]) -> float [T] or [T, D]."""
    times = np.asarray(times, np.float64)
    out = np.broadcast_to(self._initial, times.shape + self._initial.shape).copy()
    for t0, t1, v0, v1, ramp in self._moves:
      inside = (times >= t0) & (times < t1)
      after = times >= t1
      u = (times[inside] - t0) / (t1 - t0)
      w = _smoothstep(u) if ramp is None else _trapezoid(u, ramp)
      w = w.reshape(w.shape + (1,) * v0.ndim)
      out[inside] = v0 + (v1 - v0) * w
      out[after] = v1
    return out


def _bumps(times, centers, amplitudes, rise, fall):
  """Sum of pulses starting at `centers`: rise over `rise` s, decay over `fall` s."""
  out = np.zeros_like(times)
  for c, a in zip(centers, amplitudes):
    dt = times - c
    window = (dt >= 0) & (dt < rise + 4 * fall)
    d = dt[window]
    out[window] += a * np.where(d < rise, _smoothstep(d / rise),
                                np.exp(-(d - rise) / fall))
  return out


# --------------------------------------------------------------------------- geometry


def _dir(angle):
  """Unit vectors [..., 2] of image-plane angles (y down, so positive turns clockwise)."""
  return np.stack([np.cos(angle), np.sin(angle)], -1)


def _rotate(vectors, angle):
  """Rotates vectors [T, 2] (or [2]) by angles [T]."""
  c, s = np.cos(angle), np.sin(angle)
  x, y = vectors[..., 0], vectors[..., 1]
  return np.stack([c * x - s * y, s * x + c * y], -1)


def _two_bone(root, target, upper, lower, bend):
  """Elbow and reached end of a two-bone limb (exact lengths; clamps unreachable targets).

  Args:
    root: [T, 2] shoulder. target: [T, 2] wanted wrist. upper, lower: bone lengths.
    bend: +1 or -1, the side the elbow goes to (sign of the turn from root->target).

  Returns:
    (elbow [T, 2], wrist [T, 2]); wrist == target when reachable.
  """
  delta = target - root
  dist = np.linalg.norm(delta, axis=-1)
  reach = np.clip(dist, abs(upper - lower) + 1e-6, (upper + lower) * 0.9999)
  unit = delta / np.maximum(dist, 1e-9)[:, None]
  cos_a = (upper ** 2 + reach ** 2 - lower ** 2) / (2 * upper * reach)
  angle = np.arccos(np.clip(cos_a, -1, 1)) * bend
  elbow = root + upper * _rotate(unit, angle)
  wrist = root + unit * reach[:, None]
  return elbow, wrist


# Hand model (OpenPose order: wrist, thumb 1-4, index 5-8, middle 9-12, ring 13-16, little
# 17-20), in units of the hand's length, in a frame whose x axis runs from the wrist to the
# middle knuckle and whose y axis points to the thumb side.
_KNUCKLES = np.array([[0.44, 0.13], [0.47, 0.04], [0.45, -0.05], [0.40, -0.13]])
_PHALANGES = np.array([[0.23, 0.14, 0.10], [0.26, 0.16, 0.11], [0.24, 0.15, 0.10],
                       [0.18, 0.11, 0.09]])
_THUMB_BASE = np.array([0.10, 0.12])
_THUMB = np.array([0.16, 0.14, 0.11])


def _hand_points(wrist, angle, length, mirror, flex, spread=0.0, thumb_angle=0.7,
                 thumb_flex=0.3):
  """21 hand points from the wrist, the hand's direction and the finger flexion.

  Args:
    wrist: [T, 2]. angle: [T] direction wrist -> middle knuckle. length: hand length.
    mirror: +1 if the thumb side is clockwise of the hand's direction (y down), else -1.
    flex: [T, 4] flexion of index..little (radians per joint); fingers bend away from the
      thumb side.
    spread: fan of the fingers in radians.
    thumb_angle: thumb direction from the hand's direction toward the thumb side.
    thumb_flex: thumb flexion per joint.

  Returns:
    [T, 21, 2].
  """
  num = len(wrist)
  out = np.zeros((num, 21, 2))
  out[:, 0] = wrist
  base = np.array([1.0, mirror])
  pos = wrist + _rotate(length * _THUMB_BASE * base, angle)
  out[:, 1] = pos
  direction = angle + mirror * thumb_angle
  for j in range(3):
    direction = direction - mirror * thumb_flex
    pos = pos + length * _THUMB[j] * _dir(direction)
    out[:, 2 + j] = pos
  for f in range(4):
    pos = wrist + _rotate(length * _KNUCKLES[f] * base, angle)
    out[:, 5 + 4 * f] = pos
    direction = angle + mirror * spread * (1.5 - f) / 1.5
    for j in range(3):
      direction = direction - mirror * flex[:, f] * (1.0, 1.2, 0.8)[j]
      pos = pos + length * _PHALANGES[f][j] * _dir(direction)
      out[:, 6 + 4 * f + j] = pos
  return out


# --------------------------------------------------------------------------- the figure

# Body proportions shared by both performers (frame units).
TORSO = 0.31  # Neck to mid-hip.
HAND = 0.085


@dataclasses.dataclass(frozen=True)
class Layout:
  """The resting figure of one instrument's performer (frame units, angles in radians).

  Attributes:
    hip: mid-hip position.
    torso_angle: lean of the torso from vertical (positive leans to the image right).
    clavicles: 2D lengths of the right and left clavicle (neck -> shoulder).
    clavicle_angles: resting angles of the right and left clavicle.
    face: offsets from the neck, in the head frame (x right, y down when upright), of
      nose, right eye, left eye, right ear, left ear.
    hips: offsets of the right and left hip from the mid-hip.
    legs: fixed points of the seated legs: right knee, right ankle, left knee, left ankle,
      left big toe, left small toe, left heel, right big toe, right small toe, right heel.
    arms: (upper arm, forearm) image lengths of the right and the left arm. An arm that
      reaches toward the camera looks shorter, and keeps looking so: the cellist's left arm
      reaches forward around the cello.
  """
  hip: tuple
  torso_angle: float
  clavicles: tuple
  clavicle_angles: tuple
  face: tuple
  hips: tuple
  legs: tuple
  arms: tuple


CELLO_LAYOUT = Layout(
    hip=(0.50, 0.625), torso_angle=-0.02, clavicles=(0.085, 0.085),
    clavicle_angles=(np.pi - 0.12, 0.12),
    face=((0.0, -0.112), (-0.021, -0.129), (0.021, -0.129), (-0.047, -0.121),
          (0.047, -0.121)),
    hips=((-0.055, 0.0), (0.055, 0.0)),
    legs=((0.355, 0.700), (0.335, 0.905), (0.645, 0.700), (0.665, 0.905),
          (0.690, 0.950), (0.715, 0.940), (0.660, 0.925),
          (0.310, 0.950), (0.285, 0.940), (0.340, 0.925)),
    arms=((0.19, 0.17), (0.12, 0.11)))

TROMBONE_LAYOUT = Layout(
    hip=(0.250, 0.625), torso_angle=0.06, clavicles=(0.045, 0.040),
    clavicle_angles=(1.0, np.pi - 0.5),
    face=((0.058, -0.110), (0.030, -0.129), (0.063, -0.130), (-0.022, -0.122),
          (0.045, -0.126)),
    hips=((-0.012, 0.012), (0.030, -0.012)),
    legs=((0.435, 0.665), (0.430, 0.905), (0.460, 0.640), (0.465, 0.890),
          (0.525, 0.920), (0.515, 0.930), (0.450, 0.915),
          (0.500, 0.940), (0.490, 0.948), (0.415, 0.932)),
    arms=((0.19, 0.17), (0.15, 0.14)))


def _body(times, layout, torso, shrug, head):
  """Keypoints of the trunk, head and legs (arms and hands are filled in later).

  Args:
    times: [T]. layout: Layout. torso: [T] extra torso angle. shrug: [T] shoulder lift
    (radians of clavicle rotation). head: [T] head angle relative to the torso.

  Returns:
    [T, 67, 2] with body points 0-24 except the arms (3, 4, 6, 7) set.
  """
  num = len(times)
  kp = np.zeros((num, skeleton.NUM_KEYPOINTS, 2))
  hip = np.broadcast_to(np.array(layout.hip), (num, 2))
  angle = layout.torso_angle + torso
  neck = hip + TORSO * np.stack([np.sin(angle), -np.cos(angle)], -1)
  idx = skeleton.INDEX
  kp[:, idx["mid_hip"]] = hip
  kp[:, idx["neck"]] = neck
  kp[:, idx["right_shoulder"]] = neck + layout.clavicles[0] * _dir(
      layout.clavicle_angles[0] + angle + shrug)
  kp[:, idx["left_shoulder"]] = neck + layout.clavicles[1] * _dir(
      layout.clavicle_angles[1] + angle - shrug)
  head_angle = angle + head
  for name, offset in zip(("nose", "right_eye", "left_eye", "right_ear", "left_ear"),
                          layout.face):
    kp[:, idx[name]] = neck + _rotate(np.array(offset), head_angle)
  kp[:, idx["right_hip"]] = hip + np.array(layout.hips[0])
  kp[:, idx["left_hip"]] = hip + np.array(layout.hips[1])
  for name, point in zip(("right_knee", "right_ankle", "left_knee", "left_ankle",
                          "left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
                          "right_small_toe", "right_heel"), layout.legs):
    kp[:, idx[name]] = point
  return kp


def _expressive(times, piece, rng, sway_amount):
  """Torso sway over phrases and head nods on beats, plus idle drift: two [T] angle tracks.

  Each phrase leans the torso one way and back (alternating), more when it is loud; each
  beat played nods the head, more on downbeats and when loud.
  """
  loud = _loudness(times, piece)
  sway = np.zeros_like(times)
  for k, (p0, p1) in enumerate(piece.phrases):
    inside = (times >= p0) & (times < p1 + 0.5)
    mean_loud = np.mean([n.velocity for n in piece.notes if p0 <= n.start < p1] or [64]) / 127
    sign = 1.0 if k % 2 == 0 else -1.0
    u = np.clip((times[inside] - p0) / max(p1 + 0.5 - p0, 0.1), 0, 1)
    sway[inside] += sign * sway_amount * (0.4 + mean_loud) * np.sin(np.pi * u) ** 2
  playing = np.array([_playing_at(piece, b) for b in piece.beats], np.float64)
  beat_loud = np.interp(piece.beats, times, loud) if len(piece.beats) else np.zeros(0)
  down = np.isin(np.round(piece.beats, 6), np.round(piece.downbeats, 6))
  nods = _bumps(times, piece.beats, playing * (0.012 + 0.03 * beat_loud) * (1 + 0.8 * down),
                rise=0.12, fall=0.12)
  idle_t = sum(a * np.sin(2 * np.pi * f * times + p) for a, f, p in zip(
      rng.uniform(0.004, 0.008, 3), rng.uniform(0.05, 0.25, 3), rng.uniform(0, 6.3, 3)))
  idle_h = sum(a * np.sin(2 * np.pi * f * times + p) for a, f, p in zip(
      rng.uniform(0.006, 0.012, 3), rng.uniform(0.08, 0.3, 3), rng.uniform(0, 6.3, 3)))
  return sway + idle_t, nods + idle_h


def _playing_at(piece, t):
  return any(n.start - 0.05 <= t < n.end for n in piece.notes)


def _loudness(times, piece):
  """Smoothed loudness 0..1 over time (velocity while a note sounds)."""
  level = np.zeros_like(times)
  for n in piece.notes:
    level[(times >= n.start) & (times < n.end)] = n.velocity / 127.0
  kernel = np.hanning(9)
  return np.convolve(np.pad(level, 4, mode="edge"), kernel / kernel.sum(), mode="valid")


def _rests(piece, minimum):
  """(start, end) of silences of at least `minimum` seconds, the lead-in included."""
  out, last = [], 0.0
  for n in piece.notes:
    if n.start - last >= minimum:
      out.append((last, n.start))
    last = n.end
  if piece.duration - last >= minimum:
    out.append((last, piece.duration))
  return out


@dataclasses.dataclass
class Performance:
  """What the performer did.

  Attributes:
    keypoints: float32 [T, 67, 3], x, y in [0, 1] of the square frame, confidence 1.
    props: dict of per-frame instrument geometry for the renderer (float32 [T, ...]).
    events: float64 [num_notes], time in seconds of the motion event each note causes.
    event_kinds: tuple of str per note: "bow_change", "shift", "finger", "string", "slide"
      or "articulation".
    instrument: "cello" or "trombone".
  """
  keypoints: np.ndarray
  props: dict
  events: np.ndarray
  event_kinds: tuple
  instrument: str


def perform(piece, instrument, fps, num_frames, seed=0):
  """Plays a piece: the keypoints of every video frame and each note's motion event.

  Args:
    piece: a music.Piece.
    instrument: "cello" or "trombone".
    fps: video frame rate; frame t shows time t / fps.
    num_frames: T.
    seed: seeds the idle motion.

  Returns:
    A Performance.
  """
  music.instrument_spec(instrument)
  times = np.arange(num_frames) / float(fps)
  rng = np.random.default_rng([int(seed)] + list(piece.piece_id.encode()) + [13])
  if instrument == "cello":
    return _perform_cello(piece, times, rng)
  return _perform_trombone(piece, times, rng)


# --------------------------------------------------------------------------- cello

CELLO_STRINGS = (36, 43, 50, 57)  # Open C2, G2, D3, A3.


@dataclasses.dataclass(frozen=True)
class CelloGeometry:
  """Where the cello stands (frame units): its axis, from the endpin tip up to the scroll.

  Distances are along the axis from the endpin tip.
  """
  endpin: tuple = (0.485, 0.962)
  tilt: float = 0.22  # Radians the axis leans to the image right.
  body_bottom: float = 0.155
  bridge: float = 0.375
  body_top: float = 0.625
  nut: float = 0.795
  scroll_top: float = 0.915
  string_length: float = 0.42  # Nut to bridge.
  string_spacing_nut: float = 0.0055
  string_spacing_bridge: float = 0.0125
  bow_length: float = 0.355
  bow_width: float = 0.012

  @property
  def up(self):
    return np.array([np.sin(self.tilt), -np.cos(self.tilt)])

  @property
  def across(self):
    """Unit vector across the strings, from the A string toward the C string (image right)."""
    return np.array([np.cos(self.tilt), np.sin(self.tilt)])

  def point(self, along, across=0.0):
    return np.array(self.endpin) + np.multiply.outer(along, self.up) + np.multiply.outer(
        across, self.across)

  def string_offset(self, string, along):
    """Across offset of string 0 (C) .. 3 (A) at `along`: C on the image right."""
    u = (self.nut - np.asarray(along)) / (self.nut - self.bridge)
    spacing = self.string_spacing_nut + (self.string_spacing_bridge
                                         - self.string_spacing_nut) * u
    return (1.5 - np.asarray(string)) * spacing


CELLO = CelloGeometry()


def cello_fingering(notes):
  """String, hand position and finger of each note, as a cellist would choose them.

  Position k is the semitone above the open string where the first finger falls; fingers
  1-4 cover k..k+3. The highest string that keeps the note within reach of the current
  position is preferred; shifts go so that the note lands on finger 2 (up) or 3 (down).

  Returns:
    list of (string 0-3, position k, finger 0-4) per note.
  """
  out = []
  string, position = 2, 1
  for n in notes:
    options = [s for s, open_pitch in enumerate(CELLO_STRINGS) if n.pitch >= open_pitch]
    best = None
    for s in options:
      offset = n.pitch - CELLO_STRINGS[s]
      if offset > 12 and s != 3:
        continue  # Above the octave only on the A string (thumb position).
      if offset == 0:
        cost, k, finger = abs(s - string) * 0.6, position, 0
      elif position <= offset <= position + 3:
        cost, k, finger = abs(s - string) * 0.6, position, offset - position + 1
      else:
        k = offset - 1 if offset > position else max(offset - 2, 1)
        cost, finger = 1.0 + abs(k - position) * 0.15 + abs(s - string) * 0.6, offset - k + 1
      cost += 0.02 * offset  # Lower positions are easier.
      if best is None or cost < best[0]:
        best = (cost, s, k, finger)
    _, string, position, finger = best
    out.append((string, position, finger))
  return out


def _semitone_along(k):
  """Distance along the cello axis from the endpin of semitone k above the nut."""
  return CELLO.nut - CELLO.string_length * (1.0 - 2.0 ** (-np.asarray(k, np.float64) / 12.0))


def _perform_cello(piece, times, rng):
  notes = piece.notes
  g = CELLO
  fingering = cello_fingering(notes)
  torso, head = _expressive(times, piece, rng, sway_amount=0.025)
  shrug = np.zeros_like(times)
  kinds = []

  # Bow: position along the bow (0 at the frog .. 1 at the tip) at the contact point.
  bow = Track(0.25)
  string_track = Track(float(fingering[0][0]) if notes else 2.0)
  sounding = Track(0.045)  # Distance of the contact point above the bridge.
  for stroke in music.bowing(notes):
    if stroke["retake"] is not None:
      r0, r1, target = stroke["retake"]
      bow.move(r0, r1, target, ramp=0.3)
    duration = stroke["end"] - stroke["start"]
    bow.move(stroke["start"], stroke["end"], stroke["to"],
             ramp=min(0.06 / max(duration, 1e-3), 0.3))
    sounding.move(stroke["start"] - 0.05, stroke["start"] + 0.1, 0.055 - 0.035 * stroke["volume"])
  # Left hand: position along the neck, string across, fingers, with their events.
  along = Track(float(_semitone_along(fingering[0][1] + 1.2)) if notes else g.nut - 0.05)
  flex = Track(np.full(4, 0.35))
  vib = np.zeros_like(times)
  for k, n in enumerate(notes):
    string, position, finger = fingering[k]
    prev = fingering[k - 1] if k else None
    prev_start = notes[k - 1].start if k else 0.0
    window = n.start - prev_start if k else n.start
    shift = prev is not None and position != prev[1]
    new_string = prev is not None and string != prev[0]
    if shift or k == 0:
      glide = float(np.clip(0.05 + 0.012 * abs(position - (prev[1] if prev else position)),
                            0.06, 0.16))
      along.move(n.start - min(glide, 0.7 * window), n.start,
                 float(_semitone_along(position + 1.2)))
    if new_string or k == 0:
      string_track.move(n.start - min(0.07, 0.6 * window), n.start, float(string))
    target = np.array([0.9 if f + 1 == finger else (0.55 if f + 1 < finger else 0.12)
                       for f in range(4)])
    if finger == 0:
      target = np.full(4, 0.12)
    flex.move(n.start - min(0.05, 0.5 * window), n.start, target)
    if music.after_rest(notes, k + 1) if k + 1 < len(notes) else True:
      flex.move(max(n.end + 0.05, flex.last_time), n.end + 0.25, np.full(4, 0.35))
    rate, depth, delay = music.vibrato(n)
    if depth > 0 and finger > 0:
      inside = (times >= n.start + delay) & (times < n.end)
      t = times[inside] - n.start - delay
      semitone = g.string_length * 2.0 ** (-(position + finger - 1) / 12.0) * (1 - 2 ** (-1 / 12))
      vib[inside] += semitone * depth * np.clip(t / 0.25, 0, 1) * np.sin(2 * np.pi * rate * t)
    if not n.slur:
      kinds.append("bow_change")
    elif shift:
      kinds.append("shift")
    elif finger != prev[2]:
      kinds.append("finger")
    else:
      kinds.append("string")

  kp = _body(times, CELLO_LAYOUT, torso, shrug, head)
  idx = skeleton.INDEX
  bow_pos = bow(times)
  string_pos = string_track(times)
  contact_along = g.bridge + sounding(times)
  contact = g.point(contact_along, g.string_offset(string_pos, contact_along))
  # The bow tilts with the string it plays: the C string needs the arm high, the A string low.
  bow_angle = np.pi + g.tilt - 0.30 + 0.14 * (3.0 - string_pos) * 0.5
  u = _dir(bow_angle)  # From the contact point toward the frog.
  frog = contact + u * (bow_pos * g.bow_length)[:, None]
  tip = frog - u * g.bow_length
  # Right arm: the wrist sits above the frog, the hand draped over the stick.
  wrist_target = frog + _rotate(np.array([0.012, -0.052]), bow_angle - np.pi)
  elbow, wrist = _two_bone(kp[:, idx["right_shoulder"]], wrist_target,
                           *CELLO_LAYOUT.arms[0], bend=-1)
  kp[:, idx["right_elbow"]] = elbow
  kp[:, idx["right_wrist"]] = wrist
  hand_angle = bow_angle - np.pi + np.pi / 2 + 0.25  # Fingers hang down over the stick.
  kp[:, skeleton.RIGHT_HAND] = _hand_points(
      wrist, hand_angle, HAND, mirror=1.0, flex=np.full((len(times), 4), 0.45), spread=0.15,
      thumb_angle=0.9, thumb_flex=0.35)
  # Left arm: the hand hangs on the neck from the C-string side; fingers reach across.
  hand_along = along(times) + vib
  hand_across = 0.058 + g.string_offset(string_track(times), hand_along) * 1.4
  left_wrist_target = g.point(hand_along, hand_across) + np.array([0.0, 0.012])
  elbow, wrist = _two_bone(kp[:, idx["left_shoulder"]], left_wrist_target,
                           *CELLO_LAYOUT.arms[1], bend=1)
  kp[:, idx["left_elbow"]] = elbow
  kp[:, idx["left_wrist"]] = wrist
  finger_flex = flex(times)
  # Fingers point across the strings toward the A side, the index toward the nut.
  left_angle = np.full(len(times), np.pi + g.tilt + 0.12)
  kp[:, skeleton.LEFT_HAND] = _hand_points(wrist, left_angle, HAND, mirror=1.0,
                                           flex=finger_flex, spread=0.1, thumb_angle=1.3,
                                           thumb_flex=0.2)
  props = {"bow": np.stack([frog, tip], 1).astype(np.float32),
           "contact": contact.astype(np.float32),
           "string": string_pos.astype(np.float32)}
  return _finish(kp, props, np.array([n.start for n in notes]), kinds, "cello")


# --------------------------------------------------------------------------- trombone

# Pitches of the B-flat harmonic series a tenor trombone plays in first position (the flat
# 7th partial is left out, as players avoid it).
TROMBONE_PARTIALS = (46, 53, 58, 62, 65, 70, 72, 74, 77)
SLIDE_STEP = 0.040  # Frame units the slide travels per position.


@dataclasses.dataclass(frozen=True)
class TromboneGeometry:
  """The trombone relative to the mouthpiece (frame units, angles in radians)."""
  angle: float = 0.58  # The slide points forward and down by this much.
  brace_first: float = 0.125  # Mouthpiece to the slide brace in first position.
  slide_length: float = 0.43  # Mouthpiece to the slide's end (crook) in first position.
  slide_gap: float = 0.022  # Distance between the two slide tubes.
  bell_distance: float = 0.33  # Mouthpiece to the bell's rim, along the slide.
  bell_height: float = 0.050  # Bell axis above the slide axis.
  bell_radius: float = 0.060
  back: float = 0.10  # How far the tuning slide reaches behind the mouthpiece.


TROMBONE = TromboneGeometry()


def trombone_positions(notes):
  """Slide position 1-7 of each note, preferring small moves and low positions."""
  out, current = [], None
  for n in notes:
    options = [p for p in range(1, 8) if n.pitch + (p - 1) in TROMBONE_PARTIALS]
    if not options:  # Unreachable pitch (pedal tones): nearest partial, first position.
      options = [1]
    if current is None:
      best = min(options)
    else:
      best = min(options, key=lambda p: abs(p - current) * 1.0 + 0.35 * (p - 1))
    out.append(best)
    current = best
  return out


def _perform_trombone(piece, times, rng):
  notes = piece.notes
  g = TROMBONE
  positions = trombone_positions(notes)
  torso, head = _expressive(times, piece, rng, sway_amount=0.025)
  slide = Track(float(positions[0]) if notes else 1.0)
  kinds = []
  accents = []
  for k, n in enumerate(notes):
    window = n.start - (notes[k - 1].start if k else 0.0)
    moved = k > 0 and positions[k] != positions[k - 1]
    if moved:
      travel = abs(positions[k] - positions[k - 1])
      duration = float(np.clip(0.07 + 0.035 * travel, 0.07, 0.28))
      slide.move(n.start - min(duration, 0.75 * window), n.start, float(positions[k]))
      kinds.append("slide")
    else:
      kinds.append("articulation")
    accents.append(0.006 + 0.016 * (n.velocity / 127.0) * (1.6 if n.downbeat else 1.0))
  # Breathing: the chest fills during rests, the shoulders rise, the head lifts a little.
  breath = np.zeros_like(times)
  for r0, r1 in _rests(piece, 0.35):
    inside = (times >= r0) & (times < r1)
    breath[inside] = np.sin(np.pi * (times[inside] - r0) / (r1 - r0)) ** 2
  tongue = _bumps(times, [n.start for n in notes], accents, rise=0.04, fall=0.09)
  torso = torso - 0.03 * breath
  head = head - 0.035 * breath + tongue
  shrug = 0.10 * breath
  kp = _body(times, TROMBONE_LAYOUT, torso, shrug, head)
  idx = skeleton.INDEX
  head_angle = TROMBONE_LAYOUT.torso_angle + torso + head
  # The mouthpiece is at the lips; the instrument turns with the head.
  mouth = kp[:, idx["neck"]] + _rotate(np.array([0.062, -0.086]), head_angle)
  angle = g.angle + head_angle - TROMBONE_LAYOUT.torso_angle
  u = _dir(angle)
  n_up = _dir(angle - np.pi / 2)
  extension = (slide(times) - 1.0) * SLIDE_STEP
  brace = mouth + u * (g.brace_first + extension)[:, None]
  wrist_target = brace + n_up * (-0.028) - u * 0.012
  elbow, wrist = _two_bone(kp[:, idx["right_shoulder"]], wrist_target,
                           *TROMBONE_LAYOUT.arms[0], bend=1)
  kp[:, idx["right_elbow"]] = elbow
  kp[:, idx["right_wrist"]] = wrist
  # The hand grips the brace: fingers curl around it, pointing up across the slide.
  kp[:, skeleton.RIGHT_HAND] = _hand_points(
      wrist, angle - np.pi / 2 + 0.25, HAND, mirror=-1.0, flex=np.full((len(times), 4), 0.55),
      spread=0.05, thumb_angle=0.9, thumb_flex=0.2)
  # The left hand holds the instrument near the mouthpiece from below.
  left_target = mouth + u * 0.075 + n_up * (-0.045)
  elbow, wrist = _two_bone(kp[:, idx["left_shoulder"]], left_target,
                           *TROMBONE_LAYOUT.arms[1], bend=1)
  kp[:, idx["left_elbow"]] = elbow
  kp[:, idx["left_wrist"]] = wrist
  kp[:, skeleton.LEFT_HAND] = _hand_points(
      wrist, angle - np.pi / 2 + 0.1, HAND, mirror=-1.0, flex=np.full((len(times), 4), 0.6),
      spread=0.05, thumb_angle=0.8, thumb_flex=0.2)
  props = {"mouth": mouth.astype(np.float32), "angle": angle.astype(np.float32),
           "extension": extension.astype(np.float32)}
  return _finish(kp, props, np.array([n.start for n in notes]), kinds, "trombone")


def _finish(kp, props, events, kinds, instrument):
  keypoints = np.concatenate([kp, np.ones(kp.shape[:2] + (1,))], -1).astype(np.float32)
  return Performance(keypoints, props, np.asarray(events, np.float64), tuple(kinds),
                     instrument)
