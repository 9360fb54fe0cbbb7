"""Square crops that follow the playing arm and the hands, for the STU's local discriminator.

A viewer looks at the bow (or slide) arm and the hands; in a full frame they are a few
hundred of its pixels, so a full-frame discriminator barely sees them. Everybody Dance Now
gives the face a discriminator of its own on a crop around it; here the crops are:
  - each arm that plays the instrument's strokes (`instruments.moving_arms`: the bow arm of
    the strings, the trombone's slide arm): its elbow, wrist and hand points
    (`skeleton.arm_points`);
  - each hand (its 21 points).
A group's box is a square around its seen points (confidence > 0): centred on the middle of
their extent, with side max(S, extent + S / 2) pixels for crops of S x S pixels (a hand fits
at its own scale; an outstretched arm is shrunk to fit), moved inside the frame. The same
boxes cut the real and the generated frame and the pose maps, and a group with no seen point
is marked invalid (its crop is cut at the frame's centre and must be masked out of a loss).

Coordinates: a keypoint x in [0, 1] lies at pixel coordinate x R - 0.5 (pixel centres at
integers, as in `heatmap.py`). Boxes are in `tf.image.crop_and_resize`'s convention (a
normalised y1 ... y2 samples pixel rows y1 (R - 1) ... y2 (R - 1)), and `crop` samples them
as it does, so a box of side S is copied pixel for pixel.
"""

import tensorflow as tf

from apvg_tf import heatmap, instruments, skeleton


def crop_groups(instrument):
  """The keypoint groups the local discriminator looks at, for `instrument`.

  Returns:
    tuple of tuples of keypoint indices: each moving arm (elbow, wrist, hand), then the left
    and the right hand.

  Raises:
    InputError: if the instrument is unknown.
  """
  arms = tuple(tuple(skeleton.arm_points([side])) for side in instruments.moving_arms(instrument))
  hands = tuple(tuple(range(part.start, part.stop))
                for part in (skeleton.LEFT_HAND, skeleton.RIGHT_HAND))
  return arms + hands


def crop_boxes(keypoints, groups, resolution, crop_size):
  """The boxes of the groups' crops in each frame.

  Args:
    keypoints: float [N, P, 3], (x, y) in [0, 1] and a confidence (0: missing).
    groups: tuple of G tuples of keypoint indices (`crop_groups`).
    resolution: R, the frame side in pixels.
    crop_size: S, the crops' side in pixels (S <= R).

  Returns:
    (boxes float32 [N, G, 4] as (y1, x1, y2, x2) normalised for `tf.image.crop_and_resize`,
    valid float32 [N, G]: 1 where the group has a seen point).
  """
  keypoints = tf.cast(keypoints, tf.float32)
  size = float(resolution)
  boxes, valid = [], []
  for group in groups:
    points = tf.gather(keypoints, list(group), axis=-2)  # [N, n, 3]
    seen = points[..., 2:] > 0  # [N, n, 1]
    pixels = points[..., :2] * size - 0.5
    low = tf.reduce_min(tf.where(seen, pixels, size), -2)  # [N, 2] (x, y)
    high = tf.reduce_max(tf.where(seen, pixels, -1.0), -2)
    any_seen = tf.reduce_any(seen[..., 0], -1)  # [N]
    centre = tf.where(any_seen[:, None], (low + high) / 2, (size - 1) / 2)
    extent = tf.where(any_seen, tf.reduce_max(high - low, -1), 0.0)
    side = tf.minimum(tf.maximum(float(crop_size), extent + crop_size / 2), size)  # [N]
    # The span between the first and the last pixel centre of the box is side - 1.
    start = tf.clip_by_value(centre - (side[:, None] - 1) / 2, 0.0, size - side[:, None])
    end = start + side[:, None] - 1
    boxes.append(tf.stack([start[:, 1], start[:, 0], end[:, 1], end[:, 0]], -1) / (size - 1))
    valid.append(tf.cast(any_seen, tf.float32))
  return tf.stack(boxes, 1), tf.stack(valid, 1)


def _sampling_weights(low, high, crop_size, size):
  """Bilinear weights of the S samples from `low` to `high` (normalised) over `size` pixels.

  Args:
    low, high: float [N, G], the box's ends as `tf.image.crop_and_resize` reads them.
    crop_size: S.
    size: the image side along this axis.

  Returns:
    float32 [N, G, S, size]: row k holds the tent max(0, 1 - |i - p_k|) of sample p_k.
  """
  fractions = (tf.linspace(0.0, 1.0, crop_size) if crop_size > 1 else
               tf.constant([0.5]))  # crop_and_resize's single sample: the box's centre.
  positions = (low[..., None] + (high - low)[..., None] * fractions) * (size - 1)
  return heatmap.tent_weights(positions, size)


def crop(images, boxes, crop_size):
  """Cuts every box of every frame out of `images` (bilinear; differentiable in `images`).

  The same samples as `tf.image.crop_and_resize(images, boxes, ...)` (tested), computed as
  two matmuls with the bilinear weights of each axis (`heatmap.tent_weights`, the DLT's tents): XLA
  has no CropAndResize kernel, and these export to ONNX.

  Args:
    images: float [N, H, W, C] (H, W static).
    boxes: float [N, G, 4] from `crop_boxes`.
    crop_size: S.

  Returns:
    float32 [N G, S, S, C], frame-major (the crops of frame 0, then of frame 1, ...).
  """
  images = tf.cast(images, tf.float32)
  height, width, channels = images.shape[1:]
  rows = _sampling_weights(boxes[..., 0], boxes[..., 2], crop_size, height)  # [N, G, S, H]
  columns = _sampling_weights(boxes[..., 1], boxes[..., 3], crop_size, width)  # [N, G, S, W]
  planes = tf.transpose(images, [0, 3, 1, 2])[:, None]  # [N, 1, C, H, W]
  out = tf.matmul(tf.matmul(rows[:, :, None], planes), columns[:, :, None],
                  transpose_b=True)  # [N, G, C, S, S]
  return tf.reshape(tf.transpose(out, [0, 1, 3, 4, 2]), [-1, crop_size, crop_size, channels])
