"""The differentiable landmark transformer (DLT): keypoints to heatmaps, eq. (1) of the paper.

    H[j, i] = sum_s  alpha * max(0, 1 - |i - kx_s| / r) * max(0, 1 - |j - ky_s| / r)

for pixel column i and row j, keypoint s at pixel position (kx_s, ky_s), intensity alpha = 1
and tent radius r (the paper's r = 1: each point lights at most a 2 x 2 block of pixels with
bilinear weights). Coordinates arrive normalised to [0, 1] of the frame; pixel centres sit at
(i + 0.5) / width, so kx = x * width - 0.5. The map is a sum of separable tents, computed as
one matmul per image, and is differentiable with respect to the coordinates (almost
everywhere: the tent is piecewise linear).

Options beyond the paper: `radius` > 1 widens the tents (larger gradient basin), `parts`
renders body, left hand and right hand into separate channels instead of one summed map, and
per-point `weights` (e.g. confidences) scale each tent, so a missing keypoint (weight 0) adds
nothing to either the predicted or the real heatmap.

Limb maps (`limb_maps`, beyond the paper; Everybody Dance Now and vid2vid draw the pose this
way): the skeleton's bones drawn as lines, one channel per group of LIMB_GROUPS. A bone tells
the renderer the direction of a forearm or a hand, which a few dots of eq. (1) leave it to
infer; the bow follows the bow hand's direction.
"""

import math

import tensorflow as tf

from apvg_tf import skeleton

PART_ORDER = ("body", "left_hand", "right_hand")


def _bones(*pairs):
  return tuple((skeleton.INDEX[a], skeleton.INDEX[b]) for a, b in pairs)


def _hand_bones(side):
  start = skeleton.PARTS[f"{side}_hand"].start
  return tuple((start + i, start + j) for i, j in skeleton.HAND_BONES) + (
      (skeleton.INDEX[f"{side}_wrist"], start),)


_ARMS = {side: _bones((f"{side}_shoulder", f"{side}_elbow"), (f"{side}_elbow", f"{side}_wrist"))
         for side in ("left", "right")}
# group name -> bones (index pairs). The arms and hands apart from the trunk: they are what
# moves with the music, each in a channel of its own.
LIMB_GROUPS = {
    "trunk": tuple(b for b in skeleton.BODY_BONES if b not in _ARMS["left"] + _ARMS["right"]),
    "left_arm": _ARMS["left"], "right_arm": _ARMS["right"],
    "left_hand": _hand_bones("left"), "right_hand": _hand_bones("right"),
}


def num_channels(parts, limbs=False):
  """Channels of the pose maps: one per part of PART_ORDER with `parts`, else one; and one
  per group of LIMB_GROUPS with `limbs`."""
  return (len(PART_ORDER) if parts else 1) + (len(LIMB_GROUPS) if limbs else 0)


def tent_weights(pixel, size, radius=1.0):
  """Tents max(0, 1 - |i - p| / radius) of pixel positions p over the pixel centres i.

  Args:
    pixel: float [...] positions in pixel units (pixel centres at 0 .. size - 1).
    size: the number of pixels along the axis.
    radius: the tent's half-width in pixels (1: bilinear interpolation weights).

  Returns:
    float [..., size].
  """
  grid = tf.range(size, dtype=pixel.dtype)
  return tf.nn.relu(1.0 - tf.abs(grid - pixel[..., None]) / radius)


def _tents(coords, size, radius):
  """Separable tent weights along one axis: [..., P] normalised -> [..., P, size]."""
  return tent_weights(coords * size - 0.5, size, radius)


def render_heatmaps(keypoints, height, width, *, radius=1.0, parts=False, weights=None,
                    alpha=1.0):
  """Renders keypoints into heatmaps with eq. (1).

  Args:
    keypoints: float [..., P, 2] (x, y) in [0, 1] of the frame (a third column, if present,
      is ignored; pass confidences as `weights`).
    height: output height in pixels.
    width: output width in pixels.
    radius: tent half-width r in pixels (the paper: 1).
    parts: False for the paper's single summed map; True for 3 channels (body, left hand,
      right hand), which needs P == 67.
    weights: optional float [..., P] multiplying each point's tent (confidence masking).
    alpha: intensity factor (the paper: 1).

  Returns:
    float [..., height, width, C] with C = 1, or 3 when `parts`.
  """
  keypoints = tf.convert_to_tensor(keypoints)
  if not keypoints.dtype.is_floating:
    keypoints = tf.cast(keypoints, tf.float32)
  wx = _tents(keypoints[..., 0], width, radius)   # [..., P, W]
  wy = _tents(keypoints[..., 1], height, radius)  # [..., P, H]
  scale = tf.cast(alpha, keypoints.dtype)
  if weights is not None:
    wy = wy * tf.cast(weights, keypoints.dtype)[..., None]
  if not parts:
    # sum_p wy[p, j] wx[p, i] as a matmul (an einsum with "..." does not export to ONNX).
    return scale * tf.matmul(wy, wx, transpose_a=True)[..., None]
  if keypoints.shape[-2] != skeleton.NUM_KEYPOINTS:
    raise ValueError(f"per-part heatmaps need {skeleton.NUM_KEYPOINTS} keypoints, got "
                     f"{keypoints.shape[-2]}")
  maps = []
  for name in PART_ORDER:
    part = skeleton.PARTS[name]
    maps.append(tf.matmul(wy[..., part, :], wx[..., part, :], transpose_a=True))
  return scale * tf.stack(maps, -1)


# The longest bone a group draws without ripples, as a fraction of the frame (a finger bone
# is short): samples along a bone are spaced by at most half the line width up to that length.
_LONGEST_BONE = {"trunk": 0.5, "left_arm": 0.5, "right_arm": 0.5, "left_hand": 0.1,
                 "right_hand": 0.1}


def limb_maps(keypoints, height, width, *, line_width=1.0, weights=None):
  """Draws the skeleton's bones as lines, one channel per group of LIMB_GROUPS.

  Each bone is n points spaced evenly from one end to the other, each drawn as eq. (1)'s
  tent of radius `line_width` weighted by spacing / line_width (so that a line's tents sum to
  about 1 on its centre, whatever its length) and by the smaller weight of its two ends (a
  bone with a missing end draws nothing); a group's map is the sum over its bones, capped
  at 1. One matmul per group, as the heatmaps (a per-pixel distance to each segment costs a
  hundred times more and exports no better).

  Args:
    keypoints: float [..., 67, 2] (x, y) in [0, 1] of the frame.
    height: output height in pixels.
    width: output width in pixels.
    line_width: the tents' radius across the line, in pixels.
    weights: optional float [..., 67] (confidences).

  Returns:
    float [..., height, width, len(LIMB_GROUPS)].
  """
  keypoints = tf.convert_to_tensor(keypoints)
  if not keypoints.dtype.is_floating:
    keypoints = tf.cast(keypoints, tf.float32)
  if keypoints.shape[-2] != skeleton.NUM_KEYPOINTS:
    raise ValueError(f"limb maps need {skeleton.NUM_KEYPOINTS} keypoints, got "
                     f"{keypoints.shape[-2]}")
  dtype = keypoints.dtype
  points = keypoints[..., :2]
  if weights is None:
    weights = tf.ones_like(points[..., 0])
  weights = tf.cast(weights, dtype)
  scale = tf.constant([width, height], dtype)
  maps = []
  for name, bones in LIMB_GROUPS.items():
    n = max(2, int(math.ceil(_LONGEST_BONE[name] * max(height, width) * 2 / line_width)) + 1)
    a = tf.gather(points, [i for i, _ in bones], axis=-2)[..., None, :]  # [..., N, 1, 2]
    b = tf.gather(points, [j for _, j in bones], axis=-2)[..., None, :]
    along = tf.reshape(tf.linspace(tf.constant(0.0, dtype), 1.0, n), [n, 1])
    samples = a + along * (b - a)                                            # [..., N, n, 2]
    spacing = tf.norm((b - a)[..., 0, :] * scale + 1e-9, axis=-1) / (n - 1)  # [..., N]
    w = (tf.minimum(tf.gather(weights, [i for i, _ in bones], axis=-1),
                    tf.gather(weights, [j for _, j in bones], axis=-1)) *
         tf.minimum(spacing / line_width, 1.0))
    w = tf.broadcast_to(w[..., None], tf.shape(samples)[:-1])
    flat = tf.concat([tf.shape(samples)[:-3], [len(bones) * n]], 0)
    line = render_heatmaps(tf.reshape(samples, tf.concat([flat, [2]], 0)), height, width,
                           radius=line_width, weights=tf.reshape(w, flat))
    maps.append(tf.minimum(line, 1.0))
  return tf.concat(maps, -1)


def pose_heatmaps(keypoints, resolution, *, radius=1.0, parts=False, limbs=False,
                  line_width=1.0):
  """The STU's pose maps at the video resolution, confidence-weighted if given.

  Args:
    keypoints: float [..., P, 2] (the KP's) or [..., P, 3] with confidence (the dataset's),
      whose tents are weighted by it so a missing keypoint draws nothing.
    resolution: R, the side of the square maps.
    radius: tent half-width in pixels.
    parts: per-part channels (see `render_heatmaps`).
    limbs: also the limb maps (see `limb_maps`), after the heatmaps.
    line_width: the limb maps' half-width in pixels.

  Returns:
    float [..., R, R, C] with C = `num_channels(parts, limbs)`.
  """
  weights = keypoints[..., 2] if keypoints.shape[-1] == 3 else None
  maps = render_heatmaps(keypoints[..., :2], resolution, resolution, radius=radius,
                         parts=parts, weights=weights)
  if not limbs:
    return maps
  lines = limb_maps(keypoints[..., :2], resolution, resolution, line_width=line_width,
                    weights=weights)
  return tf.concat([maps, tf.cast(lines, maps.dtype)], -1)


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class LandmarkTransformer(tf.keras.layers.Layer):
  """The DLT as a Keras layer: keypoints [B, ..., P, 2] -> heatmaps [B, ..., H, W, C].

  Call with `weights` to scale each point's tent (see `render_heatmaps`).
  """

  def __init__(self, *, height, width, radius=1.0, parts=False, alpha=1.0, **kwargs):
    super().__init__(**kwargs)
    self.height, self.width = int(height), int(width)
    self.radius, self.parts, self.alpha = float(radius), bool(parts), float(alpha)

  def call(self, keypoints, weights=None):
    return render_heatmaps(keypoints, self.height, self.width, radius=self.radius,
                           parts=self.parts, weights=weights, alpha=self.alpha)

  def get_config(self):
    return {**super().get_config(), "height": self.height, "width": self.width,
            "radius": self.radius, "parts": self.parts, "alpha": self.alpha}

