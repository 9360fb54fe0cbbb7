"""Losses of the paper, each per example so that callers can average over the global batch.

Masking: a keypoint with confidence 0 (not detected) is never a target. In the coordinate
loss its term is multiplied by 0; in the heatmap loss it is drawn into neither the real nor
the predicted heatmap (the DLT's per-point weights), so it contributes nothing to either.
"""

import tensorflow as tf

from apvg_tf import heatmap


def keypoint_coordinate_loss(pred, real, confidence):
  """Eq. (2): squared L2 distance of coordinates, masked by confidence.

  Args:
    pred: float [B, T, P, 2] predicted keypoints.
    real: float [B, T, P, 2] real keypoints.
    confidence: float [B, T, P] in [0, 1].

  Returns:
    float [B]: per example, sum over frames and points of c * ||pred - real||^2, divided by
    T * P (a fixed count, so averaging over examples and replicas stays exact).
  """
  squared = tf.reduce_sum(tf.square(pred - real), -1) * confidence
  return tf.reduce_mean(squared, axis=[1, 2])


def keypoint_heatmap_loss(pred, real, confidence, *, size, radius=1.0, parts=False):
  """Eq. (3): L1 between the DLT heatmaps of predicted and real keypoints.

  Args:
    pred: float [B, T, P, 2].
    real: float [B, T, P, 2].
    confidence: float [B, T, P], the weight of each point's tent in BOTH maps.
    size: heatmap side in pixels.
    radius: tent radius in pixels.
    parts: per-part channels.

  Returns:
    float [B]: per example, sum of |H_pred - H_real| over pixels and channels, divided by
    T * P (the L1 per keypoint and frame; each tent has mass about radius^2).
  """
  kwargs = dict(radius=radius, parts=parts, weights=confidence)
  h_pred = heatmap.render_heatmaps(pred, size, size, **kwargs)
  h_real = heatmap.render_heatmaps(real, size, size, **kwargs)
  l1 = tf.reduce_sum(tf.abs(h_pred - h_real), axis=[2, 3, 4])  # [B, T]
  return tf.reduce_sum(l1, 1) / tf.cast(tf.shape(pred)[1] * tf.shape(pred)[2], pred.dtype)
