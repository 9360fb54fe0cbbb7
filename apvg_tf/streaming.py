"""The one streaming loop: a song through a model's `step`, chunk by chunk, state carried.

Every host runs a song this way: evaluation of each stage, training's validation,
generate.py (through an exported model's runner) and the SavedModel's `generate` (one chunk
of the whole song). A step takes the audio windows of T consecutive stream positions and
returns T outputs and its new state:

    step(windows [1, T, 84, 87], noise [1, T, z] or None, state, keypoints [1, T, P, 3] or None)
        -> (outputs: dict of [1, T, ...], new state)

Position p is frame p's window. A model that draws a frame after hearing D frames of music
beyond it (the KP's lookahead) keeps those D windows in its own state, so its outputs lag
its positions by D: the outputs at position p are frame p - D. The host therefore feeds
positions 0 .. N + D - 1 (the last D are windows past the song's end, as `frame_windows`
makes them) and drops the first D outputs; N frames come out, whatever the chunk length.
Noise goes with the positions (it drives the coarse video, which does not lag); given
keypoints (the STU oracle) go with the outputs' frames.
"""

import numpy as np
import tensorflow as tf

from apvg_tf.audio import N_BINS, WINDOW_COLUMNS
from apvg_tf.export_format import to_uint8


def num_positions(num_frames, lookahead):
  """How many stream positions give `num_frames` frames with a lag of `lookahead`."""
  return num_frames + lookahead


def _take(source, first, last):
  """Rows first .. last - 1 of an array (or a callable (first, last) -> rows), batch added."""
  if callable(source):
    return source(first, last)[None]
  return source[None, first:last]


def _frames_rows(array, first, last):
  """Rows first .. last - 1 of `array` [N, ...] (zeros outside it): [1, last - first, ...]."""
  rows = array[max(first, 0):max(min(last, len(array)), 0)]
  before = max(0, -first)
  after = (last - first) - before - len(rows)
  return np.pad(rows, [(before, after)] + [(0, 0)] * (array.ndim - 1))[None]


def stream(step, state, windows, num_frames, *, lookahead=0, chunk_frames=None, noise=None,
           keypoints=None):
  """Runs `step` over a song and yields its outputs, frame-aligned, chunk by chunk.

  Works on NumPy arrays and eager tensors chunk by chunk, and inside a tf.function with
  `chunk_frames=None` (one chunk: the SavedModel's `generate`).

  Args:
    step: the model's step (module docstring).
    state: its state at the start of the song.
    windows: [N + D, 84, 87] windows of the positions, or a callable (first, last) ->
      [last - first, 84, 87] that makes them as they are needed (generate.py's streaming
      CQT), D = `lookahead`.
    num_frames: N, frames of the song (an int; a scalar tensor with `chunk_frames=None`).
    lookahead: D, the lag of the step's outputs behind its positions.
    chunk_frames: positions per step (None: all of them in one step).
    noise: optional [N + D, z] noise of the positions, or a callable like `windows`.
    keypoints: optional NumPy [N, P, 3] poses of the frames, for the step to draw from.

  Yields:
    (first frame index, outputs dict of [1, t, ...] for frames first .. first + t - 1, the
    new state). The chunks cover frames 0 .. N - 1 in order; a chunk whose outputs are all
    before the song yields nothing.
  """
  total = num_positions(num_frames, lookahead)
  starts = [0] if chunk_frames is None else range(0, total, chunk_frames)
  for start in starts:
    stop = total if chunk_frames is None else min(start + chunk_frames, total)
    given = None if keypoints is None else _frames_rows(keypoints, start - lookahead,
                                                        stop - lookahead)
    outputs, state = step(_take(windows, start, stop),
                          None if noise is None else _take(noise, start, stop), state, given)
    # Outputs start at frame start - D: drop those before the song (none lie past its end).
    skip = lookahead if chunk_frames is None else max(lookahead - start, 0)
    if chunk_frames is not None and skip >= stop - start:
      continue
    yield start + skip - lookahead, {k: v[:, skip:] for k, v in outputs.items()}, state


def stream_all(step, state, windows, num_frames, **kwargs):
  """`stream`, collected: dict of NumPy [N, ...] (batch dropped) of every output."""
  out = {}
  for _, outputs, _ in stream(step, state, windows, num_frames, **kwargs):
    for key, value in outputs.items():
      out.setdefault(key, []).append(np.asarray(value)[0])
  return {key: np.concatenate(value) for key, value in out.items()}


# --------------------------------------------------------------- the stages' own streams

def _noise(seed, positions, z_dim):
  """The noise of every position: float32 [positions, z_dim], seeded."""
  return np.random.default_rng(seed).standard_normal((positions, z_dim)).astype(np.float32)


def predict_keypoints(model, windows, chunk_frames):
  """A KeypointPredictor over a clip: float32 [N, 67, 2].

  Args:
    model: a KeypointPredictor with a lookahead of D = `model.lookahead_frames`.
    windows: float32 [N + D, 84, 87], the clip's windows and the D after them
      (`data.clip_windows(..., lookahead=D)`).
    chunk_frames: positions per step.
  """
  def step(chunk, noise, state, keypoints):
    del noise, keypoints
    out, state = model(chunk, initial_state=state, return_state=True)
    return {"keypoints": out}, state

  d = model.lookahead_frames
  return stream_all(step, None, windows, len(windows) - d, lookahead=d,
                    chunk_frames=chunk_frames)["keypoints"]


def coarse_step(model):
  """A compiled streaming step of a CoarseVideoGenerator (state: (h, c, last frame))."""
  res, units = model.resolution, model.lstm_units

  @tf.function(input_signature=[
      tf.TensorSpec([None, None, N_BINS, WINDOW_COLUMNS], tf.float32),
      tf.TensorSpec([None, units], tf.float32), tf.TensorSpec([None, units], tf.float32),
      tf.TensorSpec([None, res, res, 3], tf.float32),
      tf.TensorSpec([None, None, model.z_dim], tf.float32)])
  def run(audio, h, c, frame, noise):
    frames, (h, c, frame) = model(audio, initial_state=[h, c, frame], return_state=True,
                                  noise=noise)
    return frames, h, c, frame

  def step(chunk, noise, state, keypoints):
    del keypoints
    frames, *state = run(chunk, *state, noise)
    return {"frames": frames}, state

  return step


def generate_coarse(model, windows, chunk_frames, *, step=None, seed=0):
  """A CoarseVideoGenerator over a clip from its stored first frame: uint8 [N, R, R, 3].

  Args:
    model: a CoarseVideoGenerator.
    windows: float32 [N, 84, 87] normalised audio windows.
    chunk_frames: positions per step.
    step: a `coarse_step(model)` (made if not given).
    seed: seed of the noise z.
  """
  step = step or coarse_step(model)
  out = stream_all(step, tuple(model.initial_state(1)), windows, len(windows),
                   chunk_frames=chunk_frames, noise=_noise(seed, len(windows), model.z_dim))
  return to_uint8(out["frames"])


def performance_step(generator):
  """A compiled streaming step of a PerformanceGenerator."""
  run = tf.function(generator.step)

  def step(chunk, noise, state, keypoints):
    given = {} if keypoints is None else {"keypoints": keypoints}
    return run(chunk, state, noise, **given)

  return step


def generate_performance(generator, windows, chunk_frames, *, seed=0, step=None,
                         keypoints=None):
  """The whole pipeline over a clip's audio windows.

  Args:
    generator: a PerformanceGenerator.
    windows: float32 [N + D, 84, 87] normalised windows of the clip's frames and the D after
      them, D = `generator.lookahead` (`data.clip_windows(..., lookahead=D)`).
    chunk_frames: positions per step.
    seed: seed of the CVG's noise z.
    step: a `performance_step(generator)` (made if not given).
    keypoints: optional float32 [N, P, 3], poses for the STU instead of the KP's (the
      oracle of `eval.stu_keypoints="real"`).

  Returns:
    dict of uint8 [N, R, R, 3] "frames" (and "coarse"), and float32 [N, P, 2] "keypoints"
    when the pipeline has them.
  """
  d = generator.lookahead
  out = stream_all(step or performance_step(generator), generator.initial_state(1), windows,
                   len(windows) - d, lookahead=d, chunk_frames=chunk_frames,
                   noise=_noise(seed, len(windows), generator.z_dim), keypoints=keypoints)
  return {k: v if k == "keypoints" else to_uint8(v) for k, v in out.items()}
