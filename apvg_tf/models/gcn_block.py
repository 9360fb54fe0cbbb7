"""The STU's structured block: a GCN over the skeleton, read from and written to a feature map.

Given a feature map F [B, H, W, C], keypoints K [B, P, 2] ((x, y) in [0, 1] of the frame) and
confidences c [B, P] (0 = missing), with m_p = [c_p > 0] the node mask:

  (a) Sample.  T_p [H, W] is keypoint p's bilinear kernel, the DLT tent of eq. (1) with r = 1
      and alpha = 1, rendered by `apvg_tf.heatmap.render_heatmaps`; so the pixel convention is
      heatmap.py's (pixel centres at (i + 0.5) / W: px = x W - 0.5, py = y H - 0.5), and
      outside the frame counts as zeros.
          v_p = sum_{j,i} T_p[j, i] F[j, i, :]                       node features [B, P, C]
  (b) Graph.  Nodes are the keypoints, edges the skeleton bones in both directions. A masked
      node is cut out: every edge touching it gets weight 0 (see "Masking" below).
  (c) Convolve.  L = `num_layers` GCN layers (Kipf & Welling; TF-GNN's GCNHomGraphUpdate):
          h^0 = v,   h^{l+1} = sigma_l(A_hat h^l W_l + b_l),   A_hat = D^-1/2 (A + I) D^-1/2,
      A the 0/1 adjacency among valid nodes, D its degree plus one (the self-loop). sigma_l is
      `activation` for l < L - 1 and the identity for the last layer, which has C units so
      that it can be added to F; hidden layers have `units` (default C). With
      `output_initializer="zeros"` W_{L-1} starts at zero, so the block starts as the identity
      (see `__init__`).
  (d) Splat.  The transpose of (a), added to F as a residual; masked nodes write nothing:
          F'[j, i, :] = F[j, i, :] + sum_p m_p T_p[j, i] h^L_p

Both (a) and (d) are linear in F and piecewise linear in the keypoint coordinates, so the
gradient reaches F and K (it is zero for a keypoint exactly on a pixel centre along that axis,
where |.| has a kink, and for masked keypoints).

Batching: the B skeletons form one GraphTensor with B components (component b holds nodes
b P .. b P + P - 1). Masking: every node and edge stays in the graph and an edge's weight is
m_source m_target, which GCNConv uses both as the adjacency entry and in the degrees. For the
valid nodes this equals the graph with the masked nodes and their edges removed (a masked node
neither sends nor receives), and it keeps all shapes static ([B P] nodes, [B 2E] edges), which
XLA needs; dropping nodes would make the sizes data-dependent. Masked keypoints are moved to
the frame centre and their features set to 0 first, so NaN coordinates of a missing detection
cannot reach the result through a zero weight.

Precision: under a mixed_float16 policy the block computes in float32 (its inputs are cast
on the way in): the sampling kernels need float32 coordinates, and TF-GNN's GraphTensor
features are not cast by Keras.
"""

from typing import Optional, Sequence, Tuple

import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn.models import gcn

from apvg_tf import dtype_policy, heatmap, skeleton

NODE_SET = "keypoints"
EDGE_SET = "bones"
EDGE_WEIGHT = "weight"


def directed_bones(bones):
  """(sources, targets): each undirected bone (i, j) as the edges i -> j and j -> i."""
  bones = [(int(i), int(j)) for i, j in bones]
  forward, backward = [i for i, _ in bones], [j for _, j in bones]
  return forward + backward, backward + forward


def skeleton_graph(node_features, node_mask, sources, targets):
  """A batch of skeletons as one GraphTensor with one component per skeleton.

  Args:
    node_features: float [B, P, D], the initial node states (B may be dynamic).
    node_mask: float [B, P], 1 for valid and 0 for masked keypoints.
    sources: list of E int source keypoints of the directed edges (see `directed_bones`).
    targets: list of E int target keypoints.

  Returns:
    A scalar GraphTensor: node set "keypoints" (B P nodes, feature `hidden_state` [B P, D]),
    edge set "bones" (B E edges, feature "weight" [B E] = m_source m_target).
  """
  batch = tf.shape(node_features)[0]
  num_nodes = node_features.shape[1]
  offsets = tf.range(batch)[:, None] * num_nodes  # [B, 1]
  edge_sources = tf.reshape(offsets + tf.constant(sources, tf.int32)[None], [-1])
  edge_targets = tf.reshape(offsets + tf.constant(targets, tf.int32)[None], [-1])
  weights = tf.gather(node_mask, sources, axis=1) * tf.gather(node_mask, targets, axis=1)
  return tfgnn.GraphTensor.from_pieces(
      node_sets={NODE_SET: tfgnn.NodeSet.from_fields(
          sizes=tf.fill([batch], num_nodes),
          features={tfgnn.HIDDEN_STATE: tf.reshape(node_features,
                                                   [-1, node_features.shape[-1]])})},
      edge_sets={EDGE_SET: tfgnn.EdgeSet.from_fields(
          sizes=tf.fill([batch], len(sources)),
          adjacency=tfgnn.Adjacency.from_indices(source=(NODE_SET, edge_sources),
                                                 target=(NODE_SET, edge_targets)),
          features={EDGE_WEIGHT: tf.reshape(weights, [-1])})})


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class KeypointGCN(tf.keras.layers.Layer):
  """Refines a feature map at the keypoints with a skeleton GCN (see the module docstring).

  Call: (feature_map [B, H, W, C], keypoints [B, P, 2], confidences [B, P] or None) ->
  [B, H, W, C]. H, W and C must be static; B may be None. Sublayers: `gcn_0` ..
  `gcn_{num_layers - 1}` (TF-GNN GraphUpdates, created in `build` once C is known).
  """

  def __init__(self, *, num_layers: int = 2, units: Optional[int] = None,
               activation="relu", use_bias: bool = True, kernel_initializer="glorot_uniform",
               output_initializer=None,
               bones: Sequence[Tuple[int, int]] = skeleton.BONES,
               num_keypoints: int = skeleton.NUM_KEYPOINTS, **kwargs):
    """Configures the block.

    Args:
      num_layers: L, the number of GCN layers (>= 1).
      units: width of the hidden GCN layers (default: C, the feature map's channels). The last
        layer always has C units.
      activation: Keras activation of the hidden layers (the last one is linear).
      use_bias: whether each GCN layer adds a bias.
      kernel_initializer: initializer of the GCN kernels (cloned per layer).
      output_initializer: initializer of the last layer's kernel (default:
        `kernel_initializer`). "zeros" makes the block start as the identity: with random
        weights the splat adds, at the skeleton's cells of an STU bottleneck, about twice the
        features already there (the 21 points of a hand land in one or two cells), noise the
        decoder must first learn to ignore; zero, the block adds only what it has learnt.
      bones: undirected skeleton edges as (i, j) keypoint index pairs.
      num_keypoints: P.
      **kwargs: passed to `tf.keras.layers.Layer` (name, ...).

    Raises:
      ValueError: if `num_layers` < 1 or a bone names a keypoint outside 0 .. P - 1.
    """
    super().__init__(**dtype_policy.full_precision(kwargs))  # See "Precision" above.
    self.num_layers = int(num_layers)
    self.units = None if units is None else int(units)
    self.activation = tf.keras.activations.get(activation)
    self.use_bias = bool(use_bias)
    self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
    self.output_initializer = tf.keras.initializers.get(
        kernel_initializer if output_initializer is None else output_initializer)
    self.bones = tuple((int(i), int(j)) for i, j in bones)
    self.num_keypoints = int(num_keypoints)
    if self.num_layers < 1:
      raise ValueError(f"KeypointGCN needs num_layers >= 1, got {self.num_layers}")
    bad = [bone for bone in self.bones if not all(0 <= k < self.num_keypoints for k in bone)]
    if bad:
      raise ValueError(f"bones {bad} name keypoints outside 0..{self.num_keypoints - 1}")
    # Each bone in both directions: GCN messages flow both ways along a bone.
    self._sources, self._targets = directed_bones(self.bones)
    self.gcn_layers = []

  def build(self, input_shape):
    input_shape = tf.TensorShape(input_shape)
    if input_shape.rank != 4 or None in input_shape[1:]:
      raise ValueError(f"KeypointGCN needs a feature map [B, H, W, C] with static H, W and C, "
                       f"got shape {input_shape}")
    channels = int(input_shape[-1])
    # The GCN's sublayers (and the ones TF-GNN creates on their first call) take the global
    # policy, not this layer's: make it this layer's float32 while they are created.
    with dtype_policy.policy_scope(self.dtype_policy):
      self._build_gcn(channels)
    super().build(input_shape)

  def _build_gcn(self, channels):
    """Creates the GCN layers and their weights (on a one-skeleton dummy graph)."""
    for index in range(self.num_layers):
      last = index == self.num_layers - 1
      self.gcn_layers.append(gcn.GCNHomGraphUpdate(
          units=channels if last or self.units is None else self.units,
          activation=None if last else self.activation, use_bias=self.use_bias,
          kernel_initializer=self.output_initializer if last else self.kernel_initializer,
          add_self_loops=True,
          degree_normalization="in_out", edge_weight_feature_name=EDGE_WEIGHT,
          name=f"gcn_{index}"))
    # GCNHomGraphUpdate creates its sublayers and weights on its first call. Calling it on a
    # one-skeleton dummy graph here makes them exist once `build` returns, which Keras's
    # SavedModel loader relies on: it builds revived layers, then matches their children to
    # the saved ones (children still missing at that point would silently not be restored).
    graph = self.build_graph(tf.zeros([1, self.num_keypoints, channels], self.compute_dtype),
                             tf.ones([1, self.num_keypoints], self.compute_dtype))
    for layer in self.gcn_layers:
      graph = layer(graph)

  def build_graph(self, node_features, node_mask):
    """The batch of skeletons as one GraphTensor (see `skeleton_graph`)."""
    return skeleton_graph(node_features, node_mask, self._sources, self._targets)

  def call(self, feature_map, keypoints, confidences=None):
    """Samples, convolves over the skeleton and splats back.

    Args:
      feature_map: float [B, H, W, C], F.
      keypoints: float [B, P, 2], (x, y) in [0, 1] of the frame (a third column is ignored).
      confidences: optional float [B, P]; keypoints with confidence <= 0 are masked. None
        means all are valid.

    Returns:
      float [B, H, W, C], F plus the splatted node updates.

    Raises:
      ValueError: if the keypoints' P differs from `num_keypoints`.
    """
    height, width, channels = feature_map.shape[1:]
    if keypoints.shape[1] != self.num_keypoints:
      raise ValueError(f"KeypointGCN was configured for {self.num_keypoints} keypoints, got "
                       f"keypoints of shape {keypoints.shape}")
    dtype = feature_map.dtype
    batch = tf.shape(feature_map)[0]
    keypoints = tf.cast(keypoints[..., :2], dtype)
    if confidences is None:
      valid = tf.ones(tf.shape(keypoints)[:2], tf.bool)
    else:
      valid = tf.cast(confidences, dtype) > 0
    mask = tf.cast(valid, dtype)  # [B, P]
    keypoints = tf.where(valid[..., None], keypoints, tf.constant(0.5, dtype))

    # Per-point bilinear kernels T_p: P single-point heatmaps of the DLT.
    kernels = heatmap.render_heatmaps(keypoints[:, :, None, :], height, width)  # [B,P,H,W,1]
    kernels = tf.reshape(kernels, [batch, self.num_keypoints, height * width])
    pixels = tf.reshape(feature_map, [batch, height * width, channels])
    nodes = tf.where(valid[..., None], tf.matmul(kernels, pixels), tf.zeros([], dtype))

    graph = self.build_graph(nodes, mask)
    for layer in self.gcn_layers:
      graph = layer(graph)
    refined = tf.reshape(graph.node_sets[NODE_SET][tfgnn.HIDDEN_STATE],
                         [batch, self.num_keypoints, channels])
    refined = tf.cast(refined, dtype)

    splat = tf.matmul(kernels * mask[..., None], refined, transpose_a=True)  # [B, H W, C]
    return feature_map + tf.reshape(splat, [batch, height, width, channels])

  def get_config(self):
    return {**super().get_config(), "num_layers": self.num_layers, "units": self.units,
            "activation": tf.keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": tf.keras.initializers.serialize(self.kernel_initializer),
            "output_initializer": tf.keras.initializers.serialize(self.output_initializer),
            "bones": self.bones, "num_keypoints": self.num_keypoints}
