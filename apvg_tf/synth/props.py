"""The instrument's moving parts (the "props") derived from a keypoint track alone.

`performer.perform` returns the props it computed with the motion (the cello's bow, the
trombone's mouthpiece, angle and slide); a keypoint track that a model generated has none.
`derive_props` recovers them from the keypoints by inverting the performer's geometry:

- Cello. The bow's angle is tied to the bow hand's angle (`_perform_cello` turns the hand
  with the bow), and that angle gives the string played (the bow tilts 0.07 rad per string).
  The wrist sits at a fixed grip offset above the frog, so the frog is the wrist minus the
  grip, and the tip is one bow length further along the bow. The contact point (a hidden
  state of the motion: how far above the bridge the bow plays) is where the bow's line
  crosses the played string's line, and the bow position is the frog's distance from it.
- Trombone. The instrument turns with the head: a least-squares fit of the performer's rigid
  head (neck, nose, eyes, ears) gives the head's angle and the mouthpiece at the lips; the
  slide's extension is where the slide hand's wrist lies along the slide.

When the performer's two-bone arm could not reach its target (the arm at full stretch), the
wrist stops short on the line from the shoulder toward the target; the target is then found
where that line meets the line the target moves on (for the cello that line needs the
contact point, which is taken from the nearest frames where the arm reached).

On the performer's own keypoints this reproduces its props to float32 precision
(tests/test_pose_drawing.py). On any other track the props follow the hands in the same way,
kept within what the instrument can do (strings C to A, slide positions 1 to 7); the bow
stays in the hand wherever the hand goes. The bow's tilt follows the bow hand's angle, so a
restless hand makes a restless bow: 0.01 rad of hand angle is 0.14 of a string's tilt.
"""

import numpy as np

from apvg_tf import skeleton
from apvg_tf.errors import InputError
from apvg_tf.synth import music
from apvg_tf.synth import performer as kinematics

_I = skeleton.INDEX

# Constants of the performer's motion that tie the instrument to the body. performer.py writes
# them inline in `_perform_cello` and `_perform_trombone`; they are repeated here under names,
# and the test of the derived props against the performer's own catches any drift.
_BOW_ANGLE_A = np.pi + kinematics.CELLO.tilt - 0.30  # Bow angle on the A string (3).
_BOW_TILT_PER_STRING = 0.14 * 0.5  # The bow turns by this per string toward the C string.
_BOW_GRIP = (0.012, -0.052)  # Wrist from the frog, in the bow's frame (turned bow_angle - pi).
_HAND_FROM_BOW = -np.pi + np.pi / 2 + 0.25  # Bow hand angle minus bow angle.
_SOUNDING_REST = 0.045  # Contact point above the bridge before the first stroke.
_MOUTH = (0.062, -0.086)  # Mouthpiece from the neck, in the head's frame.
_SLIDE_GRIP = (-0.012, -0.028)  # Slide wrist from the brace: along the slide, along its normal.
_NUM_STRINGS = len(kinematics.CELLO_STRINGS)
_MAX_EXTENSION = 6 * kinematics.SLIDE_STEP  # Seventh position.

# A wrist this close (frame units) to the arm's longest or shortest reach is taken as clamped:
# float32 keypoints put a reached target's distance within about 1e-7 of its true value.
_CLAMP_TOLERANCE = 1e-5
# Points of the hand that do not move with the fingers: wrist, thumb base, four knuckles.
_RIGID_HAND = (0, 1, 5, 9, 13, 17)
_HEAD = ("neck", "nose", "right_eye", "left_eye", "right_ear", "left_ear")
# Normalised coordinates beyond this are not a frame's keypoints (pixel coordinates, say).
_COORDINATE_LIMIT = 4.0


def check_keypoints(keypoints):
  """Validates a keypoint track and returns its coordinates.

  Args:
    keypoints: array-like [T, 67, 2] or [T, 67, 3]: x, y normalised to [0, 1] of the square
      frame (x right, y down), and optionally a confidence, which is not used.

  Returns:
    float64 [T, 67, 2].

  Raises:
    InputError: not a numeric array of that shape, NaN or infinite coordinates, or
      coordinates that are clearly not normalised.
  """
  try:
    array = np.asarray(keypoints, np.float64)
  except (TypeError, ValueError) as e:
    raise InputError(f"keypoints must be a numeric array [T, {skeleton.NUM_KEYPOINTS}, 2 or 3]"
                     f" (x, y[, confidence]); could not read it as numbers: {e}") from None
  num = skeleton.NUM_KEYPOINTS
  if array.ndim != 3 or array.shape[1] != num or array.shape[2] not in (2, 3):
    one_frame = array.ndim == 2 and array.shape in ((num, 2), (num, 3))
    hint = " (one frame? add a leading axis: keypoints[None])" if one_frame else ""
    raise InputError(f"keypoints must have shape [T, {skeleton.NUM_KEYPOINTS}, 2 or 3] "
                     f"(frames, the canonical keypoints, x, y[, confidence]); got "
                     f"{list(array.shape)}{hint}")
  xy = array[..., :2]
  bad = ~np.isfinite(xy).all(-1)
  if bad.any():
    frame, point = (int(i[0]) for i in np.nonzero(bad))
    raise InputError(f"keypoints have NaN or infinite coordinates at {int(bad.sum())} points "
                     f"(the first: frame {frame}, {skeleton.KEYPOINT_NAMES[point]}); fill or "
                     "interpolate missing points before drawing")
  largest = float(np.abs(xy).max()) if xy.size else 0.0
  if largest > _COORDINATE_LIMIT:
    raise InputError(f"keypoint coordinates reach {largest:g}, but they must be normalised to "
                     "[0, 1] of the square frame; divide pixel coordinates by the frame size")
  return xy


def _check_instrument(instrument):
  if instrument not in music.PLAYABLE:
    raise InputError(f"the virtual performer plays {' and '.join(music.PLAYABLE)}, not "
                     f"{instrument!r}")


def derive_props(keypoints, instrument):
  """The instrument's props for every frame of a keypoint track, from the keypoints alone.

  Args:
    keypoints: [T, 67, 2] or [T, 67, 3] normalised keypoints (a confidence is not used).
    instrument: "cello" or "trombone".

  Returns:
    The dict that `performer.perform` returns as `Performance.props`, float32:
    cello: "bow" [T, 2, 2] (frog, tip), "contact" [T, 2], "string" [T] (0 = C .. 3 = A);
    trombone: "mouth" [T, 2], "angle" [T] (radians), "extension" [T] (frame units).

  Raises:
    InputError: an instrument other than cello and trombone, or bad keypoints
      (`check_keypoints`).
  """
  _check_instrument(instrument)
  xy = check_keypoints(keypoints)
  props = _cello(xy) if instrument == "cello" else _trombone(xy)
  return {k: v.astype(np.float32) for k, v in props.items()}


# --------------------------------------------------------------------------- geometry


def _complex(points):
  return points[..., 0] + 1j * points[..., 1]


def _real(values):
  return np.stack([values.real, values.imag], -1)


def _cross(a, b):
  return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _wrap(angle):
  return (angle + np.pi) % (2 * np.pi) - np.pi


def _fit(model, observed):
  """Least-squares similarity from a rigid model to observed points, as complex numbers.

  Args:
    model: complex [P], the part's points in its own frame (origin = its root point).
    observed: complex [T, P].

  Returns:
    (scale_rotation complex [T], origin complex [T]) with observed ~ scale_rotation * model
    + origin: the part's angle is the argument of the first, its root's position the second.
  """
  centred = model - model.mean()
  observed_centred = observed - observed.mean(-1, keepdims=True)
  scale_rotation = (np.conj(centred) * observed_centred).sum(-1) / np.sum(np.abs(centred) ** 2)
  return scale_rotation, observed.mean(-1) - scale_rotation * model.mean()


def _clamped(shoulder, wrist, arm):
  """[T] bool: the performer's two-bone arm stopped short of its target (`_two_bone`)."""
  upper, lower = arm
  reach = np.linalg.norm(wrist - shoulder, axis=-1)
  return ((np.abs(reach - (upper + lower) * 0.9999) < _CLAMP_TOLERANCE)
          | (np.abs(reach - (abs(upper - lower) + 1e-6)) < _CLAMP_TOLERANCE))


def _meet_ray(point, direction, root, through, otherwise):
  """[T] s where point + s * direction ([T, 2] each) meets the line from root through `through`.

  Where the lines are parallel (or root == through), `otherwise` [T] instead.
  """
  ray = through - root
  with np.errstate(divide="ignore", invalid="ignore"):
    s = _cross(root - point, ray) / _cross(direction, ray)
  return np.where(np.isfinite(s), s, otherwise)


def _fill(values, known, default):
  """values [T] with the entries where `known` is False interpolated from the known ones
  (all `default` when none is known)."""
  if not known.any():
    return np.full(len(values), default)
  frames = np.arange(len(values))
  return np.interp(frames, frames[known], values[known])


# --------------------------------------------------------------------------- cello


def _cello(xy):
  g = kinematics.CELLO
  # The bow hand's angle, fitted to the points of the hand the fingers do not move.
  model = kinematics._hand_points(  # pylint: disable=protected-access
      np.zeros((1, 2)), np.zeros(1), kinematics.HAND, mirror=1.0, flex=np.zeros((1, 4)))[0]
  hand, _ = _fit(_complex(model[list(_RIGID_HAND)]),
                 _complex(xy[:, skeleton.RIGHT_HAND][:, list(_RIGID_HAND)]))
  tilt = _wrap(np.angle(hand) - _HAND_FROM_BOW - _BOW_ANGLE_A)
  string = np.clip(_NUM_STRINGS - 1 - tilt / _BOW_TILT_PER_STRING, 0.0, _NUM_STRINGS - 1)
  bow_angle = _BOW_ANGLE_A + _BOW_TILT_PER_STRING * (_NUM_STRINGS - 1 - string)
  # pylint: disable=protected-access  (the performer's own vector helpers)
  u = kinematics._dir(bow_angle)  # From the contact point toward the frog.
  grip = kinematics._rotate(np.array(_BOW_GRIP), bow_angle - np.pi)
  # pylint: enable=protected-access
  shoulder, wrist = xy[:, _I["right_shoulder"]], xy[:, _I["right_wrist"]]
  frog = wrist - grip
  # The played string is a straight line P(a) = start + a * step (a: along the axis).
  start = g.point(0.0, g.string_offset(string, 0.0))
  step = g.point(1.0, g.string_offset(string, 1.0)) - start
  # The contact point: where the bow's line (frog - s * u) crosses the string.
  rel = frog - start
  det = _cross(step, u)
  along = _cross(rel, u) / det
  travel = _cross(step, rel) / det  # Frog to contact: bow position times the bow's length.
  clamped = _clamped(shoulder, wrist, kinematics.CELLO_LAYOUT.arms[0])
  if clamped.any():
    # The wrist did not reach the frog: take the contact's height above the bridge from the
    # frames where it did, and find the frog on the line from the shoulder through the wrist.
    sounding = _fill(along - g.bridge, ~clamped, _SOUNDING_REST)
    along = np.where(clamped, g.bridge + sounding, along)
    contact = g.point(along, g.string_offset(string, along))
    travel = np.where(clamped, _meet_ray(contact + grip, u, shoulder, wrist, travel), travel)
    frog = np.where(clamped[:, None], contact + u * travel[:, None], frog)
  contact = frog - u * travel[:, None]
  tip = frog - u * g.bow_length
  return {"bow": np.stack([frog, tip], 1), "contact": contact, "string": string}


# --------------------------------------------------------------------------- trombone


def _trombone(xy):
  g = kinematics.TROMBONE
  layout = kinematics.TROMBONE_LAYOUT
  # The head as a rigid body: neck at its origin, the face at the layout's offsets.
  model = _complex(np.array(((0.0, 0.0),) + tuple(layout.face)))
  head, neck = _fit(model, _complex(xy[:, [_I[name] for name in _HEAD]]))
  head_angle = np.angle(head)
  mouth = _real(neck + np.exp(1j * head_angle) * complex(*_MOUTH))
  angle = g.angle + head_angle - layout.torso_angle
  u = kinematics._dir(angle)  # pylint: disable=protected-access
  normal = kinematics._dir(angle - np.pi / 2)  # pylint: disable=protected-access
  # The slide wrist's target moves along this line as the slide extends.
  first = mouth + u * (g.brace_first + _SLIDE_GRIP[0]) + normal * _SLIDE_GRIP[1]
  shoulder, wrist = xy[:, _I["right_shoulder"]], xy[:, _I["right_wrist"]]
  extension = np.sum((wrist - first) * u, -1)
  clamped = _clamped(shoulder, wrist, layout.arms[0])
  if clamped.any():
    extension = np.where(clamped, _meet_ray(first, u, shoulder, wrist, extension), extension)
  return {"mouth": mouth, "angle": angle,
          "extension": np.clip(extension, 0.0, _MAX_EXTENSION)}
