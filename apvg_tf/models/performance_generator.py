"""The three stages chained for inference: audio windows in, frames and keypoints out.

  K^pred = KP(A)                 keypoints (the KP's LSTM state carried)
  H^pred = DLT(K^pred)           heatmaps at the video resolution
  V^coarse = CVG(A)              autoregressive coarse frames (LSTM state and last frame carried)
  V^hq = STU(V^coarse, H^pred, K^pred, A)   (ConvGRU state carried)

`step` runs one chunk of T frames and returns the new state, so a song of any length streams
in constant memory; evaluation, generate.py and the exported SavedModel and ONNX graphs all
run this one function. A stage the STU was trained without (an ablation) is absent.

A KP with a lookahead of D frames draws the pose of frame t after hearing the windows up to
t + D, so a chunk of frames t .. t + T - 1 comes with the windows of frames t .. t + T + D - 1
(past the song's end, as `frame_windows` makes them); the last D are heard again with the
next chunk. The KP's state is the one after frame t + T - 1, and it hears the D windows
ahead from there without keeping what they change: the result is that of one pass over the
whole song (`khp_eval.predict_clip`).
"""

import tensorflow as tf

from apvg_tf import heatmap

STATE_KEYS = ("kp_h", "kp_c", "cvg_h", "cvg_c", "cvg_frame", "stu_g")


class PerformanceGenerator(tf.Module):
  """KP + DLT + CVG + STU with streaming state.

  State: a dict of float tensors (the keys of STATE_KEYS whose stage is present)
    kp_h, kp_c [B, kp.lstm_units + kp.arm_units]; cvg_h, cvg_c [B, cvg.lstm_units]; cvg_frame [B, R, R, 3]
    (the last coarse frame); stu_g [B, s, s, stu.gru_filters].
  """

  def __init__(self, *, stu, keypoint_predictor=None, coarse_video_generator=None,
               heatmap_radius=1.0, heatmap_parts=False, name="performance_generator"):
    """Chains trained stages.

    Args:
      stu: a StructuredTemporalUNet.
      keypoint_predictor: a KeypointPredictor (needed when the STU uses heatmaps).
      coarse_video_generator: a CoarseVideoGenerator (needed when the STU uses coarse video).
      heatmap_radius: DLT tent radius in pixels at the STU's resolution.
      heatmap_parts: per-part heatmap channels.
      name: module name.

    Raises:
      ValueError: if a stage the STU needs is missing.
    """
    super().__init__(name=name)
    if stu.use_heatmap and keypoint_predictor is None:
      raise ValueError("this STU uses heatmaps: pass the keypoint predictor")
    if stu.use_coarse and coarse_video_generator is None:
      raise ValueError("this STU uses the coarse video: pass the coarse video generator")
    self.stu, self.kp, self.cvg = stu, keypoint_predictor, coarse_video_generator
    self.heatmap_radius, self.heatmap_parts = float(heatmap_radius), bool(heatmap_parts)
    self.resolution = stu.resolution

  def set_unroll(self, unroll):
    """Python loops instead of while loops in every stage (for a loop-free ONNX step)."""
    for model in (self.kp, self.cvg):
      if model is not None:
        model.unroll = bool(unroll)
    if self.stu.use_gru:
      self.stu.gru.unroll = bool(unroll)

  @property
  def lookahead(self):
    """D: frames of music past a frame that its pose needs (0 without a KP)."""
    return self.kp.lookahead_frames if self.kp is not None else 0

  @property
  def z_dim(self):
    return self.cvg.z_dim if self.cvg is not None else 1

  def initial_state(self, batch_size):
    """The state at the start of a song (the CVG starts from its stored first frame)."""
    state = {"stu_g": self.stu.zero_state(batch_size)}
    if self.kp is not None:
      state["kp_h"], state["kp_c"] = self.kp.zero_state(batch_size)
    if self.cvg is not None:
      state["cvg_h"], state["cvg_c"], state["cvg_frame"] = self.cvg.initial_state(batch_size)
    return state

  def heatmaps(self, keypoints):
    """DLT at the video resolution: [B, T, P, 2] (or [.., 3], weighted by confidence as
    in training) -> [B, T, R, R, C]."""
    return heatmap.pose_heatmaps(keypoints, self.resolution, radius=self.heatmap_radius,
                                 parts=self.heatmap_parts)

  def step(self, audio, state, noise=None, keypoints=None):
    """Generates one chunk.

    Args:
      audio: float [B, T + D, 84, 87] normalised audio windows of frames t .. t + T + D - 1,
        D = `lookahead` (past the song's end, as `frame_windows` makes them).
      state: the dict from `initial_state` or from the previous chunk.
      noise: optional CVG noise z [B, T, z_dim] (default standard normal).
      keypoints: optional [B, T, P, 3] poses (with confidence) that the STU draws from
        instead of the KP's, which is then not run and keeps its state: the oracle of the
        STU ablations (what a correct pose would buy), not a generation mode.

    Returns:
      (outputs, new state): outputs has frames float [B, T, R, R, 3] in [0, 1], and, when
      the stages are present, keypoints [B, T, P, 2] and coarse [B, T, R, R, 3].
    """
    audio = tf.cast(audio, tf.float32)
    d = self.lookahead
    if d:  # A static length stays static (the unrolled ONNX step needs it).
      n = audio.shape[1] if audio.shape[1] is not None else tf.shape(audio)[1]
      audio, ahead = audio[:, :n - d], audio[:, n - d:]
    new_state, outputs = {}, {}
    inputs = {"audio": audio}
    if keypoints is not None and self.kp is not None:
      keypoints = tf.cast(keypoints, tf.float32)
      new_state.update(kp_h=state["kp_h"], kp_c=state["kp_c"])
      outputs["keypoints"] = keypoints[..., :2]
      inputs["keypoints"] = keypoints
      inputs["heatmaps"] = self.heatmaps(keypoints)
    elif self.kp is not None:
      keypoints, (h, c) = self.kp(audio, initial_state=[state["kp_h"], state["kp_c"]],
                                  return_state=True)
      if d:  # Outputs are poses D frames back: the D windows ahead give the chunk's last D.
        keypoints = tf.concat([keypoints, self.kp(ahead, initial_state=[h, c])], 1)[:, d:]
      new_state.update(kp_h=h, kp_c=c)
      outputs["keypoints"] = keypoints
      inputs["keypoints"] = keypoints
      inputs["heatmaps"] = self.heatmaps(keypoints)
    if self.cvg is not None:
      coarse, (h, c, frame) = self.cvg(
          audio, initial_state=[state["cvg_h"], state["cvg_c"], state["cvg_frame"]],
          return_state=True, noise=noise)
      new_state.update(cvg_h=h, cvg_c=c, cvg_frame=frame)
      outputs["coarse"] = coarse
      inputs["coarse"] = coarse
    frames, g = self.stu(inputs, initial_state=state["stu_g"], return_state=True)
    new_state["stu_g"] = g
    outputs["frames"] = frames
    return outputs, new_state
