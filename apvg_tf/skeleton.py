"""The canonical 67-keypoint layout: points, bones, converters, normalisation and drawing.

Layout (DESIGN.md): OpenPose BODY_25 (indices 0-24), then the left hand (25-45) and the right
hand (46-66), each hand in OpenPose's 21-point order (0 wrist, 1-4 thumb, 5-8 index, 9-12
middle, 13-16 ring, 17-20 little finger). "Left" and "right" are the performer's own. A
keypoint array is float32 [..., 67, 3]: x, y and a confidence c in [0, 1], 0 meaning missing.

Coordinates: the converters return pixel coordinates of the source image (x to the right,
y down), because neither OpenPose JSON nor a MediaPipe result knows the crop the dataset will
use; `to_square_crop` then maps them to [0, 1] of a square crop, the unit every dataset and
model uses.

Bones: OpenPose's BODY_25 pairs, the hand pairs, and one link from each wrist to the root of
its hand, so the whole skeleton is one connected graph (the GCN of the STU relies on that).
"""

import numpy as np

from apvg_tf.errors import InputError

NUM_BODY = 25
NUM_HAND = 21
NUM_KEYPOINTS = NUM_BODY + 2 * NUM_HAND  # 67

BODY = slice(0, NUM_BODY)
LEFT_HAND = slice(NUM_BODY, NUM_BODY + NUM_HAND)
RIGHT_HAND = slice(NUM_BODY + NUM_HAND, NUM_KEYPOINTS)
PARTS = {"body": BODY, "left_hand": LEFT_HAND, "right_hand": RIGHT_HAND}

BODY_25_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
    "right_heel")
HAND_NAMES = ("wrist",) + tuple(
    f"{finger}_{joint}" for finger in ("thumb", "index", "middle", "ring", "little")
    for joint in (1, 2, 3, 4))
KEYPOINT_NAMES = BODY_25_NAMES + tuple("left_hand_" + n for n in HAND_NAMES) + tuple(
    "right_hand_" + n for n in HAND_NAMES)
INDEX = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

# OpenPose POSE_BODY_25_PAIRS_RENDER_GPU.
BODY_BONES = ((1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10),
              (10, 11), (8, 12), (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16),
              (16, 18), (14, 19), (19, 20), (14, 21), (11, 22), (22, 23), (11, 24))
# OpenPose HAND_PAIRS_RENDER_GPU: each finger is a chain from the wrist.
HAND_BONES = tuple((0 if j == 0 else 1 + 4 * f + j - 1, 1 + 4 * f + j)
                   for f in range(5) for j in range(4))
WRIST_LINKS = ((INDEX["left_wrist"], LEFT_HAND.start), (INDEX["right_wrist"], RIGHT_HAND.start))
BONES = BODY_BONES + tuple((LEFT_HAND.start + i, LEFT_HAND.start + j) for i, j in HAND_BONES) \
    + tuple((RIGHT_HAND.start + i, RIGHT_HAND.start + j) for i, j in HAND_BONES) + WRIST_LINKS


def arm_points(sides):
  """Indices of the elbow, wrist and 21 hand points of each arm of `sides` ('left', 'right').

  Returns:
    list of int, the arms in the order given.
  """
  index = []
  for side in sides:
    hand = PARTS[f"{side}_hand"]
    index += [INDEX[f"{side}_elbow"], INDEX[f"{side}_wrist"]]
    index += list(range(hand.start, hand.stop))
  return index


def part_of(index):
  """Name of the part ('body', 'left_hand' or 'right_hand') that keypoint `index` belongs to."""
  for name, part in PARTS.items():
    if part.start <= index < part.stop:
      return name
  raise IndexError(f"keypoint index {index} is outside 0..{NUM_KEYPOINTS - 1}")


# --------------------------------------------------------------------------- OpenPose JSON


def _openpose_points(person, key, count):
  values = person.get(key) or []
  if len(values) == 0:
    return np.zeros((count, 3), np.float32)
  if len(values) != 3 * count:
    raise InputError(f"OpenPose field {key!r} has {len(values)} numbers; expected {3 * count} "
                     f"(x, y, confidence for {count} points). Was the file written with "
                     "--model_pose BODY_25 and --hand?")
  return np.asarray(values, np.float32).reshape(count, 3)


def from_openpose(json_dict):
  """Converts one OpenPose JSON frame (BODY_25 + hands) to the canonical layout.

  OpenPose writes one file per frame: {"people": [{"pose_keypoints_2d": [x, y, c] * 25,
  "hand_left_keypoints_2d": [x, y, c] * 21, "hand_right_keypoints_2d": ...}, ...]}.

  Which person: the one with the highest sum of the 25 body confidences, the first listed on
  a tie; hands do not count (a second person's hand near the camera must not win). The
  performer fills the frame, so most of their body points are seen with high confidence,
  while spectators, accompanists at the edge and reflections are partly seen and score
  lower. The choice is made per frame, without tracking: a tracker's first choice would
  persist, and one frame without the performer would hand the track to someone else for
  good. A per-frame choice that flips to another person for a frame or two costs those
  frames only, and `apvg_tf.footage.process.stable_crop_box` ignores such brief detections.

  An empty "people" list (nobody found) gives all 67 points confidence 0, as does a person's
  missing hand for its 21 points.

  Args:
    json_dict: the parsed JSON of one frame.

  Returns:
    float32 [67, 3]: pixel x, y of the source image and confidence.

  Raises:
    InputError: if the dict is not OpenPose output or a field has the wrong length.
  """
  if not isinstance(json_dict, dict) or "people" not in json_dict:
    raise InputError("not an OpenPose keypoint file: expected a JSON object with a 'people' "
                     "list (OpenPose --write_json output)")
  people = json_dict["people"] or []
  out = np.zeros((NUM_KEYPOINTS, 3), np.float32)
  if not people:
    return out
  scores = [float(_openpose_points(p, "pose_keypoints_2d", NUM_BODY)[:, 2].sum())
            for p in people]
  person = people[int(np.argmax(scores))]  # argmax: the first of equal scores.
  out[BODY] = _openpose_points(person, "pose_keypoints_2d", NUM_BODY)
  out[LEFT_HAND] = _openpose_points(person, "hand_left_keypoints_2d", NUM_HAND)
  out[RIGHT_HAND] = _openpose_points(person, "hand_right_keypoints_2d", NUM_HAND)
  out[out[:, 2] <= 0] = 0.0  # OpenPose writes (0, 0, 0) for missing points; keep them zero.
  return out


# --------------------------------------------------------------------------- MediaPipe Holistic

# BODY_25 index -> MediaPipe Pose landmark(s); two indices mean the midpoint. MediaPipe has no
# small toes; those stay missing.
_MEDIAPIPE_TO_BODY_25 = {
    0: (0,), 1: (11, 12), 2: (12,), 3: (14,), 4: (16,), 5: (11,), 6: (13,), 7: (15,),
    8: (23, 24), 9: (24,), 10: (26,), 11: (28,), 12: (23,), 13: (25,), 14: (27,), 15: (5,),
    16: (2,), 17: (8,), 18: (7,), 19: (31,), 21: (29,), 22: (32,), 24: (30,)}


def _landmarks(landmark_list, count):
  """[count, 4] array of x, y, visibility, present from a MediaPipe landmark list (or None)."""
  out = np.zeros((count, 4), np.float32)
  if landmark_list is None:
    return out
  marks = landmark_list.landmark if hasattr(landmark_list, "landmark") else landmark_list
  for i, mark in enumerate(marks):
    if i >= count:
      break
    visibility = getattr(mark, "visibility", 1.0)
    # Hand landmarks carry no visibility (the field reads 0); a detected hand is visible.
    out[i] = (mark.x, mark.y, visibility if count == 33 else 1.0, 1.0)
  return out


def from_mediapipe(holistic_results, image_size):
  """Converts MediaPipe Holistic results (33 pose + 2 x 21 hand landmarks) to the layout.

  Pose landmark visibility becomes the confidence; a detected hand has confidence 1 on all its
  points; a point outside the image gets confidence 0, since no crop of the image can show it.
  Holistic's `left_hand_landmarks` is the performer's own left hand (it is tracked from the
  pose's left wrist), as in the canonical layout.

  Args:
    holistic_results: the object returned by `mediapipe.solutions.holistic.Holistic.process`
      (fields pose_landmarks, left_hand_landmarks, right_hand_landmarks).
    image_size: (width, height) of the image that was processed, in pixels.

  Returns:
    float32 [67, 3]: pixel x, y of the source image and confidence.
  """
  width, height = image_size
  pose = _landmarks(getattr(holistic_results, "pose_landmarks", None), 33)
  out = np.zeros((NUM_KEYPOINTS, 3), np.float32)
  for body_index, sources in _MEDIAPIPE_TO_BODY_25.items():
    points = pose[list(sources)]
    if points[:, 3].min() > 0:
      out[body_index, :2] = points[:, :2].mean(0)
      out[body_index, 2] = points[:, 2].min()
  for part, field in ((LEFT_HAND, "left_hand_landmarks"), (RIGHT_HAND, "right_hand_landmarks")):
    hand = _landmarks(getattr(holistic_results, field, None), NUM_HAND)
    out[part, :2] = hand[:, :2]
    out[part, 2] = hand[:, 3]
  inside = (out[:, 0] >= 0) & (out[:, 0] <= 1) & (out[:, 1] >= 0) & (out[:, 1] <= 1)
  out[~inside, 2] = 0.0
  out[:, 0] *= width
  out[:, 1] *= height
  out[out[:, 2] <= 0] = 0.0
  return np.clip(out, [-np.inf, -np.inf, 0.0], [np.inf, np.inf, 1.0]).astype(np.float32)


# --------------------------------------------------------------------------- normalisation


def to_square_crop(keypoints, box):
  """Maps pixel keypoints into [0, 1] coordinates of a square crop box.

  Args:
    keypoints: float [..., 67, 3] pixel coordinates and confidence.
    box: (x0, y0, size) of the square crop in the same pixels.

  Returns:
    float32 [..., 67, 3]; points that fall outside the crop keep their coordinates (outside
    [0, 1]) but get confidence 0. Missing points stay (0, 0, 0).
  """
  x0, y0, size = (float(v) for v in box)
  if size <= 0:
    raise InputError(f"crop box {box} has a non-positive size")
  kp = np.array(keypoints, dtype=np.float32, copy=True)
  kp[..., 0] = (kp[..., 0] - x0) / size
  kp[..., 1] = (kp[..., 1] - y0) / size
  outside = (kp[..., 0] < 0) | (kp[..., 0] > 1) | (kp[..., 1] < 0) | (kp[..., 1] > 1)
  kp[..., 2] = np.where(outside, 0.0, kp[..., 2])
  kp[kp[..., 2] <= 0] = 0.0
  return kp


def mean_pose(keypoints):
  """Confidence-weighted mean pose over frames (the paper's instrument-related condition).

  Args:
    keypoints: float [T, 67, 3] (or [..., 67, 3]) normalised keypoints.

  Returns:
    float32 [67, 3]: mean x, y over frames where the point was seen (weighted by its
    confidence), and the fraction of frames it was seen in. A point never seen takes the mean
    of the seen points of its part (or of all points), with confidence 0.
  """
  kp = np.asarray(keypoints, np.float64).reshape(-1, NUM_KEYPOINTS, 3)
  weight = kp[..., 2]
  total = weight.sum(0)
  xy = (kp[..., :2] * weight[..., None]).sum(0) / np.maximum(total, 1e-12)[:, None]
  seen = total > 0
  for part in PARTS.values():
    index = np.arange(part.start, part.stop)
    fallback = index[~seen[index]]
    pool = index[seen[index]] if seen[index].any() else np.flatnonzero(seen)
    xy[fallback] = xy[pool].mean(0) if len(pool) else 0.5
  coverage = (weight > 0).mean(0) if len(kp) else np.zeros(NUM_KEYPOINTS)
  return np.concatenate([xy, coverage[:, None]], 1).astype(np.float32)


# --------------------------------------------------------------------------- drawing

PART_COLORS = {"body": (255, 160, 40), "left_hand": (60, 220, 60), "right_hand": (60, 120, 255)}


def draw_skeleton(frame, keypoints, thickness=1, radius=1, colors=None):
  """Draws a skeleton onto a copy of an RGB frame (for debug and preview videos).

  Args:
    frame: uint8 [H, W, 3] RGB image.
    keypoints: float [67, 2] or [67, 3] normalised to [0, 1] of the frame; with a third
      column, points of confidence 0 and their bones are not drawn.
    thickness: line thickness in pixels.
    radius: joint radius in pixels.
    colors: optional dict part name -> RGB colour.

  Returns:
    uint8 [H, W, 3], the frame with bones and joints drawn (anti-aliased).
  """
  import cv2  # pylint: disable=g-import-not-at-top  (OpenCV is only needed for drawing)
  colors = colors or PART_COLORS
  canvas = np.ascontiguousarray(frame, dtype=np.uint8).copy()
  height, width = canvas.shape[:2]
  kp = np.asarray(keypoints, np.float32)
  conf = kp[:, 2] if kp.shape[1] > 2 else np.ones(len(kp), np.float32)
  shift = 4  # Sub-pixel precision: coordinates are passed to OpenCV times 2**shift.
  pts = np.round(kp[:, :2] * [width, height] * (1 << shift)).astype(np.int64)
  for i, j in BONES:
    if conf[i] > 0 and conf[j] > 0:
      cv2.line(canvas, tuple(map(int, pts[i])), tuple(map(int, pts[j])), colors[part_of(j)],
               thickness, cv2.LINE_AA, shift)
  for i in np.flatnonzero(conf > 0):
    cv2.circle(canvas, tuple(map(int, pts[i])), radius << shift, colors[part_of(i)], -1,
               cv2.LINE_AA, shift)
  return canvas
