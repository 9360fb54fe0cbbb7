"""The three stages chained for inference: audio windows in, frames and keypoints out.

  K^pred = KP(A)                 keypoints (the KP's LSTM state carried)
  H^pred = DLT(K^pred)           heatmaps at the video resolution
  V^coarse = CVG(A)              autoregressive coarse frames (LSTM state and last frame carried)
  V^hq = STU(V^coarse, H^pred, K^pred, A)   (ConvGRU state carried)

`step` runs one chunk of T frames and returns the new state, so a song of any length streams
in constant memory; evaluation, generate.py and the exported SavedModel and ONNX graphs all
run this one function. A stage the STU was trained without (an ablation) is absent.

A KP with a lookahead of D frames draws the pose of frame t after hearing the windows up to
t + D. The step takes the windows of its own T stream positions and keeps what it needs of
them in its state, so its outputs lag by D: positions p .. p + T - 1 give frames
p - D .. p + T - 1 - D (`apvg_tf.streaming` feeds D positions past the song and drops the
first D outputs). The KP's LSTM runs over the positions as they come (its output at
position p is the pose of frame p - D); the CVG does not lag (frame p at position p) and its
last D coarse frames wait in the state with their windows (`lag_coarse`, `lag_audio`) for
the poses; the STU draws frames p - D .. p + T - 1 - D, and frames before the song (the
first D positions) leave its ConvGRU state untouched (`position` counts the positions heard).
The frames are those of one pass over the whole song.
"""

import numpy as np
import tensorflow as tf

from apvg_tf import heatmap
from apvg_tf.audio import N_BINS, WINDOW_COLUMNS
from apvg_tf.models import (coarse_video_generator, keypoint_predictor,
                            structured_temporal_unet)
from apvg_tf.skeleton import NUM_KEYPOINTS

STATE_KEYS = ("kp_h", "kp_c", "cvg_h", "cvg_c", "cvg_frame", "stu_g", "lag_audio",
              "lag_coarse", "position")


class PerformanceGenerator(tf.Module):
  """KP + DLT + CVG + STU with streaming state.

  State: a dict of float tensors (the keys of STATE_KEYS whose stage is present)
    kp_h, kp_c [B, kp.lstm_units + kp.arm_units]; cvg_h, cvg_c [B, cvg.lstm_units];
    cvg_frame [B, R, R, 3] (the last coarse frame); stu_g [B, s, s, stu.gru_filters]; with a
    lookahead D > 0 also lag_audio [B, D, 84, 87], lag_coarse [B, D, R, R, 3] (with a CVG)
    and position [B, 1] (positions heard, a float so that every state is one dtype).
  """

  def __init__(self, *, stu, keypoint_predictor=None, coarse_video_generator=None,
               heatmap_radius=1.0, heatmap_parts=False, limb_maps=False, limb_width=1.0,
               name="performance_generator"):
    """Chains trained stages.

    Args:
      stu: a StructuredTemporalUNet.
      keypoint_predictor: a KeypointPredictor (needed when the STU uses heatmaps).
      coarse_video_generator: a CoarseVideoGenerator (needed when the STU uses coarse video).
      heatmap_radius: DLT tent radius in pixels at the STU's resolution.
      heatmap_parts: per-part heatmap channels.
      limb_maps: the bones drawn as lines beside the heatmaps (`heatmap.limb_maps`).
      limb_width: their half-width in pixels.
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
    self.limb_maps, self.limb_width = bool(limb_maps), float(limb_width)
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
    d = self.lookahead
    if d:
      state["lag_audio"] = tf.zeros([batch_size, d, N_BINS, WINDOW_COLUMNS])
      if self.cvg is not None:
        state["lag_coarse"] = tf.zeros([batch_size, d, self.resolution, self.resolution, 3])
      state["position"] = tf.zeros([batch_size, 1])
    return state

  def heatmaps(self, keypoints):
    """DLT at the video resolution: [B, T, P, 2] (or [.., 3], weighted by confidence as
    in training) -> [B, T, R, R, C]."""
    return heatmap.pose_heatmaps(keypoints, self.resolution, radius=self.heatmap_radius,
                                 parts=self.heatmap_parts, limbs=self.limb_maps,
                                 line_width=self.limb_width)

  def step(self, audio, state, noise=None, keypoints=None):
    """Generates one chunk (see the module docstring for the lag of D = `lookahead`).

    Args:
      audio: float [B, T, 84, 87] normalised audio windows of stream positions
        p .. p + T - 1 (position q is frame q's window; past the song's end, as
        `frame_windows` makes them).
      state: the dict from `initial_state` or from the previous chunk.
      noise: optional CVG noise z [B, T, z_dim] of the positions (default standard normal).
      keypoints: optional [B, T, P, 3] poses (with confidence) of the output frames
        p - D .. p + T - 1 - D, which the STU draws from instead of the KP's; the KP is then
        not run and keeps its state: the oracle of the STU ablations (what a correct pose
        would buy), not a generation mode.

    Returns:
      (outputs, new state): outputs has frames float [B, T, R, R, 3] in [0, 1] of frames
      p - D .. p + T - 1 - D, and, when the stages are present, their keypoints
      [B, T, P, 2] and coarse frames [B, T, R, R, 3].
    """
    audio = tf.cast(audio, tf.float32)
    d = self.lookahead
    new_state, outputs, inputs = {}, {}, {}
    if keypoints is not None and self.kp is not None:
      keypoints = tf.cast(keypoints, tf.float32)
      new_state.update(kp_h=state["kp_h"], kp_c=state["kp_c"])
    elif self.kp is not None:
      keypoints, (h, c) = self.kp(audio, initial_state=[state["kp_h"], state["kp_c"]],
                                  return_state=True)
      new_state.update(kp_h=h, kp_c=c)
    if keypoints is not None:
      outputs["keypoints"] = keypoints[..., :2]
      inputs["keypoints"] = keypoints
      inputs["heatmaps"] = self.heatmaps(keypoints)
    coarse = None
    if self.cvg is not None:
      coarse, (h, c, frame) = self.cvg(
          audio, initial_state=[state["cvg_h"], state["cvg_c"], state["cvg_frame"]],
          return_state=True, noise=noise)
      new_state.update(cvg_h=h, cvg_c=c, cvg_frame=frame)
    valid = None
    if d:
      # A static length stays static (the unrolled ONNX step needs it).
      steps = audio.shape[1] if audio.shape[1] is not None else tf.shape(audio)[1]
      audio, new_state["lag_audio"] = self._delay(state["lag_audio"], audio, steps)
      if coarse is not None:
        coarse, new_state["lag_coarse"] = self._delay(state["lag_coarse"], coarse, steps)
      position = state["position"]
      valid = position + tf.cast(tf.range(steps), tf.float32)[None] >= d
      new_state["position"] = position + tf.cast(steps, tf.float32)
    inputs["audio"] = audio
    if coarse is not None:
      outputs["coarse"] = inputs["coarse"] = coarse
    frames, g = self.stu(inputs, initial_state=state["stu_g"], return_state=True, valid=valid)
    new_state["stu_g"] = g
    outputs["frames"] = frames
    return outputs, new_state

  @staticmethod
  def _delay(waiting, current, steps):
    """(the `steps` items D positions back, the last D items): [B, D + T, ...] split."""
    joined = tf.concat([waiting, current], 1)
    return joined[:, :steps], joined[:, steps:]


def performance_generator_from_config(config, *, instrument=None, mean_pose=None,
                                      first_frame=None, canvas=None):
  """The pipeline a config trains, with fresh weights and every weight created.

  Built as the training tasks build the stages (`models.*_from_config`), so a checkpoint or
  an export's variables restore into it; the images and the mean pose only set initial
  values of weights that such a restore replaces.

  Args:
    config: a run's ConfigDict (its `khp`, `cvg`, `stu` blocks and `resolution`).
    instrument: the dataset's instrument (the KP's arm path follows it).
    mean_pose: optional float [67, 2+], the KP's initial mean pose.
    first_frame, canvas: optional float [R, R, 3] initial images of the CVG and the STU.

  Returns:
    A PerformanceGenerator.
  """
  res = config.resolution
  stu_config = config.stu
  kp = cvg = None
  if stu_config.use_heatmap:
    kp = keypoint_predictor.keypoint_predictor_from_config(
        config.khp, np.full((NUM_KEYPOINTS, 2), 0.5, np.float32) if mean_pose is None
        else mean_pose, instrument)
  if stu_config.use_coarse:
    cvg = coarse_video_generator.coarse_video_generator_from_config(
        config.cvg, res, first_frame=first_frame)
  stu = structured_temporal_unet.structured_temporal_unet_from_config(
      stu_config, res, heatmap.num_channels(stu_config.heatmap_parts, stu_config.limb_maps),
      canvas=canvas)
  generator = PerformanceGenerator(stu=stu, keypoint_predictor=kp, coarse_video_generator=cvg,
                                   heatmap_radius=stu_config.heatmap_radius,
                                   heatmap_parts=stu_config.heatmap_parts,
                                   limb_maps=stu_config.limb_maps,
                                   limb_width=stu_config.limb_width)
  # Create every weight now (eagerly, outside any loop), as the tasks' build does.
  generator.step(tf.zeros([1, 1, N_BINS, WINDOW_COLUMNS]), generator.initial_state(1))
  return generator
