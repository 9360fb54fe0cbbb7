"""A spatio-temporal graph network over keypoint sequences (the motion side of the motion prior).

From Ren et al.'s "Music-oriented Dance Video Synthesis with Pose Perceptual Loss": a graph
network over the skeleton sequence gives features in which motions are compared (the pose
perceptual loss) and matched against music (the sync evaluator).

Per frame t and keypoint p, with mask m_p = [c_p > 0]:
  node features  u_tp = m_p [4 (x_tp - 0.5), 4 (y_tp - 0.5), 50 dx_tp, 50 dy_tp, 1]
                 (d = difference from the previous frame; the scales bring positions, which
                 span about half the frame, and velocities, about 0.01 per frame, to order 1)
  spatial        h_t = GCN_L(...GCN_1(Dense(u_t)))       TF-GNN GCN layers, one skeleton graph
                                                          per frame, bones in both directions
  pooled         g_t = [sum_p w_tpk h_tp for k = 1..K]   attention pooling over the valid
                 w_tpk = softmax_p(q_k(h_tp))            nodes: K heads, each weighing nodes
                                                          by their state (so a head can pick
                                                          out a hand by where it is)
  temporal       f^k = Conv1D_k(f^{k-1}), f^0 = g        convolutions across frames
  embedding      e = Dense(mean_t f^K)
Every node-level operation has the same weights for all nodes and the pooling is a weighted
sum whose weights come from the node states, so
the encoder is invariant to the order of the nodes given the same graph (the bones re-indexed
with them): what a node is comes from the graph and where it is, not from its index.
"""

import tensorflow as tf
from tensorflow_gnn.models import gcn

from apvg_tf import dtype_policy, skeleton
from apvg_tf.models import gcn_block
from apvg_tf.models.keypoint_predictor import KAIMING

NODE_FEATURES = 5
POSITION_SCALE = 4.0
VELOCITY_SCALE = 50.0


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class PoseSequenceEncoder(tf.keras.layers.Layer):
  """Keypoint sequences [B, T, P, 3] -> (embedding [B, E], features list of [B, T_k, C_k])."""

  def __init__(self, *, node_units=64, gcn_layers=2, pool_heads=8,
               temporal_channels=(128, 128, 128),
               temporal_strides=(1, 2, 2), embedding=128, bones=skeleton.BONES,
               num_keypoints=skeleton.NUM_KEYPOINTS, **kwargs):
    """Configures the encoder.

    Args:
      node_units: width of the node states (the input Dense and every GCN layer).
      gcn_layers: number of TF-GNN GCN layers over each frame's skeleton.
      pool_heads: K, attention heads pooling the nodes of a frame (g_t has K U features).
      temporal_channels: channels of the 1D convolutions across frames (kernel 5).
      temporal_strides: their strides (the time axis shrinks by their product).
      embedding: size of the sequence embedding.
      bones: undirected skeleton edges (i, j).
      num_keypoints: P.
    """
    super().__init__(**dtype_policy.full_precision(kwargs))  # TF-GNN features: float32.
    self.node_units, self.num_gcn_layers = int(node_units), int(gcn_layers)
    self.pool_heads = int(pool_heads)
    self.temporal_channels = tuple(int(c) for c in temporal_channels)
    self.temporal_strides = tuple(int(s) for s in temporal_strides)
    self.embedding = int(embedding)
    self.bones = tuple((int(i), int(j)) for i, j in bones)
    self.num_keypoints = int(num_keypoints)
    self._sources, self._targets = gcn_block.directed_bones(self.bones)
    with dtype_policy.policy_scope(self.dtype_policy):
      self.node_dense = tf.keras.layers.Dense(self.node_units, activation="relu",
                                              kernel_initializer=KAIMING, name="node_dense")
      self.gcn_layers = [gcn.GCNHomGraphUpdate(
          units=self.node_units, activation="relu", add_self_loops=True,
          degree_normalization="in_out", edge_weight_feature_name=gcn_block.EDGE_WEIGHT,
          kernel_initializer=KAIMING, name=f"gcn_{i}") for i in range(self.num_gcn_layers)]
      self.pool_scores = tf.keras.layers.Dense(self.pool_heads, name="pool_scores")
      self.temporal = [tf.keras.layers.Conv1D(c, 5, strides=s, padding="same",
                                              activation="relu", kernel_initializer=KAIMING,
                                              name=f"temporal_{i}")
                       for i, (c, s) in enumerate(zip(self.temporal_channels,
                                                      self.temporal_strides))]
      self.project = tf.keras.layers.Dense(self.embedding, name="project")

  def build(self, input_shape):
    # Create the GCN's weights now (TF-GNN creates them on the first call), so a checkpoint
    # restores into them before any real call.
    with dtype_policy.policy_scope(self.dtype_policy):
      self.call(tf.zeros([1, 4, self.num_keypoints, 3]))
    super().build(input_shape)

  def node_features(self, keypoints):
    """u_tp of the module docstring: [B, T, P, 3] -> ([B, T, P, 5], mask [B, T, P])."""
    keypoints = tf.cast(keypoints, tf.float32)
    mask = tf.cast(keypoints[..., 2] > 0, tf.float32)
    xy = tf.where(mask[..., None] > 0, keypoints[..., :2] - 0.5, 0.0)  # NaN-safe.
    # The first frame's velocity is zero; a point missing in either frame has none.
    both = mask[:, 1:] * mask[:, :-1]
    velocity = (xy[:, 1:] - xy[:, :-1]) * both[..., None]
    velocity = tf.concat([tf.zeros_like(xy[:, :1]), velocity], 1)
    features = tf.concat([POSITION_SCALE * xy, VELOCITY_SCALE * velocity,
                          tf.ones_like(xy[..., :1])], -1) * mask[..., None]
    return features, mask

  def call(self, keypoints, training=False):
    """Encodes keypoint sequences.

    Args:
      keypoints: float [B, T, P, 3] ((x, y) in [0, 1], confidence); T static or dynamic.
      training: unused.

    Returns:
      (embedding float [B, E], features: [g [B, T, K U], f^1, ..., f^K]) where U is
      `node_units` and f^k is [B, T / (s_1 ... s_k), C_k].
    """
    del training
    shape = tf.shape(keypoints)
    batch, steps = shape[0], shape[1]
    features, mask = self.node_features(keypoints)
    nodes = tf.reshape(features, [-1, self.num_keypoints, NODE_FEATURES])
    flat_mask = tf.reshape(mask, [-1, self.num_keypoints])
    graph = gcn_block.skeleton_graph(self.node_dense(nodes), flat_mask, self._sources,
                                     self._targets)
    for layer in self.gcn_layers:
      graph = layer(graph)
    hidden = tf.reshape(graph.node_sets[gcn_block.NODE_SET]["hidden_state"],
                        [-1, self.num_keypoints, self.node_units])  # [B T, P, U]
    scores = self.pool_scores(hidden)  # [B T, P, K]
    scores = tf.where(flat_mask[..., None] > 0, scores, -1e9)
    weights = tf.nn.softmax(scores, axis=1) * flat_mask[..., None]  # No valid node: all 0.
    pooled = tf.einsum("npk,npu->nku", weights, hidden)
    pooled = tf.reshape(pooled, [batch, steps, self.pool_heads * self.node_units])
    out = [pooled]
    for conv in self.temporal:
      out.append(conv(out[-1]))
    return self.project(tf.reduce_mean(out[-1], 1)), out

  def get_config(self):
    return {**super().get_config(), "node_units": self.node_units,
            "gcn_layers": self.num_gcn_layers, "pool_heads": self.pool_heads,
            "temporal_channels": self.temporal_channels,
            "temporal_strides": self.temporal_strides, "embedding": self.embedding,
            "bones": self.bones, "num_keypoints": self.num_keypoints}
