"""One performance clip (a video, or numbered images plus music) -> one dataset clip.

`process_clip(source, settings)` reads the clip, finds the performer's keypoints, cuts a
square crop that stays put for the whole clip, and returns the frames, keypoints and
waveform that `DatasetWriter.add_clip` takes, with a quality report:

  1. Frames are read with OpenCV, with each frame's own timestamp (CAP_PROP_POS_MSEC), so
     variable-frame-rate files (phones) come out right: output frame t, at time t / fps, is
     the source frame nearest to that time. The output rate is `Settings.fps`, or the
     source's nominal rate snapped to the standard rate it approximates (29.97 stays
     30000/1001, it is not rounded to 30).
  2. The waveform comes from `apvg_tf.audio.load_waveform` (the video's own track, or a
     separate file). Both streams are taken to start at time 0. The clip is as long as the
     shorter of the two, and the waveform is cut to exactly the samples that
     `apvg_tf.audio.num_video_frames` maps to its frames. A clip shorter than one audio
     window (87 CQT columns x hop 256, 0.505 s) is refused.
  3. Keypoints: MediaPipe Holistic (its bundled models, offline) on the frames used, in
     order, so its tracker follows the performer; or OpenPose JSON files (one per source
     frame). Either way the canonical 67-point layout of `apvg_tf.skeleton`.
  4. The crop is one square for the whole clip (`stable_crop_box`): a robust union of the
     per-frame boxes around the confident body and hand points, plus margins, shifted to stay
     inside the image where it fits and padded with black where it does not. A crop that
     follows the performer frame by frame would make the background shake, and the models
     would learn the shake.
  5. A keypoint missing for at most `max_gap_frames` frames between two detections is
     interpolated linearly (x, y and confidence); longer gaps, and gaps at either end of the
     clip, stay missing (confidence 0).

Frames are decoded three times (timestamps; keypoints; crop) rather than kept: a source
frame of a 1080p video is 6 MB, and only the cropped output frames are held (R * R * 3 bytes
each, 49 KB at 128 px: 177 MB per minute at 30 fps).
"""

import dataclasses
import fractions
import glob
import json
import math
import os
import re
from typing import Optional, Tuple

import numpy as np
import tqdm

from apvg_tf import audio, skeleton
from apvg_tf.audio import framing, params
from apvg_tf.errors import InputError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm")
# Containers whose index lists every frame (the ISO base media format).
_INDEXED_EXTENSIONS = (".mp4", ".mov", ".m4v")
# Fewer decoded frames than an MP4 index lists is damage, beyond this fraction (or 2 frames):
# an edit list may legitimately hide a few frames at the start.
_MISSING_FRAMES_ALLOWED = 0.01
# Frame rates cameras and editors use; a nominal rate within _SNAP_TOLERANCE (relative) of one
# of these is taken to be it (container time bases make 29.97 read as 29.97002997 or 29.9699).
# The tolerance is well below the 0.1% between 30 and 30000/1001.
STANDARD_FPS = (tuple(fractions.Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120))
                + tuple(fractions.Fraction(n) for n in (10, 12, 15, 24, 25, 30, 48, 50, 60, 90,
                                                        100, 120)))
_SNAP_TOLERANCE = 2e-4
# Bundled pose model of each MediaPipe model_complexity; only bundled ones work offline.
_POSE_MODELS = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite",
                2: "pose_landmark_heavy.tflite"}
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")
_WRISTS = (skeleton.INDEX["left_wrist"], skeleton.INDEX["right_wrist"])


@dataclasses.dataclass(frozen=True)
class ClipSource:
  """Where one clip comes from: a video, or image files plus an audio file."""
  clip_id: str                       # unique, filesystem-safe
  video: Optional[str] = None        # a video file (mp4, mov, mkv, webm; any fps, VFR ok)
  images: Tuple[str, ...] = ()       # OR image files in time order (Sub-URMP jpgs) ...
  image_fps: Optional[float] = None  # ... at this frame rate
  audio: Optional[str] = None        # separate audio file; None = the video's own track
  split: Optional[str] = None        # "train"/"validation"/"test", or None = assigned later
  openpose_dir: Optional[str] = None # folder of OpenPose per-frame JSON to use instead of MediaPipe
  # The part of the frame that shows this performer, (x0, y0, x1, y1) as fractions of the
  # frame (an ensemble video such as URMP's); None = the whole frame.
  region: Optional[Tuple[float, float, float, float]] = None


@dataclasses.dataclass(frozen=True)
class Settings:
  """How clips are turned into dataset clips (the same for every clip of a dataset).

  Attributes:
    resolution: side of the square output frames, in pixels.
    fps: output frame rate; None takes the source's nominal rate (snapped to a standard one).
    margin: space added around the performer's box on each side, as a fraction of the box's
      longer side (0.15: the performer fills about 1 / 1.3 of the crop).
    max_gap_frames: longest run of missing frames of a keypoint that is interpolated.
    model_complexity: MediaPipe Holistic model (1 = "full", the one its wheel ships).
    min_detection_confidence: MediaPipe's threshold to start tracking a person or hand.
    crop_confidence: points below this confidence do not shape the crop (MediaPipe guesses
      occluded points with a low visibility).
  """
  resolution: int = 128
  fps: Optional[float] = None
  margin: float = 0.15
  max_gap_frames: int = 5
  model_complexity: int = 1
  min_detection_confidence: float = 0.5
  crop_confidence: float = 0.3


@dataclasses.dataclass
class ClipResult:
  """A processed clip, ready for `DatasetWriter.add_clip`.

  Attributes:
    clip_id: the clip's id.
    split: the source's split, or None (assigned when the dataset is written).
    fps: output frame rate.
    frames: uint8 [T, R, R, 3] RGB, the crop resized to the resolution.
    keypoints: float32 [T, 67, 3], x, y in [0, 1] of the crop, gaps filled.
    waveform: float32 [N] mono at 44.1 kHz, with `num_video_frames(N, fps) == T`.
    source_keypoints: float32 [T, 67, 3], the detections in source pixels, before gap
      filling (for checks and debugging).
    crop_box: (x0, y0, size) of the crop in source pixels; may reach outside the image.
    report: the quality report, a JSON-serialisable dict (see `process_clip`).
  """
  clip_id: str
  split: Optional[str]
  fps: float
  frames: np.ndarray
  keypoints: np.ndarray
  waveform: np.ndarray
  source_keypoints: np.ndarray
  crop_box: Tuple[int, int, int]
  report: dict


def check_settings(settings):
  """Raises InputError if a setting is out of range (before any clip is read)."""
  if int(settings.resolution) != settings.resolution or not 16 <= settings.resolution <= 1024:
    raise InputError(f"--resolution must be a whole number of pixels from 16 to 1024, got "
                     f"{settings.resolution}")
  if settings.fps is not None and not 0 < float(settings.fps) <= 240:
    raise InputError(f"--fps must be in (0, 240], got {settings.fps}")
  if not 0 <= float(settings.margin) <= 2:
    raise InputError(f"--margin must be from 0 to 2 (a fraction of the performer's box), got "
                     f"{settings.margin}")
  if int(settings.max_gap_frames) != settings.max_gap_frames or settings.max_gap_frames < 0:
    raise InputError(f"--max_gap_frames must be a whole number >= 0, got "
                     f"{settings.max_gap_frames}")
  if settings.model_complexity not in _POSE_MODELS:
    raise InputError(f"--model_complexity must be 0, 1 or 2, got {settings.model_complexity}")
  for name in ("min_detection_confidence", "crop_confidence"):
    if not 0 <= float(getattr(settings, name)) <= 1:
      raise InputError(f"{name} must be in [0, 1], got {getattr(settings, name)}")


# --------------------------------------------------------------------------- frame rate


def snap_fps(fps):
  """The standard frame rate `fps` approximates, else `fps` rounded to 0.001.

  Args:
    fps: a nominal rate as a container reports it (e.g. 29.97002997, 25.0001).

  Returns:
    float: e.g. 30000/1001 for 29.97, 30.0 for 30.0, 25.0 for 25.0001, 13.559 for 13.5593.
  """
  fps = float(fps)
  error, best = min((abs(fps - float(s)) / float(s), float(s)) for s in STANDARD_FPS)
  return best if error <= _SNAP_TOLERANCE else round(fps, 3)


def nearest_source_frames(timestamps, fps, num_frames):
  """Source frame shown at each output time t / fps (nearest timestamp; ties take the earlier).

  Args:
    timestamps: float [S] increasing source frame times in seconds.
    fps: output frame rate.
    num_frames: T, output frames wanted.

  Returns:
    int64 [T], indices into the source frames (non-decreasing).
  """
  timestamps = np.asarray(timestamps, np.float64)
  times = np.arange(num_frames, dtype=np.float64) / float(fps)
  after = np.clip(np.searchsorted(timestamps, times), 1, max(len(timestamps) - 1, 1))
  before = after - 1
  if len(timestamps) == 1:
    return np.zeros(num_frames, np.int64)
  take_before = times - timestamps[before] <= timestamps[after] - times
  return np.where(take_before, before, after).astype(np.int64)


# --------------------------------------------------------------------------- frame readers


class _VideoFrames:
  """A video file read with OpenCV: timestamps, then frames by index (BGR -> RGB)."""

  def __init__(self, path):
    import cv2  # pylint: disable=g-import-not-at-top
    self.path = path
    if not os.path.isfile(path):
      raise InputError(f"video {path} does not exist; check the path")
    capture = cv2.VideoCapture(path)
    try:
      ok, first = capture.read() if capture.isOpened() else (False, None)
      if not ok:
        raise InputError(f"cannot read video {path}: OpenCV (FFmpeg) cannot open it or decode "
                         "a frame, so it is not a video, or it is truncated or in a codec this "
                         "build lacks; re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4)")
      self.nominal_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
      # From a decoded frame: OpenCV applies a phone's rotation tag to the frames.
      self.image_size = (int(first.shape[1]), int(first.shape[0]))
      # An MP4 / MOV index lists every frame; other containers' counts are estimates from
      # the duration (a variable-rate mkv "has" 59 frames for its 40), so they are not used.
      self.listed_frames = (int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
                            if os.path.splitext(path)[1].lower() in _INDEXED_EXTENSIONS else 0)
    finally:
      capture.release()
    self.irregular_timestamps = False

  def timestamps(self):
    """float64 [S] seconds of every frame (a decode pass without colour conversion)."""
    import cv2  # pylint: disable=g-import-not-at-top
    capture = cv2.VideoCapture(self.path)
    stamps = []
    try:
      while capture.grab():
        stamps.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
    finally:
      capture.release()
    stamps = np.asarray(stamps, np.float64)
    if len(stamps) == 0:
      raise InputError(f"video {self.path} has no frames; pass a video with a picture")
    # OpenCV stops at a damaged packet as if the video ended there: without this check a file
    # damaged in its middle would silently become a shorter clip.
    if self.listed_frames - len(stamps) > max(2, _MISSING_FRAMES_ALLOWED * self.listed_frames):
      raise InputError(f"video {self.path} is damaged: its index lists {self.listed_frames} "
                       f"frames but decoding stops after {len(stamps)} ({stamps[-1]:.2f} s); "
                       "re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4), or cut it before the "
                       "damage")
    if len(stamps) > 1 and (not np.all(np.isfinite(stamps)) or np.any(np.diff(stamps) <= 0)):
      # Some containers give no usable per-frame times; then the nominal rate is all there is.
      if not self.nominal_fps > 0:
        raise InputError(f"video {self.path} has neither usable frame timestamps nor a frame "
                         "rate; re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4)")
      self.irregular_timestamps = True
      stamps = np.arange(len(stamps)) / self.nominal_fps
    return stamps

  def frames(self, indices):
    """Yields (index, uint8 [H, W, 3] RGB) for sorted unique `indices`, decoding in order."""
    import cv2  # pylint: disable=g-import-not-at-top
    capture = cv2.VideoCapture(self.path)
    try:
      position = 0
      for index in indices:
        while position <= index:
          if not capture.grab():
            raise InputError(f"video {self.path} ended at frame {position} on a second read "
                             f"but frame {index} was expected; the file is damaged: re-encode "
                             "it (ffmpeg -i IN -c:v libx264 OUT.mp4)")
          position += 1
        ok, bgr = capture.retrieve()
        if not ok:
          raise InputError(f"video {self.path}: frame {index} cannot be decoded; re-encode it")
        yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
      capture.release()


class _ImageFrames:
  """Image files in time order at a given frame rate (Sub-URMP's jpgs)."""

  def __init__(self, paths, fps):
    if not fps or float(fps) <= 0:
      raise InputError("a clip of image files needs its frame rate (image_fps)")
    if not paths:
      raise InputError("the clip has no image files; pass at least one")
    self.paths = list(paths)
    self.path = self.paths[0]
    self.nominal_fps = float(fps)
    self.irregular_timestamps = False
    self.image_size = self._read(0).shape[1::-1]

  def _read(self, index):
    import cv2  # pylint: disable=g-import-not-at-top
    bgr = cv2.imread(self.paths[index], cv2.IMREAD_COLOR)
    if bgr is None:
      raise InputError(f"cannot read image {self.paths[index]}: it is missing or not an image")
    return bgr

  def timestamps(self):
    return np.arange(len(self.paths), dtype=np.float64) / self.nominal_fps

  def frames(self, indices):
    import cv2  # pylint: disable=g-import-not-at-top
    for index in indices:
      bgr = self._read(index)
      if tuple(bgr.shape[1::-1]) != tuple(self.image_size):
        raise InputError(f"image {self.paths[index]} is {bgr.shape[1]}x{bgr.shape[0]} but the "
                         f"clip's first image is {self.image_size[0]}x{self.image_size[1]}; "
                         "all images of a clip must have one size")
      yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class _RegionFrames:
  """Another reader's frames cut to a region (one player of an ensemble video)."""

  def __init__(self, reader, region):
    width, height = reader.image_size
    x0, y0, x1, y1 = (float(v) for v in region)
    if not 0 <= x0 < x1 <= 1 or not 0 <= y0 < y1 <= 1:
      raise InputError(f"region {tuple(region)} must be (x0, y0, x1, y1) fractions of the frame "
                       "with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
    self.reader = reader
    self.left, self.top = int(round(x0 * width)), int(round(y0 * height))
    self.right, self.bottom = int(round(x1 * width)), int(round(y1 * height))
    self.image_size = (self.right - self.left, self.bottom - self.top)
    self.offset = (self.left, self.top)

  def __getattr__(self, name):  # path, nominal_fps, irregular_timestamps, timestamps.
    return getattr(self.reader, name)

  def frames(self, indices):
    for index, rgb in self.reader.frames(indices):
      yield index, rgb[self.top:self.bottom, self.left:self.right]


def _open_frames(source):
  if bool(source.video) == bool(source.images):
    raise InputError(f"clip {source.clip_id}: give either a video or image files, not "
                     f"{'both' if source.video else 'neither'}")
  if source.video:
    reader = _VideoFrames(os.fspath(source.video))
  else:
    reader = _ImageFrames([os.fspath(p) for p in source.images], source.image_fps)
  return _RegionFrames(reader, source.region) if source.region else reader


def source_fps(source):
  """The nominal frame rate of a clip (snapped, see `snap_fps`), read without decoding.

  Raises:
    InputError: if the video cannot be opened or has no frame rate.
  """
  frames = _open_frames(source)
  if not frames.nominal_fps > 0:
    raise InputError(f"{frames.path} does not state a frame rate; pass --fps")
  return snap_fps(frames.nominal_fps)


# --------------------------------------------------------------------------- keypoints


class MediaPipeDetector:
  """MediaPipe Holistic in video mode: uint8 RGB [H, W, 3] -> float32 [67, 3] pixel keypoints.

  One detector follows one performer through one clip (its tracker keeps state between
  calls); make a new one per clip. Only the models inside the mediapipe wheel are used:
  a model_complexity whose pose model is not bundled raises InputError instead of reaching
  for the internet.
  """

  def __init__(self, model_complexity=1, min_detection_confidence=0.5,
               min_tracking_confidence=0.5):
    import mediapipe  # pylint: disable=g-import-not-at-top  (slow import, only when used)
    model = os.path.join(os.path.dirname(mediapipe.__file__), "modules", "pose_landmark",
                         _POSE_MODELS[int(model_complexity)])
    if not os.path.isfile(model):
      raise InputError(
          f"MediaPipe model_complexity={model_complexity} needs {os.path.basename(model)}, "
          "which the installed mediapipe wheel does not ship (it would be downloaded, and "
          "this program works offline); use --model_complexity=1")
    self._holistic = mediapipe.solutions.holistic.Holistic(
        static_image_mode=False, model_complexity=int(model_complexity),
        smooth_landmarks=True, min_detection_confidence=float(min_detection_confidence),
        min_tracking_confidence=float(min_tracking_confidence))

  def __call__(self, rgb):
    results = self._holistic.process(np.ascontiguousarray(rgb))
    return skeleton.from_mediapipe(results, (rgb.shape[1], rgb.shape[0]))

  def close(self):
    self._holistic.close()


def openpose_files(folder):
  """Sorted `*_keypoints.json` files of an OpenPose output folder.

  Raises:
    InputError: if the folder is missing or holds no such files.
  """
  folder = os.fspath(folder)
  if not os.path.isdir(folder):
    raise InputError(f"OpenPose folder {folder} does not exist")
  files = sorted(glob.glob(os.path.join(glob.escape(folder), "*_keypoints.json")))
  if not files:
    raise InputError(f"{folder} has no *_keypoints.json files; run OpenPose with --write_json "
                     "(and --hand) on the video, or use MediaPipe")
  return files


def _read_openpose(path):
  try:
    with open(path) as f:
      return skeleton.from_openpose(json.load(f))
  except (OSError, ValueError) as e:
    if isinstance(e, InputError):
      raise InputError(f"{path}: {e}") from None
    raise InputError(f"cannot read OpenPose file {path} ({e}); re-run OpenPose") from None


def fill_gaps(keypoints, max_gap_frames):
  """Interpolates short runs of missing frames of each keypoint linearly.

  A run of frames where a point has confidence 0, with a detection on both sides and at most
  `max_gap_frames` long, gets x, y and confidence interpolated between the two detections.
  Longer runs, and runs at the start or end of the clip, stay missing.

  Args:
    keypoints: float [T, P, 3] (any coordinates; interpolation commutes with the crop).
    max_gap_frames: longest run filled.

  Returns:
    filled: float32 [T, P, 3].
    stats: dict with `gaps_filled` (runs filled) and `points_filled` (point-frames filled).
  """
  kp = np.array(keypoints, np.float32, copy=True)
  gaps, points = 0, 0
  if max_gap_frames <= 0:
    return kp, {"gaps_filled": 0, "points_filled": 0}
  for p in range(kp.shape[1]):
    seen = np.flatnonzero(kp[:, p, 2] > 0)
    if len(seen) < 2:
      continue
    steps = np.diff(seen)
    for k in np.flatnonzero((steps > 1) & (steps <= max_gap_frames + 1)):
      start, end = seen[k], seen[k + 1]
      weight = (np.arange(start + 1, end) - start)[:, None] / float(end - start)
      kp[start + 1:end, p] = (1 - weight) * kp[start, p] + weight * kp[end, p]
      gaps += 1
      points += end - start - 1
  return kp, {"gaps_filled": int(gaps), "points_filled": int(points)}


# --------------------------------------------------------------------------- the crop


def _robust_extreme(values, upper, slack):
  """The most extreme of per-frame box edges over a clip, ignoring brief wild detections.

  A detection that appears for a frame or two far from everything else (a reflection, a hand
  found on the music stand) must not blow up a crop that holds for the whole clip, while
  every genuine extreme of the motion must stay in. Genuine motion is continuous: a running
  median over 5 frames removes spikes of up to 2 frames and shaves only a little off a real
  peak, so the extreme is taken over the values within `slack` of the median's extreme.

  Args:
    values: float [F] one edge (e.g. the largest x) of each frame's box, in time order.
    upper: True for the largest value, False for the smallest.
    slack: how far (pixels) a value may lie beyond the smoothed extreme and still count.

  Returns:
    float.
  """
  half = min(2, (len(values) - 1) // 2)
  windows = np.lib.stride_tricks.sliding_window_view(np.pad(values, half, mode="edge"),
                                                     2 * half + 1)
  smooth = np.median(windows, axis=1)
  if upper:
    envelope = smooth.max()
    return float(max(values[values <= envelope + slack].max(initial=envelope), envelope))
  envelope = smooth.min()
  return float(min(values[values >= envelope - slack].min(initial=envelope), envelope))


def stable_crop_box(keypoints, image_size, *, margin=0.15, min_confidence=0.3):
  """One square crop around the performer for a whole clip.

  Per frame, the box of the body and hand points of confidence >= `min_confidence`; over
  the clip, the union of these boxes, except for detections that last at most 2 frames and
  lie more than 5% of the image's longer side beyond all the others (`_robust_extreme`). The
  square is the union's longer side plus `margin` of it on each side, centred on the union,
  at most the image's longer side, then shifted to lie inside the image where it fits (where
  it does not, e.g. a portrait video's width, it stays centred on the performer and the
  frames are padded).

  Args:
    keypoints: float [T, 67, 3] pixel coordinates and confidence.
    image_size: (width, height) of the source frames.
    margin: fraction of the union's longer side added on each side.
    min_confidence: points below this confidence are ignored.

  Returns:
    (x0, y0, size) in whole pixels; x0, y0 may be negative and x0 + size may exceed the width
    where the frame has to be padded.

  Raises:
    InputError: if no frame has a confident point (no performer was found).
  """
  kp = np.asarray(keypoints, np.float64).reshape(-1, skeleton.NUM_KEYPOINTS, 3)
  width, height = (int(v) for v in image_size)
  confident = kp[..., 2] >= max(min_confidence, 1e-6)
  frames = np.flatnonzero(confident.any(1))
  if len(frames) == 0:
    raise InputError("no performer was found in any frame (no keypoint reached confidence "
                     f"{min_confidence}); check that the video shows the player, or give "
                     "OpenPose keypoints")
  big = np.where(confident[frames, :, None], kp[frames, :, :2], np.inf)
  small = np.where(confident[frames, :, None], kp[frames, :, :2], -np.inf)
  mins, maxs = big.min(1), small.max(1)  # [F, 2] per-frame box corners.
  slack = 0.05 * max(width, height)
  x0 = _robust_extreme(mins[:, 0], False, slack)
  y0 = _robust_extreme(mins[:, 1], False, slack)
  x1 = _robust_extreme(maxs[:, 0], True, slack)
  y1 = _robust_extreme(maxs[:, 1], True, slack)
  side = max(x1 - x0, y1 - y0, 1.0) * (1.0 + 2.0 * float(margin))
  size = int(min(math.ceil(side), max(width, height)))
  size = max(size, 2)
  corner = []
  for centre, extent in (((x0 + x1) / 2, width), ((y0 + y1) / 2, height)):
    start = int(round(centre - size / 2))
    # Inside the image if it fits; else covering the whole extent, padded around it.
    start = int(np.clip(start, min(0, extent - size), max(0, extent - size)))
    corner.append(start)
  return corner[0], corner[1], size


def crop_frame(image, box, resolution):
  """Cuts the square `box` from an image (black beyond its border) and resizes it.

  Args:
    image: uint8 [H, W, 3].
    box: (x0, y0, size) in pixels, possibly reaching outside the image.
    resolution: side of the result.

  Returns:
    uint8 [resolution, resolution, 3].
  """
  import cv2  # pylint: disable=g-import-not-at-top
  x0, y0, size = (int(v) for v in box)
  height, width = image.shape[:2]
  left, top = max(x0, 0), max(y0, 0)
  right, bottom = min(x0 + size, width), min(y0 + size, height)
  patch = image[top:bottom, left:right]
  if patch.shape[:2] != (size, size):
    patch = cv2.copyMakeBorder(patch, top - y0, y0 + size - bottom, left - x0,
                               x0 + size - right, cv2.BORDER_CONSTANT, value=(0, 0, 0))
  # Area averaging when shrinking (no aliasing of strings and bows); cubic when enlarging.
  interpolation = cv2.INTER_AREA if size >= resolution else cv2.INTER_CUBIC
  return cv2.resize(patch, (resolution, resolution), interpolation=interpolation)


# --------------------------------------------------------------------------- the clip


def _part_fractions(keypoints):
  """Fraction of frames in which each part has at least one point."""
  return {f"{name}_fraction": round(float((keypoints[:, part, 2] > 0).any(1).mean()), 4)
          for name, part in skeleton.PARTS.items()}


def _load_audio(source):
  path = source.audio or source.video
  if path is None:
    raise InputError(f"clip {source.clip_id} is made of images and has no audio file; give "
                     "the music of the clip as its audio")
  try:
    return audio.load_waveform(os.fspath(path))
  except InputError as e:
    if source.audio is None:
      raise InputError(f"{e} Or put the music in a separate file named like the video (e.g. "
                       f"{os.path.splitext(os.path.basename(path))[0]}.wav) in a folder given "
                       "as --audio_dir.") from None
    raise


def _detect(source, settings, reader, indices, num_source_frames, detector, progress):
  """Keypoints of the source frames `indices` (sorted, unique), by OpenPose JSON or a detector.

  Returns:
    (dict source index -> float32 [67, 3] source pixels, name of the keypoint source).
  """
  if source.openpose_dir:
    files = openpose_files(source.openpose_dir)
    if len(files) != num_source_frames:
      raise InputError(f"{source.openpose_dir} has {len(files)} OpenPose files but "
                       f"{reader.path} has {num_source_frames} frames; they must match one to "
                       "one (run OpenPose on this exact video with --write_json)")
    found = {index: _read_openpose(files[index]) for index in indices}
    offset = np.asarray(getattr(reader, "offset", (0, 0)), np.float32)
    if offset.any():  # OpenPose saw the whole frame; keypoints are in the region's pixels.
      for points in found.values():
        points[:, :2] -= offset * (points[:, 2:] > 0)
    return found, "openpose"
  name = "mediapipe" if detector is None else getattr(detector, "name",
                                                      type(detector).__name__)
  own = detector is None
  if own:
    detector = MediaPipeDetector(settings.model_complexity, settings.min_detection_confidence)
  found = {}
  try:
    bar = tqdm.tqdm(reader.frames(indices), total=len(indices), unit="frame",
                    desc=f"{source.clip_id} keypoints", disable=not progress, leave=False)
    for index, rgb in bar:
      found[index] = np.asarray(detector(rgb), np.float32).reshape(skeleton.NUM_KEYPOINTS, 3)
  finally:
    if own:
      detector.close()
  return found, name


def _crop_quality(source_keypoints, box, image_size):
  """crop_box, crop_padded and wrists_in_crop_fraction (of the frames a wrist was seen in)."""
  x0, y0, size = box
  width, height = image_size
  wrists = source_keypoints[:, _WRISTS]
  seen = wrists[..., 2] > 0
  inside = ((wrists[..., 0] >= x0) & (wrists[..., 0] <= x0 + size)
            & (wrists[..., 1] >= y0) & (wrists[..., 1] <= y0 + size))
  return {"crop_box": [int(v) for v in box],
          "crop_padded": bool(x0 < 0 or y0 < 0 or x0 + size > width or y0 + size > height),
          "wrists_in_crop_fraction": round(float((inside & seen).sum() / max(seen.sum(), 1)),
                                           4)}


def process_clip(source, settings=Settings(), *, detector=None, progress=True):
  """Turns one performance clip into a dataset clip and its quality report.

  Args:
    source: a ClipSource.
    settings: a Settings.
    detector: optional keypoint detector for this clip: a callable uint8 RGB [H, W, 3] ->
      float32 [67, 3] source-pixel keypoints, called on the frames used, in time order; the
      caller keeps it (and closes it). Default: a new `MediaPipeDetector`, closed at the end.
      Not used when the source has an `openpose_dir`.
    progress: show tqdm progress bars.

  Returns:
    A ClipResult. Its report holds: clip_id, source, keypoints_from, frames (T),
    source_frames, source_fps, fps, variable_frame_rate, image_size [W, H], video_seconds,
    audio_seconds (before cutting to the video), body_fraction, left_hand_fraction,
    right_hand_fraction (frames with at least one point of the part, as detected),
    gaps_filled, points_filled, crop_box [x0, y0, size] in source pixels, crop_padded,
    wrists_in_crop_fraction, warnings (list of strings).

  Raises:
    InputError: unreadable video or image, a damaged video (fewer frames decode than its MP4
      index lists), no audio (track or file), a clip shorter than
      one audio window (WINDOW_COLUMNS x HOP_LENGTH samples of apvg_tf.audio.params, 0.505
      s), OpenPose files that do not match the frames, no performer found, bad settings.
  """
  check_settings(settings)
  if not _SAFE_ID.match(source.clip_id or ""):
    raise InputError(f"clip id {source.clip_id!r} must be letters, digits, '_', '-' and '.'")
  reader = _open_frames(source)  # First: a file that is no video should say so, not "no audio".
  waveform = _load_audio(source)
  timestamps = reader.timestamps()
  warnings = []
  if reader.irregular_timestamps:
    warnings.append("the video's frame timestamps are unusable; frames were timed by its "
                    "nominal frame rate")
  steps = np.diff(timestamps)
  # The last frame lasts as long as the frames before it (the last few: with a variable
  # rate, the clip's typical step may be another).
  step = float(np.median(steps[-5:])) if len(steps) else 1.0 / (reader.nominal_fps or 30.0)
  nominal = reader.nominal_fps if reader.nominal_fps > 0 else 1.0 / step
  fps = float(settings.fps) if settings.fps else snap_fps(nominal)
  video_seconds = float(timestamps[-1] + step)
  num_frames = min(int(math.floor(video_seconds * fps + 0.5)),
                   framing.num_video_frames(len(waveform), fps))
  audio_seconds = len(waveform) / params.SAMPLE_RATE
  # floor, not round: one sample more than T / fps seconds would start frame T + 1.
  clip_samples = min(len(waveform),
                     int(math.floor(num_frames * params.SAMPLE_RATE / fps + 1e-6)))
  # The shortest clip is one audio window (87 columns x hop 256 = 22272 samples, 0.505 s):
  # every frame is made from the window around it, and in a shorter clip every window is
  # mostly the zero padding beyond the clip's ends.
  min_samples = params.WINDOW_COLUMNS * params.HOP_LENGTH
  if clip_samples < min_samples:
    raise InputError(
        f"clip {source.clip_id} lasts {clip_samples / params.SAMPLE_RATE:.3f} s (video "
        f"{video_seconds:.3f} s, audio {audio_seconds:.3f} s; the shorter sets it), less "
        f"than one audio window ({params.WINDOW_COLUMNS} CQT columns x {params.HOP_LENGTH} "
        f"samples = {min_samples / params.SAMPLE_RATE:.3f} s); leave it out or give a clip of "
        f"at least {math.ceil(100 * min_samples / params.SAMPLE_RATE) / 100:.2f} s")
  if abs(audio_seconds - video_seconds) > 1.0:
    warnings.append(f"the audio ({audio_seconds:.1f} s) and the video ({video_seconds:.1f} s) "
                    "differ by more than 1 s; the longer was cut: check that they belong "
                    "together")
  waveform = waveform[:clip_samples]
  assert framing.num_video_frames(len(waveform), fps) == num_frames

  chosen = nearest_source_frames(timestamps, fps, num_frames)  # [T]
  unique = np.unique(chosen)
  by_source, keypoints_from = _detect(source, settings, reader, unique, len(timestamps),
                                      detector, progress)
  source_keypoints = np.stack([by_source[i] for i in chosen]).astype(np.float32)

  box = stable_crop_box(source_keypoints, reader.image_size, margin=settings.margin,
                        min_confidence=settings.crop_confidence)
  filled, gap_stats = fill_gaps(source_keypoints, settings.max_gap_frames)
  keypoints = skeleton.to_square_crop(filled, box)

  resolution = int(settings.resolution)
  frames = np.zeros((num_frames, resolution, resolution, 3), np.uint8)
  position = {}
  for t, index in enumerate(chosen):
    position.setdefault(index, []).append(t)
  bar = tqdm.tqdm(reader.frames(unique), total=len(unique), unit="frame",
                  desc=f"{source.clip_id} frames", disable=not progress, leave=False)
  for index, rgb in bar:
    frames[position[index]] = crop_frame(rgb, box, resolution)

  report = {
      "clip_id": source.clip_id,
      "source": os.fspath(source.video or source.images[0]),
      "keypoints_from": keypoints_from,
      "frames": int(num_frames),
      "source_frames": int(len(timestamps)),
      "source_fps": round(float(nominal), 6),
      "fps": round(fps, 6),
      "variable_frame_rate": bool(len(steps) > 1 and steps.max() > 1.5 * steps.min()),
      "image_size": [int(v) for v in reader.image_size],
      "region": list(source.region) if source.region else None,
      "video_seconds": round(video_seconds, 4),
      "audio_seconds": round(audio_seconds, 4),
      **_part_fractions(source_keypoints),
      **gap_stats,
      **_crop_quality(source_keypoints, box, reader.image_size),
      "warnings": warnings,
  }
  if report["crop_padded"]:
    warnings.append("the crop reaches beyond the image and is padded with black")
  if report["body_fraction"] < 0.5:
    warnings.append(f"the body was found in only {report['body_fraction']:.0%} of the frames")
  return ClipResult(clip_id=source.clip_id, split=source.split, fps=fps, frames=frames,
                    keypoints=keypoints, waveform=np.asarray(waveform, np.float32),
                    source_keypoints=source_keypoints, crop_box=tuple(int(v) for v in box),
                    report=report)
