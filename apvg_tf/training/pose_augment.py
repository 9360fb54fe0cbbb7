"""Pose augmentation for training the renderer (STU) on the dataset's real keypoints.

Trained on the keypoints of its own target frames, the STU learns to draw exactly the pose
it is given (Everybody Dance Now, vid2vid). At inference it is given the KP's poses, which no
real frame drew: a little off, held off for a while, noisier, a point sometimes missing. The
training poses are perturbed in those ways, and the real frame stays the target, so the
renderer draws what it is given rather than trusting the input only where it is perfect:

  jitter:  x' = x + jitter * n_t,                   n_t ~ N(0, I) per frame, point and axis
  drift:   x' = x + drift * (cos(a_t) u + sin(a_t) v),   u, v ~ N(0, I) per point and axis,
           a_t = phi + (pi / 2) t / (fps * DRIFT_SECONDS),  phi ~ U[0, 2 pi) per point
           (at every frame the offset is N(0, drift^2); it turns into an independent draw in
           DRIFT_SECONDS, so over a training run of a few frames it is nearly constant:
           "temporal noise" rather than jitter)
  drop:    c' = 0 with probability `drop` per frame and point (no tent, no GCN node)

All draws come from the step's `randomness.StepRandom` (exact resume; the same numbers on any
number of replicas). Coordinates are not clipped: a point pushed off the frame draws nothing,
as a point the KP puts there would.
"""

import math

import tensorflow as tf

# The time over which the drift offset turns into an independent one: about the length of a
# bow stroke, over which the KP's error in a point's place persists.
DRIFT_SECONDS = 1.0


def augment_keypoints(keypoints, random, *, jitter=0.0, drift=0.0, drop=0.0, fps=30.0):
  """Perturbs a batch of keypoint runs (see the module docstring).

  Args:
    keypoints: float [B, T, P, 3]: (x, y) in [0, 1] and a confidence in [0, 1].
    random: the step's `randomness.StepRandom`.
    jitter: std of the per-frame noise, in units of the frame side.
    drift: std of the slowly varying offset, in units of the frame side.
    drop: probability that a point is missing in a frame.
    fps: frames per second of the video (the drift's time scale).

  Returns:
    float32 [B, T, P, 3]; the input itself when every amount is 0.
  """
  keypoints = tf.cast(keypoints, tf.float32)
  if not (jitter or drift or drop):
    return keypoints
  shape = tf.shape(keypoints)
  batch, steps, points = shape[0], shape[1], shape[2]
  xy, confidence = keypoints[..., :2], keypoints[..., 2]
  if jitter:
    xy += jitter * random.normal("stu/keypoint_jitter", batch, [steps, points, 2])
  if drift:
    u = random.normal("stu/keypoint_drift_u", batch, [1, points, 2])
    v = random.normal("stu/keypoint_drift_v", batch, [1, points, 2])
    phase = 2 * math.pi * random.uniform("stu/keypoint_drift_phase", batch, [1, points, 1])
    time = tf.cast(tf.range(steps), tf.float32)[None, :, None, None]
    angle = phase + (math.pi / 2) * time / (fps * DRIFT_SECONDS)
    xy += drift * (tf.cos(angle) * u + tf.sin(angle) * v)
  if drop:
    kept = random.uniform("stu/keypoint_drop", batch, [steps, points]) >= drop
    confidence = tf.where(kept, confidence, 0.0)
  return tf.concat([xy, confidence[..., None]], -1)


def mix_predicted(real, predicted, random, fraction):
  """Per example, the predicted keypoints with probability `fraction`, else the real ones.

  Args:
    real: float [B, T, P, 3] (augmented) real keypoints.
    predicted: float [B, T, P, 3] the KP's K^pred (confidence 1).
    random: the step's `randomness.StepRandom`.
    fraction: in [0, 1].

  Returns:
    float32 [B, T, P, 3].
  """
  use = random.uniform("stu/use_predicted", tf.shape(real)[0]) < fraction  # [B]
  return tf.where(use[:, None, None, None], tf.cast(predicted, tf.float32),
                  tf.cast(real, tf.float32))
