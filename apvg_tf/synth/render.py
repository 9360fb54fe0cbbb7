"""Frames of the virtual performer: a shaded human figure playing a cello or a trombone.

Drawn with OpenCV at twice the target resolution (anti-aliased polygons with sub-pixel
coordinates) and reduced with area averaging, so edges are smooth at 64 px and thin things
(strings, bow, fingers) fade instead of flickering. The figure is built around the keypoints
of `performer.perform`: limbs are tapered two-tone capsules between joints, the head an
oval with hair and face shading, the hands a palm with five jointed fingers. The instrument
comes from the same geometry the motion uses (`performer.CELLO`, `performer.TROMBONE`), and
parts are drawn back to front so that the instrument and the limbs occlude each other as
they do in a real performance. Appearances (skin, hair, clothes, room) are chosen by
`performer` index; the background is lit and textured and computed once per appearance.

`render_frames` draws a performance with the props its motion computed; `draw_pose` draws any
keypoint track (a model's, say), with the props derived from the keypoints (`synth.props`).
"""

import dataclasses

import cv2
import numpy as np

from apvg_tf import skeleton
from apvg_tf.errors import InputError
from apvg_tf.synth import performer as kinematics
from apvg_tf.synth import props as instrument_props

SUPERSAMPLE = 2
_SHIFT = 4  # OpenCV sub-pixel bits: coordinates are passed times 16.
_LIGHT = np.array([-0.55, -0.83])  # Light comes from the upper left.
_I = skeleton.INDEX


@dataclasses.dataclass(frozen=True)
class Appearance:
  """Colours (RGB) and styles of one virtual performer and their room."""
  skin: tuple
  hair: tuple
  hair_style: str  # "short", "long" or "bun".
  shirt: tuple
  sleeves: str  # "long" or "short".
  trousers: tuple
  shoes: tuple
  wall: tuple
  floor: tuple
  chair: tuple


APPEARANCES = (
    Appearance(skin=(224, 172, 138), hair=(58, 40, 30), hair_style="short",
               shirt=(40, 62, 110), sleeves="long", trousers=(38, 38, 46), shoes=(25, 22, 22),
               wall=(150, 140, 122), floor=(120, 84, 56), chair=(70, 48, 34)),
    Appearance(skin=(176, 120, 88), hair=(25, 20, 18), hair_style="long",
               shirt=(150, 40, 48), sleeves="long", trousers=(30, 30, 34), shoes=(30, 24, 20),
               wall=(92, 108, 124), floor=(96, 70, 50), chair=(40, 40, 44)),
    Appearance(skin=(240, 200, 170), hair=(180, 140, 80), hair_style="bun",
               shirt=(230, 226, 214), sleeves="short", trousers=(60, 56, 70), shoes=(40, 30, 28),
               wall=(120, 130, 104), floor=(140, 104, 70), chair=(96, 64, 40)),
    Appearance(skin=(110, 74, 52), hair=(18, 14, 12), hair_style="short",
               shirt=(46, 104, 84), sleeves="long", trousers=(52, 44, 40), shoes=(20, 18, 16),
               wall=(136, 112, 106), floor=(90, 66, 54), chair=(60, 40, 30)),
)
NUM_PERFORMERS = len(APPEARANCES)

_VARNISH = (150, 66, 24)
_BRASS = (206, 160, 62)


def _unit(angle):
  return np.array([np.cos(angle), np.sin(angle)])


def _shade(color, factor):
  return tuple(int(np.clip(c * factor, 0, 255)) for c in color)


class FigureRenderer:
  """Renders frames of one instrument's performer at one resolution and appearance."""

  def __init__(self, instrument, resolution, performer=0):
    """Args: instrument "cello" or "trombone"; resolution in pixels; performer index."""
    self.instrument = instrument
    self.resolution = int(resolution)
    self.size = self.resolution * SUPERSAMPLE
    self.look = APPEARANCES[int(performer) % NUM_PERFORMERS]
    self.background = _background(self.look, self.size, instrument, int(performer))

  # ------------------------------------------------------------------ primitives

  def _px(self, points):
    """Normalised points [..., 2] -> int32 fixed-point pixel coordinates."""
    return np.round(np.asarray(points, np.float64) * self.size * (1 << _SHIFT)).astype(np.int32)

  def _poly(self, img, points, color):
    cv2.fillPoly(img, [self._px(points).reshape(-1, 1, 2)], color, cv2.LINE_AA, _SHIFT)

  def _line(self, img, p0, p1, color, width):
    thickness = max(1, int(round(width * self.size)))
    cv2.line(img, tuple(self._px(p0).tolist()), tuple(self._px(p1).tolist()), color, thickness,
             cv2.LINE_AA, _SHIFT)

  def _polyline(self, img, points, color, width):
    thickness = max(1, int(round(width * self.size)))
    cv2.polylines(img, [self._px(points).reshape(-1, 1, 2)], False, color, thickness,
                  cv2.LINE_AA, _SHIFT)

  def _disc(self, img, center, radius, color):
    r = max(1, int(round(radius * self.size * (1 << _SHIFT))))
    cv2.circle(img, tuple(self._px(center).tolist()), r, color, -1, cv2.LINE_AA, _SHIFT)

  def _ellipse(self, img, center, axes, angle_deg, color, start=0, end=360):
    ax = tuple(max(1, int(round(a * self.size * (1 << _SHIFT)))) for a in axes)
    cv2.ellipse(img, tuple(self._px(center).tolist()), ax, float(angle_deg), start, end, color,
                -1, cv2.LINE_AA, _SHIFT)

  def _capsule(self, img, p0, p1, r0, r1, color, shaded=True):
    """A tapered limb from p0 (radius r0) to p1 (radius r1), lit from the upper left."""
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    layers = [(color if not shaded else _shade(color, 0.72), 1.0, 0.0)]
    if shaded:
      layers.append((color, 0.62, 0.33))
      layers.append((_shade(color, 1.18), 0.22, 0.62))
    for col, scale, offset in layers:
      a, b = r0 * scale, r1 * scale
      shift_a, shift_b = _LIGHT * r0 * offset, _LIGHT * r1 * offset
      q0, q1 = p0 + shift_a, p1 + shift_b
      d = q1 - q0
      length = np.linalg.norm(d)
      if length < 1e-6:
        self._disc(img, q0, max(a, b), col)
        continue
      n = np.array([-d[1], d[0]]) / length
      self._poly(img, [q0 + n * a, q1 + n * b, q1 - n * b, q0 - n * a], col)
      self._disc(img, q0, a, col)
      self._disc(img, q1, b, col)

  # ------------------------------------------------------------------ body parts

  def _hand(self, img, points, color, thumb=True, fingers=range(4)):
    """Palm and fingers from the 21 hand keypoints [21, 2]."""
    palm = points[[0, 1, 5, 9, 13, 17]]
    self._poly(img, palm, _shade(color, 0.85))
    self._poly(img, 0.5 * palm + 0.5 * palm.mean(0) + _LIGHT * 0.002, color)
    width = 0.0068
    chains = ([[1, 2, 3, 4]] if thumb else []) + [[5 + 4 * f, 6 + 4 * f, 7 + 4 * f, 8 + 4 * f]
                                                  for f in fingers]
    for chain in chains:
      for j in range(3):
        r0 = width * (1.0 - 0.12 * j)
        self._capsule(img, points[chain[j]], points[chain[j + 1]], r0, r0 * 0.88, color,
                      shaded=False)
      self._disc(img, points[chain[3]] + _LIGHT * 0.001, width * 0.45, _shade(color, 1.1))

  def _arm(self, img, kp, side):
    """Upper arm in the shirt's sleeve, forearm in sleeve or skin, wrist showing."""
    look = self.look
    shoulder, elbow, wrist = (kp[_I[f"{side}_{j}"]] for j in ("shoulder", "elbow", "wrist"))
    self._capsule(img, shoulder, elbow, 0.030, 0.025, look.shirt)
    fore = look.shirt if look.sleeves == "long" else look.skin
    self._capsule(img, elbow, wrist, 0.024, 0.017, fore)
    if look.sleeves == "long":
      cuff = elbow + 0.85 * (wrist - elbow)
      self._capsule(img, cuff, wrist, 0.015, 0.014, look.skin, shaded=False)

  def _legs(self, img, kp, sides=("left", "right")):
    look = self.look
    for side in sides:
      hip, knee, ankle = (kp[_I[f"{side}_{j}"]] for j in ("hip", "knee", "ankle"))
      self._capsule(img, hip, knee, 0.050, 0.040, look.trousers)
      self._capsule(img, knee, ankle, 0.037, 0.027, look.trousers)
      heel, big, small = (kp[_I[f"{side}_{j}"]] for j in ("heel", "big_toe", "small_toe"))
      toe = 0.5 * (big + small)
      self._capsule(img, heel + np.array([0, 0.004]), toe, 0.017, 0.014, look.shoes)
      self._capsule(img, ankle, heel, 0.020, 0.017, look.shoes)

  def _torso(self, img, kp, profile=False):
    look = self.look
    rs, ls = kp[_I["right_shoulder"]], kp[_I["left_shoulder"]]
    rh, lh = kp[_I["right_hip"]], kp[_I["left_hip"]]
    neck, hip = kp[_I["neck"]], kp[_I["mid_hip"]]
    down = hip - neck
    down = down / (np.linalg.norm(down) + 1e-9)
    forward = np.array([-down[1], down[0]])  # The image right for an upright torso.
    if profile:
      # Seen from the side: back, seat, lap, belly, chest.
      outline = [neck - forward * 0.022, neck - forward * 0.050 + down * 0.07,
                 hip - forward * 0.052 - down * 0.08, hip - forward * 0.046 + down * 0.03,
                 hip + forward * 0.07 + down * 0.035, hip + forward * 0.062 - down * 0.07,
                 neck + forward * 0.062 + down * 0.10, neck + forward * 0.028 + down * 0.01]
    else:
      across = ls - rs
      across = across / (np.linalg.norm(across) + 1e-9)
      outline = [rs - across * 0.012, ls + across * 0.012,
                 ls + across * 0.022 + down * 0.05, lh + across * 0.026 + down * 0.02,
                 rh - across * 0.026 + down * 0.02, rs - across * 0.022 + down * 0.05]
    outline = np.array(outline)
    self._poly(img, outline, _shade(look.shirt, 0.72))
    centre = outline.mean(0)
    self._poly(img, centre + 0.8 * (outline - centre) + _LIGHT * 0.009, look.shirt)
    self._poly(img, centre + 0.45 * (outline - centre) + _LIGHT * 0.016,
               _shade(look.shirt, 1.12))
    # Trapezius, neck, collar, and the shoulders rounded over.
    if not profile:
      self._poly(img, [rs, neck - down * 0.03 - forward * 0.02,
                       neck - down * 0.03 + forward * 0.02, ls], _shade(look.shirt, 0.85))
    head = kp[_I["nose"]] - (kp[_I["nose"]] - neck) * 0.1
    self._capsule(img, neck + down * 0.005, head, 0.024, 0.023, look.skin)
    self._ellipse(img, neck + down * 0.01, (0.024, 0.012),
                  np.degrees(np.arctan2(forward[1], forward[0])), _shade(look.shirt, 0.55),
                  0, 180)
    if not profile:
      self._capsule(img, rs, ls, 0.026, 0.026, look.shirt)

  def _head(self, img, kp, profile=False):
    look = self.look
    nose, neck = kp[_I["nose"]], kp[_I["neck"]]
    rear, lear = kp[_I["right_ear"]], kp[_I["left_ear"]]
    reye, leye = kp[_I["right_eye"]], kp[_I["left_eye"]]
    up = nose - neck
    length = np.linalg.norm(up)
    # A generated pose may put the nose on the neck: draw the head upright then.
    up = up / length if length > 1e-9 else np.array([0.0, -1.0])
    angle = np.degrees(np.arctan2(up[1], up[0])) + 90.0  # Head tilt, 0 when upright.
    side = np.array([-up[1], up[0]])  # The image right when upright.
    eyes_mid = 0.5 * (reye + leye)
    if profile:
      centre = 0.5 * eyes_mid + 0.5 * rear - side * 0.004 + up * 0.004
      axes = (0.050, 0.066)
    else:
      centre = 0.5 * (rear + lear) + up * 0.002
      axes = (0.046, 0.066)
    hair_dark = _shade(look.hair, 0.7)
    back = -side if profile else np.zeros(2)  # The back of the head.
    if look.hair_style == "long" and profile:
      self._capsule(img, centre + up * 0.01 + back * 0.02, centre - up * 0.085 + back * 0.03,
                    0.040, 0.034, hair_dark, shaded=False)
    elif look.hair_style == "long":  # Falling behind the shoulders on both sides.
      for s in (-1, 1):
        self._capsule(img, centre + up * 0.02 + side * s * 0.034,
                      centre - up * 0.09 + side * s * 0.046, 0.020, 0.022, hair_dark,
                      shaded=False)
    if look.hair_style == "bun":
      self._disc(img, centre + up * 0.058 + back * 0.045, 0.024, hair_dark)
    self._ellipse(img, centre + up * 0.006 + back * 0.01, (axes[0] * 1.08, axes[1] * 1.04),
                  angle, hair_dark)
    # Face: a shadow side, and the lit side offset toward the light.
    self._ellipse(img, centre, axes, angle, _shade(look.skin, 0.74))
    self._ellipse(img, centre + _LIGHT * 0.007 + side * (0.004 if profile else 0.0),
                  (axes[0] * 0.93, axes[1] * 0.95), angle, look.skin)
    ears = (rear,) if profile else (rear, lear)
    for ear in ears:
      self._ellipse(img, ear + up * 0.002, (0.0085, 0.014), angle, _shade(look.skin, 0.82))
    # Hair over the top of the head (and the back, seen from the side).
    self._ellipse(img, centre + up * 0.014 + back * 0.004, (axes[0] * 1.04, axes[1] * 0.84),
                  angle, look.hair, 180, 360)
    if profile:
      self._ellipse(img, centre + back * 0.012 + up * 0.004, (axes[0] * 0.8, axes[1] * 0.92),
                    angle, look.hair, 90, 270)
    # Eyes, brows, nose and mouth.
    for eye in (reye, leye):
      self._ellipse(img, eye, (0.0058, 0.0033), angle, (236, 230, 224))
      self._disc(img, eye + side * (0.0015 if profile else 0.0), 0.0027, (45, 32, 26))
      self._capsule(img, eye + up * 0.009 - side * 0.0065, eye + up * 0.010 + side * 0.0065,
                    0.0022, 0.0018, hair_dark, shaded=False)
    if profile:  # The nose stands out of the face's outline.
      self._poly(img, [nose - up * 0.003 + side * 0.009, nose + up * 0.02 - side * 0.004,
                       nose - up * 0.006 - side * 0.006], _shade(look.skin, 0.92))
    tip = nose + side * (0.005 if profile else 0.0)
    self._capsule(img, eyes_mid - up * 0.004, tip, 0.0028, 0.0048, _shade(look.skin, 0.86),
                  shaded=False)
    mouth = nose - up * 0.021 + side * (0.002 if profile else 0.0)
    self._capsule(img, mouth - side * 0.009, mouth + side * (0.006 if profile else 0.009),
                  0.0028, 0.0028, (156, 86, 80), shaded=False)

  def _chair(self, img, kp, facing):
    c = self.look.chair
    hip = kp[_I["mid_hip"]]
    seat_y = hip[1] + 0.035
    if facing == "front":
      self._poly(img, [(hip[0] - 0.13, hip[1] - 0.30), (hip[0] + 0.13, hip[1] - 0.30),
                       (hip[0] + 0.12, seat_y), (hip[0] - 0.12, seat_y)], _shade(c, 0.8))
      self._poly(img, [(hip[0] - 0.17, seat_y - 0.01), (hip[0] + 0.17, seat_y - 0.01),
                       (hip[0] + 0.19, seat_y + 0.03), (hip[0] - 0.19, seat_y + 0.03)], c)
      for x in (-0.17, 0.17):
        self._line(img, (hip[0] + x, seat_y + 0.03), (hip[0] + x * 1.05, 0.975),
                   _shade(c, 0.6), 0.012)
    else:
      back_x = hip[0] - 0.09
      self._line(img, (back_x, hip[1] - 0.30), (back_x - 0.01, 0.975), _shade(c, 0.65), 0.016)
      self._poly(img, [(back_x - 0.02, seat_y - 0.01), (hip[0] + 0.14, seat_y - 0.01),
                       (hip[0] + 0.15, seat_y + 0.025), (back_x - 0.02, seat_y + 0.025)], c)
      self._line(img, (hip[0] + 0.13, seat_y + 0.02), (hip[0] + 0.14, 0.975), _shade(c, 0.6),
                 0.012)

  # ------------------------------------------------------------------ instruments

  def _cello(self, img):
    g = kinematics.CELLO
    length = g.body_top - g.body_bottom
    f = np.linspace(0, 1, 48)
    control = np.array([(0.0, 0.0), (0.02, 0.066), (0.06, 0.100), (0.13, 0.124), (0.22, 0.131),
                        (0.32, 0.125), (0.40, 0.108), (0.46, 0.084), (0.52, 0.076),
                        (0.58, 0.086), (0.64, 0.098), (0.74, 0.104), (0.84, 0.097),
                        (0.92, 0.076), (0.97, 0.046), (1.0, 0.0)])
    half = np.interp(f, control[:, 0], control[:, 1])
    along = g.body_bottom + f * length
    right = g.point(along, half)
    left = g.point(along, -half)[::-1]
    outline = np.concatenate([right, left])
    self._poly(img, outline, _shade(_VARNISH, 0.55))
    centre = g.point(g.body_bottom + 0.45 * length)
    self._poly(img, centre + 0.93 * (outline - centre), _VARNISH)
    glow = centre + 0.6 * (outline - centre) + _LIGHT * 0.02
    self._poly(img, glow, _shade(_VARNISH, 1.25))
    # f-holes beside the bridge.
    for side in (-1, 1):
      top = g.point(g.bridge + 0.06, side * 0.042)
      bottom = g.point(g.bridge - 0.05, side * 0.05)
      self._line(img, top, bottom, (30, 14, 8), 0.006)
    # Neck, pegbox and scroll behind the fingerboard.
    self._poly(img, [g.point(g.body_top - 0.02, 0.022), g.point(g.nut, 0.016),
                     g.point(g.nut, -0.016), g.point(g.body_top - 0.02, -0.022)],
               _shade(_VARNISH, 0.8))
    self._poly(img, [g.point(g.nut, 0.017), g.point(g.scroll_top - 0.03, 0.013),
                     g.point(g.scroll_top - 0.03, -0.013), g.point(g.nut, -0.017)],
               _shade(_VARNISH, 0.7))
    self._disc(img, g.point(g.scroll_top - 0.02, 0.0), 0.019, _shade(_VARNISH, 0.75))
    self._disc(img, g.point(g.scroll_top - 0.02, 0.0) + _LIGHT * 0.005, 0.009, _VARNISH)
    for k in range(2):  # Pegs.
      for side in (-1, 1):
        peg = g.point(g.nut + 0.025 + 0.035 * k, 0.0)
        self._line(img, peg, peg + side * g.across * 0.028, (30, 20, 15), 0.007)
    # Fingerboard, tailpiece, bridge, strings.
    end = g.bridge + 0.115
    self._poly(img, [g.point(end, 0.024), g.point(g.nut, 0.0145), g.point(g.nut, -0.0145),
                     g.point(end, -0.024)], (22, 20, 20))
    tail0, tail1 = g.body_bottom + 0.025, g.body_bottom + 0.13
    self._poly(img, [g.point(tail0, 0.016), g.point(tail1, 0.024), g.point(tail1, -0.024),
                     g.point(tail0, -0.016)], (24, 20, 18))
    self._poly(img, [g.point(g.bridge, 0.032), g.point(g.bridge + 0.012, 0.027),
                     g.point(g.bridge + 0.012, -0.027), g.point(g.bridge, -0.032)],
               (226, 196, 150))
    for s in range(4):
      pts = [g.point(tail1, (1.5 - s) * 0.013), g.point(g.bridge + 0.012, g.string_offset(
          s, g.bridge)), g.point(g.nut, g.string_offset(s, g.nut))]
      self._polyline(img, pts, (214, 208, 196), 0.0022)
    self._line(img, g.point(0.0), g.point(g.body_bottom + 0.01), (150, 150, 156), 0.006)

  def _bow(self, img, frog, tip):
    u = (tip - frog) / (np.linalg.norm(tip - frog) + 1e-9)
    n = np.array([-u[1], u[0]])
    if n[1] < 0:
      n = -n  # The hair hangs below the stick.
    hair0, hair1 = frog + n * 0.010, tip + n * 0.004
    self._line(img, hair0, hair1, (236, 228, 206), 0.0042)
    self._line(img, frog, tip, (70, 36, 18), 0.0055)
    self._poly(img, [frog - u * 0.006, frog + u * 0.022, frog + u * 0.022 + n * 0.012,
                     frog - u * 0.006 + n * 0.012], (20, 18, 18))
    self._poly(img, [tip, tip + n * 0.010, tip - u * 0.008 + n * 0.004], (230, 226, 214))

  def _trombone_back(self, img, mouth, angle):
    """The tuning slide loop behind the head (drawn before the head)."""
    g = kinematics.TROMBONE
    u, up = _unit(angle), _unit(angle - np.pi / 2)
    upper = mouth + up * g.bell_height
    back = mouth - u * g.back
    dark = _shade(_BRASS, 0.62)
    for color, width in ((dark, 0.011), (_shade(_BRASS, 0.9), 0.007)):
      self._polyline(img, [upper + u * 0.05, upper - u * g.back, back - up * 0.01,
                           back + u * 0.03 - up * 0.015], color, width)

  def _trombone(self, img, mouth, angle, extension):
    g = kinematics.TROMBONE
    u, up = _unit(angle), _unit(angle - np.pi / 2)
    down = -up
    dark, light = _shade(_BRASS, 0.62), _shade(_BRASS, 1.22)

    def tube(p0, p1, width, color=_BRASS):
      self._line(img, p0, p1, dark, width)
      self._line(img, p0, p1, color, width * 0.62)
      self._line(img, p0 + _LIGHT * width * 0.15, p1 + _LIGHT * width * 0.15, light,
                 width * 0.22)

    # Bell section: from behind the head forward above the slide, flaring into the bell.
    upper = mouth + up * g.bell_height
    flare_start = g.bell_distance - 0.13
    tube(upper + u * 0.03, upper + u * flare_start, 0.011)
    rim = upper + u * g.bell_distance
    cone = [upper + u * flare_start + up * 0.006, rim + up * g.bell_radius,
            rim - up * g.bell_radius, upper + u * flare_start - up * 0.006]
    self._poly(img, cone, dark)
    self._poly(img, [upper + u * flare_start + up * 0.003, rim + up * g.bell_radius * 0.8
                     + u * -0.01, rim - up * g.bell_radius * 0.2], _BRASS)
    rim_angle = np.degrees(angle)
    self._ellipse(img, rim, (0.012, g.bell_radius), rim_angle, light)
    self._ellipse(img, rim + u * 0.002, (0.008, g.bell_radius * 0.85), rim_angle,
                  _shade(_BRASS, 0.45))
    # Gooseneck joining the bell section to the lower slide tube near the mouthpiece.
    lower = mouth + down * g.slide_gap
    self._polyline(img, [upper + u * 0.05, upper + u * 0.07 + down * 0.01, lower + u * 0.09],
                   dark, 0.008)
    # Inner slide (fixed), then the outer slide with its crook (moves with the position).
    tube(mouth + u * 0.02, mouth + u * (g.slide_length - 0.02), 0.006,
         color=(214, 214, 220))
    tube(lower + u * 0.09, lower + u * (g.slide_length - 0.02), 0.006,
         color=(214, 214, 220))
    start, stop = 0.10 + extension, g.slide_length + extension
    tube(mouth + u * start, mouth + u * stop, 0.0095)
    tube(lower + u * start, lower + u * stop, 0.0095)
    crook_centre = mouth + u * stop + down * (g.slide_gap / 2)
    arc = [crook_centre + u * 0.012 * np.sin(a) + up * (g.slide_gap / 2) * np.cos(a)
           for a in np.linspace(0, np.pi, 9)]
    self._polyline(img, arc, dark, 0.0095)
    self._polyline(img, arc, _BRASS, 0.006)
    brace = mouth + u * (g.brace_first + extension)
    self._line(img, brace + up * 0.004, brace + down * (g.slide_gap + 0.004), dark, 0.006)
    # Mouthpiece.
    self._capsule(img, mouth - u * 0.004, mouth + u * 0.02, 0.005, 0.003, (200, 200, 206),
                  shaded=False)

  # ------------------------------------------------------------------ frames

  def frame(self, keypoints, props):
    """One frame.

    Args:
      keypoints: float [67, 2+] normalised keypoints of the frame.
      props: dict of this frame's instrument geometry (see `performer.Performance.props`).

    Returns:
      uint8 [resolution, resolution, 3] RGB.
    """
    img = self.background.copy()
    kp = np.asarray(keypoints, np.float64)[:, :2]
    look = self.look
    if self.instrument == "cello":
      self._chair(img, kp, "front")
      self._legs(img, kp)
      self._torso(img, kp)
      self._head(img, kp)
      self._arm(img, kp, "left")
      self._hand(img, kp[skeleton.LEFT_HAND], look.skin, thumb=True, fingers=())
      self._cello(img)
      self._hand(img, kp[skeleton.LEFT_HAND], look.skin, thumb=False)
      frog, tip = props["bow"]
      self._bow(img, np.asarray(frog, np.float64), np.asarray(tip, np.float64))
      self._arm(img, kp, "right")
      self._hand(img, kp[skeleton.RIGHT_HAND], look.skin)
    else:
      mouth = np.asarray(props["mouth"], np.float64)
      angle = float(props["angle"])
      self._chair(img, kp, "side")
      self._legs(img, kp, sides=("left",))
      self._legs(img, kp, sides=("right",))
      self._arm(img, kp, "left")
      self._torso(img, kp, profile=True)
      self._trombone_back(img, mouth, angle)
      self._head(img, kp, profile=True)
      self._hand(img, kp[skeleton.LEFT_HAND], look.skin)
      self._trombone(img, mouth, angle, float(props["extension"]))
      self._arm(img, kp, "right")
      self._hand(img, kp[skeleton.RIGHT_HAND], look.skin)
    return cv2.resize(img, (self.resolution, self.resolution), interpolation=cv2.INTER_AREA)


def render_frames(performance, resolution, performer=0, start=0, stop=None):
  """Frames [start, stop) of a performance.

  Args:
    performance: a `performer.Performance`.
    resolution: frame size in pixels (square), 64 to 512.
    performer: appearance index.
    start, stop: frame range (default: all).

  Returns:
    uint8 [stop - start, resolution, resolution, 3] RGB.
  """
  renderer = FigureRenderer(performance.instrument, resolution, performer)
  stop = len(performance.keypoints) if stop is None else stop
  out = np.empty((stop - start, renderer.resolution, renderer.resolution, 3), np.uint8)
  for i, t in enumerate(range(start, stop)):
    props = {k: v[t] for k, v in performance.props.items()}
    out[i] = renderer.frame(performance.keypoints[t], props)
  return out


def _whole(value):
  """Whether `value` is a whole number (an int, or a float without a fraction; not a bool)."""
  if isinstance(value, (bool, np.bool_)):
    return False
  return isinstance(value, (int, np.integer)) or (
      isinstance(value, (float, np.floating)) and float(value).is_integer())


# Below 16 px the figure is a few blobs; above 2048 px a frame is 12 MB before supersampling.
MIN_DRAW_RESOLUTION, MAX_DRAW_RESOLUTION = 16, 2048


def draw_pose(keypoints, instrument, resolution, performer=0):
  """Frames of any keypoint track, the instrument placed from the keypoints alone.

  A generated keypoint track has no props; they are derived from the keypoints as the
  performer's geometry derives them (`props.derive_props`): the bow hangs from the bow
  hand at its angle, the trombone turns with the head and its slide follows the slide hand.
  On the performer's own keypoints the frames match `render_frames` (tests/test_pose_drawing.py
  states how closely).

  Args:
    keypoints: float [T, 67, 2] or [T, 67, 3] keypoints, x, y normalised to [0, 1] of the
      square frame (x right, y down); a confidence column is not used.
    instrument: "cello" or "trombone".
    resolution: side of the square frames in pixels, 16 to 2048.
    performer: appearance index, 0 to NUM_PERFORMERS - 1.

  Returns:
    uint8 [T, resolution, resolution, 3] RGB.

  Raises:
    InputError: a keypoint array of another shape, or with NaN, infinite or unnormalised
      coordinates; an instrument other than cello and trombone; a resolution or appearance
      out of range.
  """
  props = instrument_props.derive_props(keypoints, instrument)
  if not (_whole(resolution) and MIN_DRAW_RESOLUTION <= resolution <= MAX_DRAW_RESOLUTION):
    raise InputError(f"resolution must be a whole number of pixels from {MIN_DRAW_RESOLUTION} "
                     f"to {MAX_DRAW_RESOLUTION}, got {resolution!r}")
  if not (_whole(performer) and 0 <= performer < NUM_PERFORMERS):
    raise InputError(f"performer must be an appearance index from 0 to {NUM_PERFORMERS - 1}, "
                     f"got {performer!r}")
  xy = np.asarray(keypoints, np.float64)[..., :2]
  renderer = FigureRenderer(instrument, int(resolution), int(performer))
  out = np.empty((len(xy), renderer.resolution, renderer.resolution, 3), np.uint8)
  for t in range(len(xy)):
    out[t] = renderer.frame(xy[t], {k: v[t] for k, v in props.items()})
  return out


# --------------------------------------------------------------------------- background


def _background(look, size, instrument, seed):
  """A lit, textured room: a wall with a soft spotlight and panelling, a wooden floor."""
  rng = np.random.default_rng([seed, 17, size])
  y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
  floor_y = 0.80
  centre_x = 0.5 if instrument == "cello" else 0.42
  # Wall: base colour, a spotlight behind the performer, darker corners.
  spot = np.exp(-(((x - centre_x) / 0.45) ** 2 + ((y - 0.35) / 0.55) ** 2))
  light = 0.55 + 0.55 * spot
  texture = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0),
                             size / 50.0)
  texture /= texture.std() + 1e-6
  # Only smooth texture: pixel noise would cost every stored PNG frame kilobytes.
  wall = np.array(look.wall, np.float32)[None, None] * (light + 0.035 * texture)[..., None]
  panels = (np.abs(((x * 6.0) % 1.0) - 0.5) < 0.006).astype(np.float32)
  wall *= (1.0 - 0.12 * panels)[..., None]
  # Floor: planks receding, lit in the middle, a shadow under the chair.
  floor_light = 0.55 + 0.45 * np.exp(-((x - centre_x) / 0.5) ** 2) * (0.7 + 0.3 * (y - floor_y)
                                                                      / (1 - floor_y))
  grain = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0),
                           sigmaX=size / 40.0, sigmaY=max(size / 400.0, 0.5))
  grain /= grain.std() + 1e-6
  depth = np.clip((y - floor_y) / (1 - floor_y), 0, 1)
  # Board edges are straight lines converging to a vanishing point above the floor.
  boards = (x - 0.5) / (0.6 + 1.4 * depth) * 5.0
  seams = (np.abs((boards + 0.5) % 1.0 - 0.5) < 0.03).astype(np.float32)
  floor = np.array(look.floor, np.float32)[None, None] * (
      floor_light * (1 - 0.25 * seams) + 0.06 * grain)[..., None]
  shadow = np.exp(-(((x - centre_x) / 0.28) ** 2 + ((y - 0.95) / 0.05) ** 2))
  floor *= (1 - 0.45 * shadow)[..., None]
  skirting = ((y > floor_y - 0.012) & (y < floor_y)).astype(np.float32)[..., None]
  image = np.where((y < floor_y)[..., None], wall, floor)
  image = image * (1 - skirting) + skirting * np.array(look.wall, np.float32) * 0.45
  return np.clip(image, 0, 255).astype(np.uint8)
