"""Motion events of a keypoint track: bow reversals, slide moves, and how they meet the notes.

Does the arm that plays turn where the real one does and where the notes begin
(`stroke_scores`, `onset_hit`), and does it travel as far (`travel_ratio`)? A cellist's bow
changes direction when a new stroke begins; a trombone's slide arrives at its position as
the note begins. docs/motion_metrics.md gives the thresholds and how they were checked on
the virtual performer.

Tracks are float [T, 67, 2] or [T, 67, 3] (x, y in [0, 1] of the square frame, y down; an
optional confidence), at `fps` frames per second; lists hold one array per clip. Lengths are
measured in torso lengths (neck to mid-hip, the median over the frames considered), so the
values do not depend on how large the performer is in the frame. NumPy, deterministic.
"""

import numpy as np

from apvg_tf import instruments, skeleton
from apvg_tf.errors import InputError

_I = skeleton.INDEX

TOLERANCE_FRAMES = 2  # An event matches one at most this many frames away (the 2).
# ---------------------------------------------------------------- thresholds (torso lengths)
# The virtual performer's torso is 0.31 frame units (performer.TORSO); its shortest bow stroke
# is 0.12 bows x 0.355 = 0.043 (music.bowing, CelloGeometry), 0.14 torso lengths: half of it
# is a turn, while pose jitter (a pixel or two at 128 px, 0.025-0.05 torso) is not.
REVERSAL_TRAVEL = 0.07
# A turn that pauses (a stop at the frog, then a down-bow) is dated where the hand leaves
# it, where the new stroke begins: the last frame within this fraction of REVERSAL_TRAVEL of
# the extreme (0.0035 torso: a still hand, not the rounded bottom of a quick turn).
REVERSAL_PLATEAU = 0.05
# One slide position is performer.SLIDE_STEP = 0.040 frame units, 0.13 torso lengths: half of
# it is a move; nods and breaths do not change the coordinate (`slide_coordinate`).
SLIDE_TRAVEL = 0.065
# The performer's slowest slide move, one position in 0.105 s, averages 1.2 torso lengths per
# second (larger moves are faster): a fifth of it keeps a whole move, ramps included, one run.
SLIDE_SPEED = 0.25
# Gaussian std in frames of the light smoothing of a stroke coordinate before its events are
# found: it halves a pose estimator's frame-to-frame jitter, while at 1 frame it would round
# the performer's slide arrivals enough to date a quarter of them a frame late
# (docs/motion_metrics.md).
SMOOTHING_FRAMES = 0.7

_BOWED = ("violin", "viola", "cello", "double_bass")
_SLIDE = ("trombone",)


# --------------------------------------------------------------------------- input checks


def check_track(track, name="track"):
  """A keypoint track as float64 [T, 67, 2] with missing points filled in.

  A point with confidence 0 (third column) is interpolated linearly over time from the
  frames where it was seen (held at the ends); a point never seen in the track is held at
  the mean of the seen points, so it adds no motion.

  Args:
    track: float [T, 67, 2] or [T, 67, 3].
    name: what to call it in an error message.

  Returns:
    float64 [T, 67, 2].

  Raises:
    InputError: if the shape is not [T, 67, 2 or 3] with T >= 3, or a value is not finite.
  """
  try:
    array = np.asarray(track, np.float64)
  except (TypeError, ValueError) as e:
    raise InputError(f"{name} must be a numeric keypoint array [T, 67, 2] or [T, 67, 3]; it "
                     f"cannot be read as one ({e})") from e
  if array.ndim != 3 or array.shape[1] != skeleton.NUM_KEYPOINTS or array.shape[2] not in (
      2, 3) or len(array) < 3:
    raise InputError(f"{name} must be a keypoint track of shape [T, 67, 2] or [T, 67, 3] with "
                     f"T >= 3 frames; got shape {array.shape}")
  if not np.all(np.isfinite(array)):
    raise InputError(f"{name} has values that are not finite (NaN or infinity)")
  xy = array[..., :2].copy()
  if array.shape[2] == 2:
    return xy
  seen = array[..., 2] > 0
  if not seen.any():
    raise InputError(f"{name} has no point with confidence > 0")
  frames = np.arange(len(xy))
  centre = xy[seen].mean(0)
  for k in np.flatnonzero(~seen.all(0)):
    if not seen[:, k].any():
      xy[:, k] = centre
      continue
    for c in range(2):
      xy[:, k, c] = np.interp(frames, frames[seen[:, k]], xy[seen[:, k], k, c])
  return xy


def check_clips(tracks, name):
  """Checked tracks of a list of clips; InputError for anything but a non-empty list."""
  if not isinstance(tracks, (list, tuple)) or not tracks:
    got = f"an empty {type(tracks).__name__}" if isinstance(tracks, (list, tuple)) else (
        f"a {type(tracks).__name__}")
    raise InputError(f"{name} must be a non-empty list of keypoint tracks, one [T, 67, 2] or "
                     f"[T, 67, 3] array per clip; got {got}")
  return [check_track(t, f"{name}[{k}]") for k, t in enumerate(tracks)]


def check_pairs(pred_tracks, real_tracks):
  pred, real = check_clips(pred_tracks, "pred_tracks"), check_clips(real_tracks, "real_tracks")
  if len(pred) != len(real):
    raise InputError(f"pred_tracks has {len(pred)} clips but real_tracks has {len(real)}; "
                     "give one generated track per true one, in the same order")
  for k, (p, r) in enumerate(zip(pred, real)):
    if len(p) != len(r):
      raise InputError(f"clip {k}: the generated track has {len(p)} frames and the true one "
                       f"{len(r)}; they must cover the same frames")
  return pred, real


def check_fps(fps):
  try:
    value = float(fps)
  except (TypeError, ValueError):
    value = float("nan")
  if not np.isfinite(value) or value <= 0:
    raise InputError(f"fps must be a positive number of frames per second; got {fps!r}")
  return value


# --------------------------------------------------------------------------- shared geometry


def torso_length(xy):
  """Median neck to mid-hip distance over frames: float [T, 67, 2] -> float (frame units).

  At least 1e-3 frame units, so a collapsed skeleton scales to large values instead of
  dividing by zero.
  """
  length = np.linalg.norm(xy[:, _I["neck"]] - xy[:, _I["mid_hip"]], axis=-1)
  return max(float(np.median(length)), 1e-3)


def _smooth(x, sigma):
  """Gaussian smoothing of float [T] with std `sigma` frames, the ends held: float64 [T]."""
  x = np.asarray(x, np.float64)
  if sigma <= 0:
    return x
  radius = int(np.ceil(4 * sigma))
  kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
  return np.convolve(np.pad(x, radius, mode="edge"), kernel / kernel.sum(), mode="valid")


# --------------------------------------------------------------------------- motion events


def bow_coordinate(track, side="right"):
  """The bow hand's position along its main axis, per frame, in torso lengths.

  The wrist's positions over the clip, centred and projected onto their first principal
  direction (the way the bow travels, whatever the instrument's angle in the frame).

  Args:
    track: float [T, 67, 2] (a checked track).
    side: the bow arm ('right').

  Returns:
    float64 [T] (its sign is arbitrary; reversals do not depend on it).
  """
  wrist = track[:, _I[f"{side}_wrist"]]
  centred = wrist - wrist.mean(0)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  return centred @ vt[0] / torso_length(track)


def slide_coordinate(track, side="right"):
  """The trombone slide's extension, per frame: slide wrist to nose distance in torso lengths.

  The mouthpiece sits at the lips and the instrument turns with the head, so the distance
  from the nose to the slide hand changes with the slide alone; the wrist's image position
  would also move with every nod and breath (performer.py: slope 0.97 of the extension).

  Args:
    track: float [T, 67, 2] (a checked track).
    side: the slide arm ('right').

  Returns:
    float64 [T].
  """
  distance = np.linalg.norm(track[:, _I[f"{side}_wrist"]] - track[:, _I["nose"]], axis=-1)
  return distance / torso_length(track)


def reversals(coordinate, travel=REVERSAL_TRAVEL, plateau=REVERSAL_PLATEAU,
              smoothing=SMOOTHING_FRAMES):
  """Frames where a 1D motion turns back, ignoring swings shorter than `travel`.

  Hysteresis (a zigzag): the running extreme of the current swing is followed; once the
  coordinate has come back from it by `travel`, the extreme is a turn. A turn that pauses
  is dated where the hand leaves it (the last frame within `plateau` x `travel` of the
  extreme), which is where the new stroke begins. The first motion of a clip (from rest)
  is not a turn.

  Args:
    coordinate: float [T], e.g. `bow_coordinate`.
    travel: the smallest swing on each side of a turn (the coordinate's units).
    plateau: fraction of `travel` within which the hand is still at the turn.
    smoothing: Gaussian std in frames applied first (0: none).

  Returns:
    int64 [E] frame indices, increasing.
  """
  p = _smooth(coordinate, smoothing)
  events = []
  trend, low, high, extreme = 0, 0, 0, 0
  for t in range(1, len(p)):
    if trend == 0:
      low = t if p[t] < p[low] else low
      high = t if p[t] > p[high] else high
      if p[t] - p[low] >= travel:
        trend, extreme = 1, t
      elif p[high] - p[t] >= travel:
        trend, extreme = -1, t
    elif trend * (p[t] - p[extreme]) > 0:
      extreme = t
    elif trend * (p[extreme] - p[t]) >= travel:
      turn = extreme
      while turn + 1 < t and abs(p[turn + 1] - p[extreme]) <= plateau * travel:
        turn += 1
      events.append(turn)
      trend, extreme = -trend, t
  return np.asarray(events, np.int64)


def moves(coordinate, fps, speed=SLIDE_SPEED, travel=SLIDE_TRAVEL, smoothing=SMOOTHING_FRAMES):
  """Frames where a 1D motion arrives after a move of at least `travel`.

  A move is a run of frame-to-frame steps faster than `speed` (per second) in one direction;
  its arrival is the first frame after the run. A trombonist moves the slide between notes
  and the note begins when it arrives (performer.py: the slide "arrives at its onset"), so
  the arrival, not the start, is the stroke's event.

  Args:
    coordinate: float [T], e.g. `slide_coordinate`.
    fps: frames per second.
    speed: the slowest step of a move (coordinate units per second).
    travel: the smallest move (coordinate units).
    smoothing: Gaussian std in frames applied first (0: none).

  Returns:
    int64 [E] frame indices, increasing.
  """
  p = _smooth(coordinate, smoothing)
  step = np.diff(p) * fps  # Step t goes from frame t to frame t + 1.
  direction = np.where(step > speed, 1, np.where(step < -speed, -1, 0))
  events, start = [], 0
  for t in range(1, len(step) + 1):
    if t < len(step) and direction[t] == direction[start]:
      continue
    if direction[start] != 0 and abs(p[t] - p[start]) >= travel:
      events.append(t)  # Steps start .. t-1 move; frame t is the first at rest.
    start = t
  return np.asarray(events, np.int64)


def motion_events(track, fps, instrument):
  """The frames of the instrument's motion events in one clip.

  Bowed strings (violin, viola, cello, double bass): the bow's reversals (`reversals` of
  `bow_coordinate`). Trombone: the slide's arrivals (`moves` of `slide_coordinate`).

  Args:
    track: float [T, 67, 2 or 3].
    fps: frames per second.
    instrument: an instrument name (`instruments.NAMES`).

  Returns:
    int64 [E] frame indices, increasing.

  Raises:
    InputError: bad shape, unknown instrument, or one with no moving-arm events (winds
      other than the trombone move no single arm).
  """
  name = instruments.check(instrument)
  xy = check_track(track)
  side = instruments.moving_arms(name)[0]
  if name in _BOWED:
    return reversals(bow_coordinate(xy, side))
  if name in _SLIDE:
    return moves(slide_coordinate(xy, side), check_fps(fps))
  raise InputError(f"{name} has no moving-arm events (bow reversals are for "
                   f"{', '.join(_BOWED)}; slide moves for trombone)")


def match_events(pred, real, tolerance=TOLERANCE_FRAMES):
  """The number of one-to-one matches between two sets of event frames within `tolerance`.

  In time order, each event is matched to the earliest unmatched one of the other set
  within the tolerance; on a line this gives the largest matching.

  Args:
    pred: int [E] frames.
    real: int [F] frames.
    tolerance: the largest |pred - real| of a match, in frames.

  Returns:
    int, the number of matched pairs.
  """
  pred, real = np.sort(np.asarray(pred)), np.sort(np.asarray(real))
  i = j = matched = 0
  while i < len(pred) and j < len(real):
    if abs(pred[i] - real[j]) <= tolerance:
      matched, i, j = matched + 1, i + 1, j + 1
    elif pred[i] < real[j]:
      i += 1
    else:
      j += 1
  return matched


def _precision_recall_f1(matched, predicted, true):
  """Precision, recall and F1 of pooled counts; with nothing to find, all 1 if nothing claimed."""
  if predicted == 0 and true == 0:
    return 1.0, 1.0, 1.0
  precision = matched / predicted if predicted else 0.0
  recall = matched / true if true else 0.0
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return precision, recall, f1


def stroke_scores(pred_tracks, real_tracks, fps, instrument, tolerance=TOLERANCE_FRAMES):
  """Stroke precision, recall and F1 of generated against true motion events.

  Events (`motion_events`) of each generated clip are matched one-to-one with the true
  clip's within `tolerance` frames; counts are pooled over clips.

  Args:
    pred_tracks: list of float [T_c, 67, 2 or 3].
    real_tracks: list of float [T_c, 67, 2 or 3], the same lengths.
    fps: frames per second.
    instrument: an instrument name.
    tolerance: frames.

  Returns:
    dict with stroke_precision, stroke_recall, stroke_f1.
  """
  pred, real = check_pairs(pred_tracks, real_tracks)
  fps = check_fps(fps)
  pred_events = [motion_events(t, fps, instrument) for t in pred]
  real_events = [motion_events(t, fps, instrument) for t in real]
  return _stroke_scores(pred_events, real_events, tolerance)


def _stroke_scores(pred_events, real_events, tolerance):
  matched = sum(match_events(p, r, tolerance) for p, r in zip(pred_events, real_events))
  precision, recall, f1 = _precision_recall_f1(
      matched, sum(map(len, pred_events)), sum(map(len, real_events)))
  return {"stroke_precision": precision, "stroke_recall": recall, "stroke_f1": f1}


def stroke_precision(pred_tracks, real_tracks, fps, instrument, tolerance=TOLERANCE_FRAMES):
  """Fraction of generated motion events with a true one within `tolerance` frames."""
  return stroke_scores(pred_tracks, real_tracks, fps, instrument, tolerance)["stroke_precision"]


def stroke_recall(pred_tracks, real_tracks, fps, instrument, tolerance=TOLERANCE_FRAMES):
  """Fraction of true motion events with a generated one within `tolerance` frames."""
  return stroke_scores(pred_tracks, real_tracks, fps, instrument, tolerance)["stroke_recall"]


def stroke_f1(pred_tracks, real_tracks, fps, instrument, tolerance=TOLERANCE_FRAMES):
  """Harmonic mean of `stroke_precision` and `stroke_recall` (1: every stroke where it was)."""
  return stroke_scores(pred_tracks, real_tracks, fps, instrument, tolerance)["stroke_f1"]


def _onset_hits(events, onsets, fps, tolerance):
  """(onsets with an event within `tolerance` frames, onsets) of one clip."""
  onsets = np.asarray(onsets, np.float64).reshape(-1)
  if len(onsets) == 0:
    return 0, 0
  if len(events) == 0:
    return 0, len(onsets)
  times = np.asarray(events, np.float64) / fps
  nearest = np.min(np.abs(onsets[:, None] - times[None]), 1)
  # A hair of slack: an event exactly `tolerance` frames away must count despite rounding.
  return int(np.sum(nearest <= (tolerance + 1e-6) / fps)), len(onsets)


def onset_hit(tracks, onsets, fps, instrument, tolerance=TOLERANCE_FRAMES):
  """Fraction of note onsets with a motion event within `tolerance` frames, pooled over clips.

  Args:
    tracks: list of float [T_c, 67, 2 or 3].
    onsets: list (one per clip) of float [O_c] onset times in seconds (e.g.
      `metrics.audio_onsets(waveform, sample_rate)`).
    fps: frames per second.
    instrument: an instrument name.
    tolerance: frames.

  Returns:
    float in [0, 1]; NaN if there are no onsets at all.

  Raises:
    InputError: bad shapes, or not one onset array per clip.
  """
  clips = check_clips(tracks, "tracks")
  check_onsets(onsets, len(clips))
  fps = check_fps(fps)
  return _onset_hit([motion_events(t, fps, instrument) for t in clips], onsets, fps, tolerance)


def check_onsets(onsets, count):
  if isinstance(onsets, np.ndarray) or not isinstance(onsets, (list, tuple)) or len(
      onsets) != count:
    raise InputError(f"onsets must be a list of {count} arrays of onset times in seconds, one "
                     f"per clip; got {type(onsets).__name__}"
                     + (f" of length {len(onsets)}" if isinstance(onsets, (list, tuple)) else ""))


def _onset_hit(events, onsets, fps, tolerance):
  hits = [_onset_hits(e, o, fps, tolerance) for e, o in zip(events, onsets)]
  total = sum(h[1] for h in hits)
  return sum(h[0] for h in hits) / total if total else float("nan")


def path_length(track, instrument):
  """Total path length of the moving arm's wrist(s) over a clip, in frame units.

  Args:
    track: float [T, 67, 2 or 3].
    instrument: an instrument name (its `instruments.moving_arms`).

  Returns:
    float >= 0.
  """
  xy = check_track(track)
  wrists = [_I[f"{side}_wrist"] for side in instruments.moving_arms(instrument)]
  return float(np.linalg.norm(np.diff(xy[:, wrists], axis=0), axis=-1).sum())


def travel_ratio(pred_tracks, real_tracks, instrument):
  """The moving hand's path length, generated over true, summed over clips.

  1 when the generated bow or slide hand travels as far as the true one; below 1 for a
  timid (averaged) hand, above 1 for a restless one.

  Args:
    pred_tracks: list of float [T_c, 67, 2 or 3].
    real_tracks: list of float [T_c, 67, 2 or 3], the same lengths.
    instrument: an instrument name.

  Returns:
    float >= 0; NaN if the true hand never moves.
  """
  pred, real = check_pairs(pred_tracks, real_tracks)
  return _travel_ratio(pred, real, instrument)


def _travel_ratio(pred, real, instrument):
  total = sum(path_length(t, instrument) for t in real)
  return sum(path_length(t, instrument) for t in pred) / total if total > 0 else float("nan")


def event_metrics(pred_tracks, real_tracks, onsets, fps, instrument,
                  tolerance=TOLERANCE_FRAMES):
  """The event metrics of generated clips against the true ones (DESIGN.md names).

  Args:
    pred_tracks: list of float [T_c, 67, 2 or 3], the generated clips.
    real_tracks: list of float [T_c, 67, 2 or 3], the true clips, same order and lengths.
    onsets: list of float [O_c] note onset times in seconds, one array per clip.
    fps: frames per second.
    instrument: an instrument name (`instruments.NAMES`).
    tolerance: frames within which events match (strokes, onsets).

  Returns:
    dict of floats: stroke_precision, stroke_recall, stroke_f1, onset_hit, onset_hit_real,
    travel_ratio. The stroke and onset metrics are NaN for instruments without moving-arm
    events (winds other than the trombone).

  Raises:
    InputError: bad shapes, empty or mismatched lists, an unknown instrument.
  """
  pred, real = check_pairs(pred_tracks, real_tracks)
  check_onsets(onsets, len(real))
  fps = check_fps(fps)
  name = instruments.check(instrument)
  result = {"travel_ratio": _travel_ratio(pred, real, name)}
  if name in _BOWED + _SLIDE:
    pred_events = [motion_events(t, fps, name) for t in pred]
    real_events = [motion_events(t, fps, name) for t in real]
    result.update(_stroke_scores(pred_events, real_events, tolerance))
    result["onset_hit"] = _onset_hit(pred_events, onsets, fps, tolerance)
    result["onset_hit_real"] = _onset_hit(real_events, onsets, fps, tolerance)
  else:
    result.update({key: float("nan") for key in ("stroke_precision", "stroke_recall",
                                                   "stroke_f1", "onset_hit", "onset_hit_real")})
  return result
