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
    confidence: float [B, T, P] >= 0, a weight per point (1 for a sure point, 0 for a
      missing one; pitch-shift augmentation gives some points 1 / (1 - p)).

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


# ---------------------------------------------------------------------------- STU (GAN)

ADVERSARIAL_LOSSES = ("bce", "lsgan", "hinge")


def _check_adversarial(kind):
  if kind not in ADVERSARIAL_LOSSES:
    raise ValueError(f"unknown adversarial loss {kind!r}; expected one of "
                     f"{', '.join(ADVERSARIAL_LOSSES)}")


def _per_example(x):
  """Mean over every axis but the first: [N, ...] -> [N]."""
  return tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), -1)


def unpaired_audio(audio):
  """The audio of the unpaired term: another example's window, or this one's reversed in time.

  Args:
    audio: [B, T, ...] a batch of audio windows over time (B may be 1 on a replica).

  Returns:
    [B, T, ...]: example b gets example b - 1's audio (B > 1), or its own reversed (B = 1).
  """
  return tf.cond(tf.shape(audio)[0] > 1, lambda: tf.roll(audio, 1, axis=0),
                 lambda: tf.reverse(audio, axis=[1]))


def generator_adversarial_loss(fake_logits, kind="bce"):
  """Eq. (5): the generator wants D(G(A, V^coarse, K^pred), A) judged real and paired.

  The paper maximises E[log D(fake)]; "bce" is its usual non-saturating form
  -log sigmoid(logit). "lsgan" is (logit - 1)^2 and "hinge" is -logit.

  Args:
    fake_logits: float [N, ...] discriminator logits on generated frames with their audio.
    kind: "bce", "lsgan" or "hinge".

  Returns:
    float [N].
  """
  _check_adversarial(kind)
  if kind == "bce":
    loss = tf.nn.softplus(-fake_logits)  # -log sigmoid(x).
  elif kind == "lsgan":
    loss = tf.square(fake_logits - 1.0)
  else:
    loss = -fake_logits
  return _per_example(loss)


def discriminator_adversarial_loss(real_logits, fake_logits, unpaired_logits=None, kind="bce"):
  """Eq. (6) with the paper's unpaired term: real pairs are real; fakes and unpaired are fake.

  The two "fake" terms share a weight of one half, so D sees as much "real" as "fake".
  Without unpaired logits (a D that hears no audio) the fake term has weight one.

  Args:
    real_logits: float [N, ...] on real frames with their own audio.
    fake_logits: float [N, ...] on generated frames with their audio.
    unpaired_logits: float [N, ...] on real frames with another moment's audio, or None.
    kind: "bce", "lsgan" or "hinge".

  Returns:
    float [N].
  """
  _check_adversarial(kind)
  if kind == "bce":
    real, fake = tf.nn.softplus(-real_logits), lambda x: tf.nn.softplus(x)
  elif kind == "lsgan":
    real, fake = tf.square(real_logits - 1.0), tf.square
  else:
    real, fake = tf.nn.relu(1.0 - real_logits), lambda x: tf.nn.relu(1.0 + x)
  if unpaired_logits is None:
    return _per_example(real) + _per_example(fake(fake_logits))
  return _per_example(real) + 0.5 * (_per_example(fake(fake_logits)) +
                                     _per_example(fake(unpaired_logits)))


def feature_matching_loss(real_features, fake_features):
  """pix2pixHD's feature matching: L1 between a discriminator's features of real and fake.

  The generator must make every layer of D respond to its frame as to the real one, a
  target that moves with D and, unlike a pixel loss, does not reward the average of the
  poses a frame could show. The real features are constants (stop-gradient).

  Args:
    real_features: list over discriminators (scales) of lists over layers of float
      [N, ...], D's activations on the real frames.
    fake_features: the same structure on the generated frames (same conditions).

  Returns:
    float32 [N]: the mean absolute difference per example, averaged over the layers of each
    discriminator, then over discriminators (pix2pixHD weights the same way, up to a
    constant factor: the sum over its layers).
  """
  per_scale = []
  for real_layers, fake_layers in zip(real_features, fake_features):
    per_layer = [_per_example(tf.abs(tf.cast(f, tf.float32) -
                                     tf.stop_gradient(tf.cast(r, tf.float32))))
                 for r, f in zip(real_layers, fake_layers)]
    per_scale.append(tf.add_n(per_layer) / len(per_layer))
  return tf.add_n(per_scale) / len(per_scale)


def perceptual_loss(vgg, fake, real):
  """Eq. (7): L1 between VGG features of generated and real frames, summed over layers.

  Args:
    vgg: an apvg_tf.models.vgg.VGGFeatures returning the layers psi to compare.
    fake: float [N, R, R, 3] in [0, 1].
    real: float [N, R, R, 3] in [0, 1].

  Returns:
    float [N]: sum over layers of the mean absolute feature difference (features of the
    Caffe-preprocessed input, so about 0-100 in size; weight it in the config).
  """
  features = vgg(tf.concat([fake, tf.cast(real, fake.dtype)], 0))
  total = 0.0
  for value in features.values():
    # float32 (the features are float16 under mixed precision; the mean is over many pixels).
    f, r = tf.split(tf.cast(value, tf.float32), 2, axis=0)
    total += _per_example(tf.abs(f - tf.stop_gradient(r)))
  return total


def contrastive_loss(audio_embeddings, motion_embeddings, temperature):
  """Symmetric InfoNCE (CLIP's) over a batch of matched (audio, motion) pairs.

  With s_ij = <a_i, m_j> / temperature, the loss of pair i is
    (1/2) [ -log softmax_j(s_ij)[i]  +  -log softmax_j(s_ji)[i] ],
  i.e. audio i must pick out its own motion among the batch's, and motion i its own audio.

  Args:
    audio_embeddings: float [N, E] (unit vectors).
    motion_embeddings: float [N, E] (unit vectors); row i goes with audio row i.
    temperature: positive float.

  Returns:
    float [N].
  """
  logits = tf.matmul(tf.cast(audio_embeddings, tf.float32),
                     tf.cast(motion_embeddings, tf.float32), transpose_b=True) / temperature
  labels = tf.range(tf.shape(logits)[0])
  by_audio = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
  by_motion = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.transpose(logits))
  return 0.5 * (by_audio + by_motion)
