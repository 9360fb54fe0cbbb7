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
"""

import tensorflow as tf

from apvg_tf import skeleton

PART_ORDER = ("body", "left_hand", "right_hand")


def num_channels(parts):
  """Channels of the heatmaps: one per part of PART_ORDER with `parts`, else one."""
  return len(PART_ORDER) if parts else 1


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


def pose_heatmaps(keypoints, resolution, *, radius=1.0, parts=False):
  """The STU's heatmaps of a pose at the video resolution, confidence-weighted if given.

  Args:
    keypoints: float [..., P, 2] (the KP's) or [..., P, 3] with confidence (the dataset's),
      whose tents are weighted by it so a missing keypoint draws nothing.
    resolution: R, the side of the square maps.
    radius: tent half-width in pixels.
    parts: per-part channels (see `render_heatmaps`).

  Returns:
    float [..., R, R, C].
  """
  weights = keypoints[..., 2] if keypoints.shape[-1] == 3 else None
  return render_heatmaps(keypoints[..., :2], resolution, resolution, radius=radius,
                         parts=parts, weights=weights)


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

