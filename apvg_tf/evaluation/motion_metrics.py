"""Motion metrics of a keypoint track against the true one: FID_k, FID_g, diversity, strokes.

What a viewer of a performance checks, beside the keypoint distance (`metrics.py`): does the
motion look like the performer's as a whole (`fid_k`, `fid_g`: AIST++'s kinetic and
geometric Frechet distances, adapted to the 67-point 2D skeleton of a seated player), does
it vary as much (`div_k`, `div_g`), and does the arm that plays turn where the real one does
and where the notes begin (`stroke_f1`, `onset_hit`), and as far (`travel_ratio`).
docs/motion_metrics.md lists the features, the relations and the thresholds.

Tracks are float [T, 67, 2] or [T, 67, 3] (x, y in [0, 1] of the square frame, y down; an
optional confidence), at `fps` frames per second; lists hold one array per clip. Lengths are
measured in torso lengths (neck to mid-hip, the median over the frames considered), so the
values do not depend on how large the performer is in the frame. Everything here is NumPy
and deterministic.
"""

import numpy as np

from apvg_tf import skeleton
from apvg_tf.errors import InputError
from apvg_tf.evaluation import motion_events
from apvg_tf.evaluation.motion_events import TOLERANCE_FRAMES, torso_length
from apvg_tf.metrics import frechet_distance

_I = skeleton.INDEX

SEGMENT_FRAMES = 60  # 2 s at 30 fps: several bow strokes or slide moves per segment.

# -------------------------------------------------- joints of the features (seated players)
# Legs and hips: a seated player's are still and often hidden by the instrument, so they
# would add dimensions of no variance; the face is the nose (eyes and ears follow it).
KINETIC_JOINTS = ("nose", "neck", "right_shoulder", "left_shoulder", "right_elbow",
                  "left_elbow", "right_wrist", "left_wrist")
_FINGERS = {side: np.arange(part.start + 1, part.stop)
            for side, part in (("right", skeleton.RIGHT_HAND), ("left", skeleton.LEFT_HAND))}
KINETIC_FEATURE_NAMES = tuple(
    f"{joint}:{kind}" for joint in KINETIC_JOINTS + ("right_fingers", "left_fingers")
    for kind in ("horizontal_energy", "vertical_energy", "acceleration"))

# Thresholds of the relations, set where the virtual performer's motion crosses them part
# of the time (docs/motion_metrics.md lists how often). Speeds are torso lengths per second.
HAND_SPEED = 0.15  # About half the slowest bow stroke (0.88 bow over a 3.6 s note, 0.28/s).
HEAD_SPEED = 0.04  # Head tilts on beats reach 0.07-0.15/s (5 % and 95 % of frames).
TRUNK_SPEED = 0.02  # Phrase sway and idle drift of the neck over the hips: 0.03-0.07/s.
ELBOW_CLOSED = 60.0  # Degrees of shoulder-elbow-wrist: seated players rarely straighten
ELBOW_OPEN = 90.0  # the arm; the bow and slide arms open past a right angle at the far end.
HANDS_APART = 1.0  # Torso lengths between the wrists.
HANDS_TOGETHER = 0.5
_ARM_RELATIONS = ("elbow_closed", "elbow_open", "wrist_above_shoulder_line",
                  "wrist_below_elbow", "hand_toward_centre", "hand_away_from_centre",
                  "hand_moving_left", "hand_moving_right", "hand_moving_up",
                  "hand_moving_down", "fingers_moving")
GEOMETRIC_FEATURE_NAMES = tuple(
    f"{side}_{name}" for side in ("right", "left") for name in _ARM_RELATIONS) + (
        "hands_apart", "hands_together", "head_tilting_left", "head_tilting_right",
        "head_nodding", "trunk_swaying_left", "trunk_swaying_right")

def segments(tracks, segment_frames=SEGMENT_FRAMES, hop=None):
  """Cuts each clip into windows of `segment_frames` frames, every `hop` frames.

  Args:
    tracks: list of float [T, 67, 2] (checked tracks).
    segment_frames: W, frames per segment.
    hop: frames between segment starts (default W // 2). A clip shorter than W gives none.

  Returns:
    list of float [W, 67, 2].
  """
  hop = hop or max(1, segment_frames // 2)
  return [t[s:s + segment_frames] for t in tracks
          for s in range(0, len(t) - segment_frames + 1, hop)]


# --------------------------------------------------------------------------- kinetic features


def _kinetic(points, fps):
  """Per joint of [W, J, 2]: mean v_x^2, mean v_y^2, mean |a| (forward differences): [J, 3]."""
  velocity = np.diff(points, axis=0) * fps  # [W-1, J, 2]
  acceleration = np.linalg.norm(np.diff(velocity, axis=0) * fps, axis=-1)  # [W-2, J]
  return np.stack([np.mean(velocity[..., 0] ** 2, 0), np.mean(velocity[..., 1] ** 2, 0),
                   np.mean(acceleration, 0)], -1)


def kinetic_features(segment, fps):
  """AIST++'s kinetic features of one segment, per joint, in torso lengths.

  Per joint of KINETIC_JOINTS: the mean squared horizontal velocity, the mean squared
  vertical velocity (AIST++'s kinetic energies, without the mass) and the mean magnitude of
  the acceleration (its energy expenditure), from forward differences at `fps`. The 20
  finger points of each hand are pooled into one joint (the mean of their features), with
  their positions taken relative to the wrist: the wrist already carries the hand's motion,
  and 40 finger joints would outnumber the segments a test split gives.

  Args:
    segment: float [W, 67, 2] (W >= 3).
    fps: frames per second.

  Returns:
    float64 [30] in the order of KINETIC_FEATURE_NAMES (10 joints x 3).
  """
  xy = segment / torso_length(segment)
  body = _kinetic(xy[:, [_I[j] for j in KINETIC_JOINTS]], fps)  # [8, 3]
  fingers = [_kinetic(xy[:, _FINGERS[side]] - xy[:, _I[f"{side}_wrist"]][:, None], fps).mean(0)
             for side in ("right", "left")]
  return np.concatenate([body.reshape(-1)] + fingers)


# --------------------------------------------------------------------------- geometric features


def _interior_angle(a, b, c):
  """Angle at b in degrees of the triangle a-b-c, per frame: 3 x [W, 2] -> [W]."""
  u, v = a - b, c - b
  cos = np.sum(u * v, -1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1),
                                       1e-12)
  return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _above_line(point, a, b):
  """True where `point` is above (smaller y) the line through a and b: 3 x [W, 2] -> [W]."""
  dx = b[:, 0] - a[:, 0]
  dx = np.where(np.abs(dx) < 1e-9, 1e-9, dx)
  line_y = a[:, 1] + (point[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]) / dx
  return point[:, 1] < line_y


def geometric_relations(segment, fps):
  """The boolean relations of a seated player, per frame (AIST++'s geometric features).

  In the order of GEOMETRIC_FEATURE_NAMES. Per arm (right, then left): elbow closed
  (shoulder-elbow-wrist angle < ELBOW_CLOSED degrees) or open (> ELBOW_OPEN); wrist above
  the shoulder line; wrist below the elbow; hand moving toward or away from the body centre
  (the middle of neck and mid-hip); hand moving left, right, up or down; fingers moving
  relative to the wrist (mean speed); all speeds above HAND_SPEED. Then: hands apart
  (> HANDS_APART) or together (< HANDS_TOGETHER); head tilting left or right (the nose's
  speed across the neck-nose line) or nodding (that line lengthening or shortening), above
  HEAD_SPEED; trunk swaying left or right (the neck's horizontal speed over the mid-hip's),
  above TRUNK_SPEED. Velocities are central differences at `fps`, in torso lengths.

  Args:
    segment: float [W, 67, 2].
    fps: frames per second.

  Returns:
    bool [W, 29].
  """
  xy = segment / torso_length(segment)
  velocity = np.gradient(xy, axis=0) * fps  # [W, 67, 2]
  centre = 0.5 * (xy[:, _I["neck"]] + xy[:, _I["mid_hip"]])
  columns = []
  for side in ("right", "left"):
    shoulder, elbow, wrist = (xy[:, _I[f"{side}_{j}"]] for j in ("shoulder", "elbow", "wrist"))
    angle = _interior_angle(shoulder, elbow, wrist)
    radial = np.gradient(np.linalg.norm(wrist - centre, axis=-1)) * fps
    hand = velocity[:, _I[f"{side}_wrist"]]
    fingers = np.linalg.norm(velocity[:, _FINGERS[side]] - hand[:, None], axis=-1).mean(1)
    columns += [angle < ELBOW_CLOSED, angle > ELBOW_OPEN,
                _above_line(wrist, xy[:, _I["right_shoulder"]], xy[:, _I["left_shoulder"]]),
                wrist[:, 1] > elbow[:, 1], radial < -HAND_SPEED, radial > HAND_SPEED,
                hand[:, 0] < -HAND_SPEED, hand[:, 0] > HAND_SPEED,
                hand[:, 1] < -HAND_SPEED, hand[:, 1] > HAND_SPEED, fingers > HAND_SPEED]
  apart = np.linalg.norm(xy[:, _I["right_wrist"]] - xy[:, _I["left_wrist"]], axis=-1)
  head = xy[:, _I["nose"]] - xy[:, _I["neck"]]
  head_length = np.maximum(np.linalg.norm(head, axis=-1), 1e-9)
  turn = velocity[:, _I["nose"]] - velocity[:, _I["neck"]]
  # Positive: clockwise in the image (y down), the nose of an upright head moving right.
  tilt = (head[:, 0] * turn[:, 1] - head[:, 1] * turn[:, 0]) / head_length
  nod = np.gradient(head_length) * fps
  trunk = velocity[:, _I["neck"], 0] - velocity[:, _I["mid_hip"], 0]
  columns += [apart > HANDS_APART, apart < HANDS_TOGETHER, tilt < -HEAD_SPEED,
              tilt > HEAD_SPEED, np.abs(nod) > HEAD_SPEED, trunk < -TRUNK_SPEED,
              trunk > TRUNK_SPEED]
  return np.stack(columns, -1)


def geometric_features(segment, fps):
  """The fraction of the segment's frames in which each relation holds: float64 [29]."""
  return geometric_relations(segment, fps).mean(0)


def segment_features(tracks, fps, segment_frames=SEGMENT_FRAMES, hop=None):
  """Kinetic and geometric features of every segment of every clip.

  Args:
    tracks: list of float [T, 67, 2] (checked tracks).
    fps: frames per second.
    segment_frames: W.
    hop: frames between segment starts (default W // 2).

  Returns:
    (float64 [N, 30], float64 [N, 29]), N segments.

  Raises:
    InputError: if no clip is as long as one segment.
  """
  if int(segment_frames) != segment_frames or segment_frames < 3 or (
      hop is not None and (int(hop) != hop or hop < 1)):
    raise InputError(f"segment_frames must be a whole number of frames >= 3 (accelerations "
                     f"need 3) and hop a whole number >= 1; got {segment_frames} and {hop}")
  cut = segments(tracks, int(segment_frames), hop and int(hop))
  if not cut:
    raise InputError(f"no clip has {segment_frames} frames, the length of one segment; give "
                     "longer clips or a smaller segment_frames")
  return (np.stack([kinetic_features(s, fps) for s in cut]),
          np.stack([geometric_features(s, fps) for s in cut]))


# --------------------------------------------------------------------------- FID and diversity


def normalise(features, reference, floor):
  """Z-scores features with the reference (real) set's mean and std, as AIST++ does.

  A feature whose real spread is below `floor` is divided by `floor` instead: a relation the
  real performer never shows (std 0) would otherwise weigh infinitely.

  Args:
    features: float [N, F].
    reference: float [M, F], the real segments' features.
    floor: float [F] or scalar, the smallest std used.

  Returns:
    float64 [N, F].
  """
  reference = np.asarray(reference, np.float64)
  std = np.maximum(reference.std(0), floor)
  return (np.asarray(features, np.float64) - reference.mean(0)) / np.maximum(std, 1e-12)


def kinetic_floor(reference):
  """The std floor of each kinetic feature: a tenth of the largest std of its kind.

  Per kind (horizontal energy, vertical energy, acceleration), over the joints: a seated
  player's neck and shoulders barely move, and dividing by their near-zero spread would let
  a trace of jitter there outweigh the whole bow arm.

  Args:
    reference: float [M, 30], the real segments' kinetic features.

  Returns:
    float64 [30].
  """
  std = np.asarray(reference, np.float64).std(0).reshape(-1, 3)  # [joints, kinds]
  return np.broadcast_to(0.1 * std.max(0), std.shape).reshape(-1)


def geometric_floor(segment_frames):
  """The std floor of geometric features: one frame of a segment (the smallest fraction)."""
  return 1.0 / segment_frames


def _fid(pred, real, floor, reference=None):
  """Frechet distance of normalised features (with the `reference` set's statistics)."""
  if len(pred) < 2 or len(real) < 2:
    raise InputError(f"a Frechet distance needs at least 2 segments in each set to fit a "
                     f"covariance; got {len(pred)} and {len(real)}: give longer clips or a "
                     "smaller segment_frames")
  reference = real if reference is None else reference
  return max(0.0, frechet_distance(normalise(pred, reference, floor),
                                   normalise(real, reference, floor)))


def mean_pairwise_distance(features):
  """AIST++'s diversity: mean Euclidean distance over all pairs of rows of [N, F] (0 if N < 2)."""
  features = np.asarray(features, np.float64)
  count = len(features)
  if count < 2:
    return 0.0
  # Row by row rather than through the Gram matrix, whose cancellation would leave
  # 1e-8-sized distances between identical rows.
  total = sum(np.linalg.norm(features[i + 1:] - features[i], axis=1).sum()
              for i in range(count - 1))
  return float(total / (count * (count - 1) / 2))


def _features_of(pred_tracks, real_tracks, fps, segment_frames, hop, kind):
  """Checked inputs -> (generated, true) segment features of `kind` (0 kinetic, 1 geometric)."""
  fps = motion_events.check_fps(fps)
  pred = motion_events.check_clips(pred_tracks, "pred_tracks")
  real = motion_events.check_clips(real_tracks, "real_tracks")
  return (segment_features(pred, fps, segment_frames, hop)[kind],
          segment_features(real, fps, segment_frames, hop)[kind])


def fid_k(pred_tracks, real_tracks, fps, segment_frames=SEGMENT_FRAMES, hop=None):
  """Kinetic Frechet distance of generated against true motion (lower: closer).

  Both sets of segment `kinetic_features` are z-scored with the true set's mean and std
  (std floored at `kinetic_floor`), then a Gaussian is fitted to each and their Frechet
  distance taken (`metrics.frechet_distance`). 30 dimensions: with fewer segments than that
  the covariances are singular; the distance stays exact but is biased up, so compare
  values over the same number of segments.

  Args:
    pred_tracks: list of float [T_c, 67, 2 or 3], the generated clips.
    real_tracks: list of float [T_c', 67, 2 or 3], the true clips (any number, any length).
    fps: frames per second.
    segment_frames: W, frames per segment.
    hop: frames between segment starts (default W // 2).

  Returns:
    float >= 0.

  Raises:
    InputError: bad shapes, empty lists, or fewer than 2 segments in a set.
  """
  pred, real = _features_of(pred_tracks, real_tracks, fps, segment_frames, hop, 0)
  return _fid(pred, real, kinetic_floor(real))


def fid_g(pred_tracks, real_tracks, fps, segment_frames=SEGMENT_FRAMES, hop=None):
  """Geometric Frechet distance of generated against true motion (lower: closer).

  As `fid_k`, on `geometric_features` (the fraction of frames each relation of a seated
  player holds; 29 dimensions), std floored at `geometric_floor`.

  Args:
    pred_tracks: list of float [T_c, 67, 2 or 3].
    real_tracks: list of float [T_c', 67, 2 or 3].
    fps: frames per second.
    segment_frames: W.
    hop: frames between segment starts (default W // 2).

  Returns:
    float >= 0.

  Raises:
    InputError: bad shapes, empty lists, or fewer than 2 segments in a set.
  """
  pred, real = _features_of(pred_tracks, real_tracks, fps, segment_frames, hop, 1)
  return _fid(pred, real, geometric_floor(segment_frames))


def _halves(tracks):
  """Each clip's first and second half in time: two lists of tracks."""
  return [t[:len(t) // 2] for t in tracks], [t[len(t) // 2:] for t in tracks]


def fid_floor(real_tracks, fps, segment_frames=SEGMENT_FRAMES, hop=None):
  """The real-against-real floor of FID_k and FID_g: first halves against second halves.

  Each true clip is cut in two halves in time; the Frechet distance of the first halves'
  segments against the second halves', normalised with the statistics of all true segments
  (as `fid_k` and `fid_g` are). What a generated motion as good as the performer's own other
  half scores; it is biased up by having half the segments.

  Args:
    real_tracks: list of float [T_c, 67, 2 or 3].
    fps: frames per second.
    segment_frames: W.
    hop: frames between segment starts (default W // 2).

  Returns:
    dict with fid_k_real and fid_g_real.

  Raises:
    InputError: bad shapes, empty list, or a half with fewer than 2 segments.
  """
  fps = motion_events.check_fps(fps)
  real = motion_events.check_clips(real_tracks, "real_tracks")
  return _fid_floor(real, fps, segment_frames, hop,
                    *segment_features(real, fps, segment_frames, hop))


def _fid_floor(real, fps, segment_frames, hop, kinetic, geometric):
  """`fid_floor` of checked tracks, given all their segments' features (the normalisation)."""
  first, second = _halves(real)
  k1, g1 = segment_features(first, fps, segment_frames, hop)
  k2, g2 = segment_features(second, fps, segment_frames, hop)
  return {"fid_k_real": _fid(k1, k2, kinetic_floor(kinetic), reference=kinetic),
          "fid_g_real": _fid(g1, g2, geometric_floor(segment_frames), reference=geometric)}


def div_k(pred_tracks, real_tracks, fps, segment_frames=SEGMENT_FRAMES, hop=None):
  """Kinetic diversity: mean pairwise distance of the generated segments' normalised features.

  Normalised with the true set's statistics (as for `fid_k`); the true set's own value is
  `div_k(real_tracks, real_tracks, ...)`. Higher: more varied motion.

  Args:
    pred_tracks: list of float [T_c, 67, 2 or 3].
    real_tracks: list of float [T_c', 67, 2 or 3] (the normalisation).
    fps: frames per second.
    segment_frames: W.
    hop: frames between segment starts (default W // 2).

  Returns:
    float >= 0.
  """
  pred, real = _features_of(pred_tracks, real_tracks, fps, segment_frames, hop, 0)
  return mean_pairwise_distance(normalise(pred, real, kinetic_floor(real)))


def div_g(pred_tracks, real_tracks, fps, segment_frames=SEGMENT_FRAMES, hop=None):
  """Geometric diversity: `div_k` (same arguments) on the geometric features, whose std
  floor is `geometric_floor`."""
  pred, real = _features_of(pred_tracks, real_tracks, fps, segment_frames, hop, 1)
  return mean_pairwise_distance(normalise(pred, real, geometric_floor(segment_frames)))


# --------------------------------------------------------------------------- all of them


def motion_metrics(pred_tracks, real_tracks, onsets, fps, instrument,
                   segment_frames=SEGMENT_FRAMES, hop=None, tolerance=TOLERANCE_FRAMES):
  """Every motion metric of generated clips against the true ones (DESIGN.md names).

  Args:
    pred_tracks, real_tracks, onsets, fps, instrument, tolerance: as
      `motion_events.event_metrics`'s.
    segment_frames: frames per segment of the FID and diversity features.
    hop: frames between segment starts (default segment_frames // 2).

  Returns:
    dict of floats: fid_k, fid_g, fid_k_real, fid_g_real (the real-against-real floor,
    `fid_floor`; NaN if half clips give fewer than 2 segments), div_k, div_g, div_k_real,
    div_g_real, stroke_f1, stroke_precision, stroke_recall, onset_hit, onset_hit_real,
    travel_ratio. The stroke and onset metrics are NaN for instruments without moving-arm
    events (winds other than the trombone).

  Raises:
    InputError: bad shapes, empty or mismatched lists, an unknown instrument, or too few
      segments for a covariance.
  """
  result = motion_events.event_metrics(pred_tracks, real_tracks, onsets, fps, instrument,
                                       tolerance)
  pred, real = motion_events.check_pairs(pred_tracks, real_tracks)
  fps = motion_events.check_fps(fps)
  pred_k, pred_g = segment_features(pred, fps, segment_frames, hop)
  real_k, real_g = segment_features(real, fps, segment_frames, hop)
  floor_k, floor_g = kinetic_floor(real_k), geometric_floor(segment_frames)
  try:
    floor = _fid_floor(real, fps, segment_frames, hop, real_k, real_g)
  except InputError:  # Halves too short for a covariance: the metrics stand without a floor.
    floor = {"fid_k_real": float("nan"), "fid_g_real": float("nan")}
  result.update({
      "fid_k": _fid(pred_k, real_k, floor_k), "fid_g": _fid(pred_g, real_g, floor_g), **floor,
      "div_k": mean_pairwise_distance(normalise(pred_k, real_k, floor_k)),
      "div_g": mean_pairwise_distance(normalise(pred_g, real_g, floor_g)),
      "div_k_real": mean_pairwise_distance(normalise(real_k, real_k, floor_k)),
      "div_g_real": mean_pairwise_distance(normalise(real_g, real_g, floor_g))})
  return result
