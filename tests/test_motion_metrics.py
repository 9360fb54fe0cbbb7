"""Tests of the motion metrics (FID_k, FID_g, diversity, strokes, onsets, travel) with known
answers: hand-built tracks whose events are known by construction, and the virtual performer,
whose motion events are its note onsets."""

import numpy as np
import pytest

from apvg_tf import skeleton
from apvg_tf.errors import InputError
from apvg_tf.evaluation import motion_events as me
from apvg_tf.evaluation import motion_metrics as mm
from apvg_tf.synth import music, performer

FPS = 30.0
WRIST = skeleton.INDEX["right_wrist"]
RIGHT_HAND = skeleton.RIGHT_HAND
# A diagonal bow: the principal direction, not the x axis, must carry the strokes.
BOW_DIRECTION = np.array([np.cos(0.5), np.sin(0.5)])


@pytest.fixture(scope="module")
def rest_pose():
  """The virtual cellist's first frame (bow still at the lead-in): float64 [67, 2]."""
  piece = music.generate_piece("cello", 6.0, 0, 0)
  return performer.perform(piece, "cello", FPS, 3).keypoints[0, :, :2].astype(np.float64)


def bow_track(pose, frames=125, period=20, first_turn=5, amplitude=0.05):
  """The rest pose with the bow hand (wrist and 21 hand points) moving as a cosine.

  The hand's offset along BOW_DIRECTION is amplitude * cos(2 pi (t - first_turn) / period):
  the bow turns exactly at frames first_turn + k * period / 2. Amplitude 0.05 frame units is
  0.16 torso lengths (the pose's torso is 0.31), so each swing (0.32) clears REVERSAL_TRAVEL.

  Returns:
    float64 [frames, 67, 2].
  """
  t = np.arange(frames)
  offset = amplitude * np.cos(2 * np.pi * (t - first_turn) / period)
  track = np.repeat(pose[None], frames, 0)
  moving = [WRIST] + list(range(RIGHT_HAND.start, RIGHT_HAND.stop))
  track[:, moving] += offset[:, None, None] * BOW_DIRECTION
  return track


# --------------------------------------------------------------------------- events


def test_bow_reversals_of_a_cosine_stroke_are_its_turning_frames(rest_pose):
  # Turns every 10 frames from frame 5 (first_turn + k * period / 2) up to 115; the clip
  # starts mid-swing (a start from rest is no turn) and 124 is past the last full swing.
  events = me.motion_events(bow_track(rest_pose), FPS, "cello")
  np.testing.assert_array_equal(events, np.arange(5, 120, 10))


@pytest.mark.parametrize("shift", [0, 1, 2, 3])
def test_reversals_move_with_the_stroke(rest_pose, shift):
  events = me.motion_events(bow_track(rest_pose, first_turn=5 + shift), FPS, "cello")
  np.testing.assert_array_equal(events, np.arange(5, 120, 10) + shift)


@pytest.mark.parametrize("shift, f1", [(0, 1.0), (1, 1.0), (2, 1.0), (3, 0.0)])
def test_stroke_f1_tolerates_two_frames_and_no_more(rest_pose, shift, f1):
  # 12 turns each; shifted by 3 frames every generated turn is 3 frames from one true turn
  # and 7 from the next, beyond the tolerance of 2.
  real, pred = bow_track(rest_pose), bow_track(rest_pose, first_turn=5 + shift)
  scores = me.stroke_scores([pred], [real], FPS, "cello")
  assert scores == {"stroke_precision": f1, "stroke_recall": f1, "stroke_f1": f1}
  assert me.stroke_f1([pred], [real], FPS, "cello") == f1


def test_stroke_precision_and_recall_count_extra_and_missing_turns(rest_pose):
  # The generated bow turns twice as often (period 10, turns every 5 frames from frame 5):
  # all 12 true turns are found (recall 1), 12 of its 24 turns are true (precision 0.5).
  real = bow_track(rest_pose)
  pred = bow_track(rest_pose, period=10)
  assert len(me.motion_events(pred, FPS, "cello")) == 24
  scores = me.stroke_scores([pred], [real], FPS, "cello")
  assert scores["stroke_recall"] == 1.0
  assert scores["stroke_precision"] == 0.5
  assert scores["stroke_f1"] == pytest.approx(2 * 0.5 / 1.5)


def test_jitter_below_the_travel_threshold_is_no_stroke(rest_pose):
  rng = np.random.default_rng(0)
  still = np.repeat(rest_pose[None], 90, 0)
  # Up to half a pixel either way at 128 px (0.004 frame units) of noise on every point.
  jittered = still + rng.uniform(-0.004, 0.004, still.shape)
  assert len(me.motion_events(jittered, FPS, "cello")) == 0
  assert len(me.motion_events(jittered, FPS, "trombone")) == 0


def test_match_events_is_one_to_one_and_maximal():
  assert me.match_events([10, 20, 30], [10, 20, 30]) == 3
  # Two generated events near one true event: one match.
  assert me.match_events([9, 11], [10]) == 1
  # The earliest-first matching finds both pairs where a nearest-first one would pair 11-12.
  assert me.match_events([11, 13], [9, 12], tolerance=2) == 2
  assert me.match_events([], [1, 2]) == 0


def test_slide_arrivals_of_a_hand_built_slide(rest_pose):
  # The slide wrist moves away from the nose by 0.005 frame units a frame (0.48 torso
  # lengths per second, above SLIDE_SPEED) for 10 frames (0.16 torso, more than one
  # position), holds, and comes back: arrivals at the first frames at rest, 20 and 50.
  offset = np.zeros(70)
  offset[10:21] = np.linspace(0, 0.05, 11)
  offset[21:40] = 0.05
  offset[40:51] = np.linspace(0.05, 0, 11)
  track = np.repeat(rest_pose[None], 70, 0)
  away = rest_pose[WRIST] - rest_pose[skeleton.INDEX["nose"]]
  away /= np.linalg.norm(away)
  track[:, [WRIST] + list(range(RIGHT_HAND.start, RIGHT_HAND.stop))] += (
      offset[:, None, None] * away)
  np.testing.assert_array_equal(me.motion_events(track, FPS, "trombone"), [20, 50])
  # A move of less than SLIDE_TRAVEL (0.01 frame units, 0.03 torso) is none.
  assert len(me.motion_events(rest_pose + 0.2 * (track - rest_pose), FPS, "trombone")) == 0


# --------------------------------------------------------------------------- onsets and travel


def test_onset_hit_counts_onsets_with_a_turn_within_two_frames(rest_pose):
  track = bow_track(rest_pose)  # Turns at 5, 15, ..., 115.
  # Onset frames 5 (on a turn), 17 (2 from 15), 28 (3 from 25) and 51.5 (3.5 from 55).
  onsets = np.array([5, 17, 28, 51.5]) / FPS
  assert me.onset_hit([track], [onsets], FPS, "cello") == 0.5
  # Pooled over clips: 2 of 4 and 1 of 1.
  assert me.onset_hit([track, track], [onsets, np.array([95 / FPS])], FPS, "cello") == 0.6
  assert np.isnan(me.onset_hit([track], [np.zeros(0)], FPS, "cello"))


def test_travel_ratio_of_double_amplitude_is_two(rest_pose):
  real = bow_track(rest_pose)
  pred = bow_track(rest_pose, amplitude=0.1)
  assert me.travel_ratio([pred], [real], "cello") == pytest.approx(2.0, rel=1e-12)
  assert me.travel_ratio([real], [real], "cello") == 1.0
  assert me.travel_ratio([np.repeat(rest_pose[None], 125, 0)], [real], "cello") == 0.0


# --------------------------------------------------------------------------- features


def test_kinetic_features_of_a_constant_drift_are_its_squared_speed(rest_pose):
  # Everything drifts right by 0.0031 frame units a frame: 0.0031 * 30 / 0.31 = 0.3 torso
  # lengths per second, so horizontal energy 0.09, vertical 0 and no acceleration; the
  # fingers keep their place on the wrist (all zero).
  torso = np.linalg.norm(rest_pose[1] - rest_pose[8])
  assert torso == pytest.approx(0.31)
  segment = rest_pose[None] + np.arange(60)[:, None, None] * np.array([0.0031, 0.0])
  features = mm.kinetic_features(segment, FPS).reshape(10, 3)
  expected = np.zeros((10, 3))
  expected[:8, 0] = (0.0031 * FPS / torso) ** 2
  np.testing.assert_allclose(features, expected, atol=1e-12)
  assert len(mm.KINETIC_FEATURE_NAMES) == 30


def test_geometric_features_of_a_bow_moving_right(rest_pose):
  # The bow hand moves right at 0.3 torso lengths per second (above HAND_SPEED), the rest
  # of the body is still.
  segment = np.repeat(rest_pose[None], 60, 0)
  hand = [WRIST] + list(range(RIGHT_HAND.start, RIGHT_HAND.stop))
  segment[:, hand, 0] += np.arange(60)[:, None] * 0.0031
  features = dict(zip(mm.GEOMETRIC_FEATURE_NAMES, mm.geometric_features(segment, FPS)))
  assert len(features) == 29
  assert features["right_hand_moving_right"] == 1.0
  assert features["right_hand_moving_left"] == 0.0
  assert features["right_hand_moving_up"] == features["right_hand_moving_down"] == 0.0
  assert features["left_hand_moving_right"] == features["left_hand_moving_left"] == 0.0
  assert features["right_fingers_moving"] == 0.0  # They move with the wrist.
  assert features["head_tilting_left"] == features["trunk_swaying_right"] == 0.0


def test_mean_pairwise_distance_known_value():
  # Distances 5, 10, 5: mean 20 / 3.
  assert mm.mean_pairwise_distance([[0, 0], [3, 4], [6, 8]]) == pytest.approx(20 / 3)
  assert mm.mean_pairwise_distance([[1, 2]]) == 0.0


def test_missing_points_are_interpolated_over_time(rest_pose):
  track = np.concatenate([bow_track(rest_pose, frames=5), np.ones((5, 67, 1))], -1)
  seen = me.check_track(track)
  track[2, WRIST, 2] = 0.0
  track[2, WRIST, :2] = 0.0  # Missing points are written as (0, 0, 0).
  np.testing.assert_allclose(me.check_track(track)[2, WRIST],
                             0.5 * (seen[1, WRIST] + seen[3, WRIST]))


# --------------------------------------------------------------------------- on the performer


def _performances(instrument, count=4, seconds=30.0):
  out = []
  for index in range(count):
    piece = music.generate_piece(instrument, seconds, 0, index)
    out.append((piece, performer.perform(piece, instrument, FPS, int(seconds * FPS))))
  return out


@pytest.fixture(scope="module")
def cello():
  return _performances("cello")


@pytest.fixture(scope="module")
def trombone():
  return _performances("trombone")


def test_the_cellists_bow_reversals_are_its_note_onsets(cello):
  """The true motion's reversals fall on the onsets of the strokes where the bow turns.

  Those strokes (music.bowing): every stroke but the first whose direction differs from the
  previous one's, or that follows a retake (the lifted bow set back). A stroke in the same
  direction without a retake has no turn to find. Each detected reversal is such an onset
  or the start of a retake. Measured: 89 % of 118 onsets within 1 frame, all within 2; all
  138 reversals explained. Not exactly 1 frame: the contact point and the string level
  move over the onset too, and shift the wrist's turning point by up to 2 frames.
  """
  distances, explained = [], []
  for piece, performance in cello:
    plan = music.bowing(piece.notes)
    turns = [s["start"] * FPS for k, s in enumerate(plan)
             if k and (s["direction"] != plan[k - 1]["direction"] or s["retake"])]
    retakes = [s["retake"][0] * FPS for s in plan if s["retake"]]
    events = me.motion_events(performance.keypoints, FPS, "cello")
    distances.append(np.abs(np.array(turns)[:, None] - events[None]).min(1))
    explained.append(np.abs(events[:, None] - np.array(turns + retakes)[None]).min(1) <= 2)
  distance = np.concatenate(distances)
  assert len(distance) > 100
  assert np.mean(distance <= 1) >= 0.85
  assert np.all(distance <= 2)
  assert np.concatenate(explained).all()


def test_the_trombonists_slide_arrivals_are_its_note_onsets(trombone):
  # Measured: all 132 slide onsets have an arrival within 1 frame, and nothing else is one.
  for _, performance in trombone:
    slides = [e * FPS for e, kind in zip(performance.events, performance.event_kinds)
              if kind == "slide"]
    events = me.motion_events(performance.keypoints, FPS, "trombone")
    assert len(events) == len(slides)
    assert np.all(np.abs(np.array(slides)[:, None] - events[None]).min(1) <= 1)


def test_true_motion_hits_its_onsets_and_a_frozen_one_none(cello):
  tracks = [p.keypoints for _, p in cello]
  onsets = [np.array([n.start for n in piece.notes]) for piece, _ in cello]
  frozen = [np.repeat(t[:1], len(t), 0) for t in tracks]
  result = mm.motion_metrics(frozen, tracks, onsets, FPS, "cello")
  # Slurred notes and strokes that go on in the same direction have no turn: measured 0.74.
  assert 0.65 < result["onset_hit_real"] < 0.85
  assert result["onset_hit"] == 0.0
  assert result["stroke_f1"] == 0.0 and result["travel_ratio"] == 0.0


# --------------------------------------------------------------------------- FID and diversity


def test_identical_motion_scores_perfectly(trombone):
  tracks = [p.keypoints for _, p in trombone]
  onsets = [np.array([n.start for n in piece.notes]) for piece, _ in trombone]
  result = mm.motion_metrics(tracks, tracks, onsets, FPS, "trombone")
  assert set(result) == {
      "fid_k", "fid_g", "fid_k_real", "fid_g_real", "div_k", "div_g", "div_k_real",
      "div_g_real", "stroke_f1", "stroke_precision", "stroke_recall", "onset_hit",
      "onset_hit_real", "travel_ratio"}
  assert result["fid_k"] == pytest.approx(0.0, abs=1e-6)
  assert result["fid_g"] == pytest.approx(0.0, abs=1e-6)
  assert result["stroke_f1"] == result["stroke_precision"] == result["stroke_recall"] == 1.0
  assert result["travel_ratio"] == 1.0
  assert result["div_k"] == result["div_k_real"] > 0
  assert result["div_g"] == result["div_g_real"] > 0
  assert result["onset_hit"] == result["onset_hit_real"] > 0.5
  # Measured 1.7 and 6.1: the two halves are different music.
  assert 0 < result["fid_k_real"] < 5 and 0 < result["fid_g_real"] < 15
  assert mm.fid_floor(tracks, FPS) == {"fid_k_real": result["fid_k_real"],
                                       "fid_g_real": result["fid_g_real"]}


def test_frozen_and_shuffled_motion_are_far_from_the_real_one(cello):
  tracks = [p.keypoints for _, p in cello]
  floor = mm.fid_floor(tracks, FPS)
  frozen = [np.repeat(t[:1], len(t), 0) for t in tracks]
  rng = np.random.default_rng(0)
  shuffled = [t[rng.permutation(len(t))] for t in tracks]
  # Measured: floor 2.0 (kinetic) and 9.3 (geometric); frozen 45 and 85.
  assert mm.fid_k(frozen, tracks, FPS) > 10 * floor["fid_k_real"]
  assert mm.fid_g(frozen, tracks, FPS) > 5 * floor["fid_g_real"]
  assert mm.fid_k(shuffled, tracks, FPS) > 1000 * floor["fid_k_real"]
  assert mm.fid_g(shuffled, tracks, FPS) > 100 * floor["fid_g_real"]
  assert mm.div_k(frozen, tracks, FPS) == 0.0  # Every frozen segment is the same.
  assert mm.div_k(shuffled, tracks, FPS) > mm.div_k(tracks, tracks, FPS)


def test_fid_does_not_depend_on_the_performers_size_in_the_frame(cello):
  tracks = [p.keypoints[..., :2] for _, p in cello[:2]]
  zoomed = [0.5 + 1.5 * (t - 0.5) for t in tracks]
  assert mm.fid_k(zoomed, tracks, FPS) == pytest.approx(0.0, abs=1e-6)
  assert mm.fid_g(zoomed, tracks, FPS) == pytest.approx(0.0, abs=1e-6)


def test_the_floor_of_a_performance_played_twice_is_zero():
  # The same 40 s of motion twice: both halves give the same 39 segments.
  piece = music.generate_piece("cello", 40.0, 0, 0)
  once = performer.perform(piece, "cello", FPS, 1200).keypoints
  floor = mm.fid_floor([np.concatenate([once, once])], FPS)
  assert floor["fid_k_real"] == pytest.approx(0.0, abs=1e-6)
  assert floor["fid_g_real"] == pytest.approx(0.0, abs=1e-6)


def test_instruments_without_a_moving_arm_have_no_stroke_metrics(cello):
  tracks = [p.keypoints for _, p in cello[:2]]
  result = mm.motion_metrics(tracks, tracks, [np.zeros(0)] * 2, FPS, "flute")
  assert np.isnan(result["stroke_f1"]) and np.isnan(result["onset_hit"])
  assert result["fid_k"] == pytest.approx(0.0, abs=1e-6)
  with pytest.raises(InputError, match="no moving-arm events"):
    me.motion_events(tracks[0], FPS, "flute")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad, message", [
    (np.zeros((90, 25, 2)), r"shape \[T, 67, 2\] or \[T, 67, 3\].*got shape \(90, 25, 2\)"),
    (np.zeros((90, 67)), r"got shape \(90, 67\)"),
    (np.zeros((2, 67, 2)), r"T >= 3 frames; got shape \(2, 67, 2\)"),
    (np.full((90, 67, 2), np.nan), "not finite"),
    (np.zeros((90, 67, 3)), "no point with confidence > 0"),
])
def test_bad_tracks_raise_input_error(rest_pose, bad, message):
  good = np.repeat(rest_pose[None], 90, 0)
  with pytest.raises(InputError, match=message):
    mm.motion_metrics([bad], [good], [np.zeros(0)], FPS, "cello")


def test_bad_lists_raise_input_error(rest_pose):
  good = np.repeat(rest_pose[None], 90, 0)
  with pytest.raises(InputError, match="non-empty list.*got an empty list"):
    mm.motion_metrics([], [good], [], FPS, "cello")
  with pytest.raises(InputError, match="non-empty list.*got a ndarray"):
    mm.fid_k(good, [good], FPS)
  with pytest.raises(InputError, match="pred_tracks has 2 clips but real_tracks has 1"):
    mm.motion_metrics([good, good], [good], [np.zeros(0)], FPS, "cello")
  with pytest.raises(InputError, match="90 frames and the true one 60"):
    me.travel_ratio([good], [good[:60]], "cello")
  with pytest.raises(InputError, match="onsets must be a list of 1 arrays"):
    mm.motion_metrics([good], [good], [np.zeros(0)] * 2, FPS, "cello")
  with pytest.raises(InputError, match="unknown instrument 'kazoo'"):
    mm.motion_metrics([good], [good], [np.zeros(0)], FPS, "kazoo")
  with pytest.raises(InputError, match="fps must be a positive number"):
    mm.fid_k([good], [good], 0)
  with pytest.raises(InputError, match="no clip has 120 frames"):
    mm.fid_k([good], [good], FPS, segment_frames=120)
  with pytest.raises(InputError, match="at least 2 segments"):
    mm.fid_k([good], [good], FPS, segment_frames=90)
