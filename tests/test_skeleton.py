"""Tests of the 67-point layout, its converters, normalisation and drawing."""

import json
import os

import numpy as np
import pytest

from apvg_tf import skeleton
from apvg_tf.errors import InputError
from conftest import FIXTURES


def test_layout_and_bones():
  assert skeleton.NUM_KEYPOINTS == 67
  assert len(skeleton.KEYPOINT_NAMES) == 67
  # 24 BODY_25 pairs + 2 x 20 hand pairs + 2 wrist links.
  assert len(skeleton.BONES) == 24 + 40 + 2
  assert len(set(skeleton.BONES)) == len(skeleton.BONES)
  # The skeleton is one connected graph (the STU's GCN relies on it).
  parent = list(range(67))

  def find(i):
    while parent[i] != i:
      i = parent[i]
    return i

  for i, j in skeleton.BONES:
    parent[find(i)] = find(j)
  assert len({find(i) for i in range(67)}) == 1
  assert (skeleton.INDEX["left_wrist"], 25) in skeleton.BONES
  assert (skeleton.INDEX["right_wrist"], 46) in skeleton.BONES
  assert skeleton.KEYPOINT_NAMES[25 + 8] == "left_hand_index_4"


def _openpose_person(offset, conf, with_left_hand=True):
  """Pose and hands in OpenPose's flat [x0, y0, c0, x1, ...] layout, pixel coordinates."""
  pose = []
  for i in range(25):
    pose += [offset + i, 2 * offset + i, conf]
  hand = lambda base: [v for k in range(21) for v in (base + k, base + 0.5 * k, 0.9)]
  return {
      "person_id": [-1],
      "pose_keypoints_2d": pose,
      "face_keypoints_2d": [],
      "hand_left_keypoints_2d": hand(300) if with_left_hand else [],
      "hand_right_keypoints_2d": hand(400),
      "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
      "hand_right_keypoints_3d": [],
  }


def test_from_openpose_picks_most_confident_person_and_handles_missing_hand(tmp_path):
  # A file as OpenPose --write_json writes it: version 1.3, a spectator (low confidence) and
  # the performer, whose left hand was not detected.
  doc = {"version": 1.3, "people": [_openpose_person(10, 0.2),
                                    _openpose_person(100, 0.8, with_left_hand=False)]}
  path = tmp_path / "frame_000000000000_keypoints.json"
  path.write_text(json.dumps(doc))
  kp = skeleton.from_openpose(json.loads(path.read_text()))
  assert kp.shape == (67, 3) and kp.dtype == np.float32
  np.testing.assert_allclose(kp[4], [104, 204, 0.8])  # Right wrist of the performer.
  np.testing.assert_array_equal(kp[skeleton.LEFT_HAND], 0)  # Missing hand: all zero.
  np.testing.assert_allclose(kp[skeleton.RIGHT_HAND][3], [403, 401.5, 0.9])


def test_from_openpose_two_people_takes_the_higher_body_confidence_first_on_ties():
  performer, spectator = _openpose_person(100, 0.8), _openpose_person(10, 0.2)
  for people in ([performer, spectator], [spectator, performer]):  # Either order.
    kp = skeleton.from_openpose({"people": people})
    np.testing.assert_allclose(kp[0], [100, 200, 0.8])  # The performer's nose.
  # Equal body confidence (25 x 0.8 each): the first listed.
  twin = _openpose_person(50, 0.8)
  np.testing.assert_allclose(skeleton.from_openpose({"people": [twin, performer]})[0],
                             [50, 100, 0.8])
  np.testing.assert_allclose(skeleton.from_openpose({"people": [performer, twin]})[0],
                             [100, 200, 0.8])
  # Hands do not count: 25 x 0.79 body + 42 x 0.9 hands loses to 25 x 0.8 body, no hands.
  handy = _openpose_person(70, 0.79)
  bare = _openpose_person(100, 0.8, with_left_hand=False)
  bare["hand_right_keypoints_2d"] = []
  kp = skeleton.from_openpose({"people": [handy, bare]})
  np.testing.assert_allclose(kp[0], [100, 200, 0.8])
  assert not kp[skeleton.LEFT_HAND].any() and not kp[skeleton.RIGHT_HAND].any()


def test_from_openpose_no_people_and_bad_input():
  assert not skeleton.from_openpose({"version": 1.3, "people": []}).any()
  assert not skeleton.from_openpose({"version": 1.3, "people": None}).any()
  with pytest.raises(InputError, match="OpenPose"):
    skeleton.from_openpose({"frames": []})
  bad = _openpose_person(0, 1.0)
  bad["pose_keypoints_2d"] = bad["pose_keypoints_2d"][:54]  # 18 points: COCO, not BODY_25.
  with pytest.raises(InputError, match="BODY_25"):
    skeleton.from_openpose({"people": [bad]})


def test_to_square_crop_and_mean_pose():
  kp = np.zeros((2, 67, 3), np.float32)
  kp[:, :, :2] = [[150.0, 250.0]]
  kp[:, :, 2] = 1.0
  kp[1, 5] = [1000.0, 0.0, 1.0]  # Outside the crop: confidence 0.
  norm = skeleton.to_square_crop(kp, (100, 200, 100))
  np.testing.assert_allclose(norm[0, 0], [0.5, 0.5, 1.0])
  np.testing.assert_array_equal(norm[1, 5], 0)
  pose = skeleton.mean_pose(norm)
  np.testing.assert_allclose(pose[5], [0.5, 0.5, 0.5])  # Seen in one frame of two.
  with pytest.raises(InputError):
    skeleton.to_square_crop(kp, (0, 0, 0))


def test_mean_pose_fills_never_seen_points_from_their_part():
  kp = np.random.default_rng(0).random((4, 67, 3)).astype(np.float32) * 0.5 + 0.25
  kp[..., 2] = 1.0
  kp[:, skeleton.LEFT_HAND] = 0.0
  kp[:, 30] = 0.0
  pose = skeleton.mean_pose(kp)
  assert np.all(pose[skeleton.LEFT_HAND, 2] == 0)
  assert np.all((pose[:, :2] >= 0.25) & (pose[:, :2] <= 0.75))


def test_draw_skeleton_draws_only_confident_parts():
  frame = np.zeros((64, 64, 3), np.uint8)
  kp = np.zeros((67, 3), np.float32)
  kp[skeleton.INDEX["neck"]] = [0.5, 0.2, 1]
  kp[skeleton.INDEX["mid_hip"]] = [0.5, 0.8, 1]
  out = skeleton.draw_skeleton(frame, kp)
  assert out[32, 32].any() and not frame.any()  # Drawn on a copy, along the neck-hip bone.
  assert not out[:, :20].any()  # Nothing else drawn.


@pytest.mark.skipif(not os.path.isdir(FIXTURES), reason="shared/fixtures/urmp is absent "
                    "(it is not shipped to users); the MediaPipe test needs its violinist video")
def test_from_mediapipe_on_real_violinist():
  cv2 = pytest.importorskip("cv2")
  import mediapipe as mp  # pylint: disable=g-import-not-at-top
  capture = cv2.VideoCapture(os.path.join(FIXTURES, "urmp_vln1.mp4"))
  results = []
  with mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1) as holistic:
    for _ in range(12):
      ok, bgr = capture.read()
      assert ok
      rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
      results.append((skeleton.from_mediapipe(holistic.process(rgb), (rgb.shape[1],
                                                                      rgb.shape[0])), rgb.shape))
  for kp, (height, width, _) in results:
    assert kp.shape == (67, 3)
    seen = kp[:, 2] > 0
    assert seen[[0, 1, 2, 5]].all()  # Nose, neck, shoulders of a seated violinist.
    assert (kp[seen, 0] >= 0).all() and (kp[seen, 0] <= width).all()
    assert (kp[seen, 1] >= 0).all() and (kp[seen, 1] <= height).all()
    # The neck is the midpoint of the shoulders.
    np.testing.assert_allclose(kp[1, :2], kp[[2, 5], :2].mean(0), atol=1e-3)
    # A detected hand sits at the body's wrist on the same side (the performer's own side).
    for wrist, part in ((7, skeleton.LEFT_HAND), (4, skeleton.RIGHT_HAND)):
      if kp[part.start, 2] > 0 and kp[wrist, 2] > 0.5:
        assert np.linalg.norm(kp[part.start, :2] - kp[wrist, :2]) < 0.1 * width
  assert sum(r[0][skeleton.RIGHT_HAND.start, 2] > 0 for r in results) >= 6
