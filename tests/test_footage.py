"""Tests of real-footage preprocessing (apvg_tf.footage) and `preprocess.py videos`.

Most tests run on small videos written here with ffmpeg and a fixed keypoint detector, so
they need no MediaPipe; the real violinist of the URMP fixture is processed by MediaPipe once
per session (about 40 s) and then trained on for one step, and cut into a Sub-URMP folder (19
images and chunks) that `preprocess.py urmp` turns into a dataset (about 15 s).
"""

import json
import os
import re
import subprocess
import sys
import wave

import numpy as np
import pytest

import conftest
from apvg_tf import audio, data, export_run, skeleton, video_io
from apvg_tf.errors import InputError
from apvg_tf.footage import dataset as footage_dataset
from apvg_tf.footage import process, staging, videos
from apvg_tf.training import trainer

FIXTURE_VIDEO = os.path.join(conftest.FIXTURES, "urmp_vln1.mp4")
SR = audio.SAMPLE_RATE


# --------------------------------------------------------------------------- helpers


class FixedDetector:
  """A stand-in for MediaPipe: all 67 points on a diagonal of the image's middle, confidence 1.

  Module level, so Beam can pickle it (it is passed as its own factory).
  """
  name = "fixed"

  def __call__(self, rgb):
    height, width = rgb.shape[:2]
    kp = np.ones((skeleton.NUM_KEYPOINTS, 3), np.float32)
    kp[:, 0] = np.linspace(0.3, 0.7, skeleton.NUM_KEYPOINTS) * width
    kp[:, 1] = np.linspace(0.25, 0.75, skeleton.NUM_KEYPOINTS) * height
    return kp


def _ffmpeg():
  return video_io.ffmpeg_exe()


def _write_wav(path, samples, rate=SR):
  pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
  with wave.open(str(path), "wb") as f:
    f.setnchannels(1)
    f.setsampwidth(2)
    f.setframerate(rate)
    f.writeframes(pcm.tobytes())
  return str(path)


def _write_video(path, frames, fps, *, setpts=None, wav=None):
  """Writes uint8 [T, H, W, 3] frames as lossless H.264 (with a wav muxed in as AAC if given).

  `setpts` (an ffmpeg expression in milliseconds of frame number N) makes the frame rate
  variable; frames then keep exactly those timestamps.
  """
  frames = np.asarray(frames, np.uint8)
  height, width = frames.shape[1:3]
  command = [_ffmpeg(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
             "-s", f"{width}x{height}", "-r", str(fps), "-i", "-"]
  if wav is not None:
    command += ["-i", str(wav), "-map", "0:v", "-map", "1:a", "-c:a", "aac", "-b:a", "128k"]
  if setpts is not None:
    command += ["-vf", f"settb=1/1000,setpts='{setpts}'", "-fps_mode", "passthrough"]
  command += ["-c:v", "libx264", "-qp", "0", "-bf", "0", "-pix_fmt", "yuv444p", str(path)]
  subprocess.run(command, input=frames.tobytes(), check=True)
  return str(path)


def _gray_frames(count, size=64, step=5):
  """Frame i is uniformly gray at level step * i (the frame number can be read back)."""
  return np.stack([np.full((size, size, 3), step * i, np.uint8) for i in range(count)])


def _noise(seconds, seed=0):
  return 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
  """A 2 s, 30 fps, 64 px video with its own (AAC) sound: a gray ramp."""
  folder = tmp_path_factory.mktemp("small")
  wav = _write_wav(folder / "music.wav", _noise(2.0))
  return _write_video(folder / "good.mp4", _gray_frames(60, step=4), 30, wav=wav)


# --------------------------------------------------------------------------- unit tests


def test_fill_gaps_short_linear_long_missing():
  kp = np.zeros((20, 3, 3), np.float32)
  t = np.arange(20, dtype=np.float32)
  kp[:, :, 0], kp[:, :, 1], kp[:, :, 2] = 2 * t[:, None], 10.0, 1.0
  kp[5:8, 0] = 0     # Point 0: a 3-frame gap.
  kp[5:15, 1] = 0    # Point 1: a 10-frame gap.
  kp[:3, 2] = 0      # Point 2: missing at the start (no detection before it).
  filled, stats = process.fill_gaps(kp, max_gap_frames=5)
  # Linear between frames 4 (x = 8) and 8 (x = 16): x = 2t, y = 10, confidence 1.
  np.testing.assert_allclose(filled[5:8, 0], [[10, 10, 1], [12, 10, 1], [14, 10, 1]])
  assert (filled[5:15, 1] == 0).all()
  assert (filled[:3, 2] == 0).all()
  assert stats == {"gaps_filled": 1, "points_filled": 3}
  np.testing.assert_array_equal(process.fill_gaps(kp, 0)[0], kp)


def test_stable_crop_contains_every_keypoint_and_ignores_a_wild_frame():
  rng = np.random.default_rng(0)
  frames, width, height = 200, 640, 480
  t = np.arange(frames)
  kp = np.zeros((frames, 67, 3), np.float32)
  kp[:, :25, 0] = 300 + rng.normal(0, 3, (frames, 25))
  kp[:, :25, 1] = np.linspace(150, 350, 25) + rng.normal(0, 3, (frames, 25))
  kp[:, :25, 2] = 1
  # The bowing wrist (and its hand) swings 150 px left and right.
  kp[:, skeleton.RIGHT_HAND, 0] = (300 + 150 * np.sin(t / 7.0))[:, None]
  kp[:, skeleton.RIGHT_HAND, 1] = 260
  kp[:, skeleton.RIGHT_HAND, 2] = 1
  box = process.stable_crop_box(kp, (width, height), margin=0.1)
  x0, y0, size = box
  xy = kp[..., :2][kp[..., 2] > 0]
  assert (xy[:, 0] >= x0).all() and (xy[:, 0] <= x0 + size).all()
  assert (xy[:, 1] >= y0).all() and (xy[:, 1] <= y0 + size).all()
  assert 0 <= x0 and 0 <= y0 and x0 + size <= width and y0 + size <= height
  # The union is 300 x 200 px; the square is 300 * 1.2 = 360 px.
  assert size == 360
  normalised = skeleton.to_square_crop(kp, box)
  assert (normalised[..., 2] == kp[..., 2]).all()  # Nothing fell outside.

  wild = kp.copy()
  wild[50, 60] = (630, 20, 1)  # One frame finds a "hand" in the corner.
  assert process.stable_crop_box(wild, (width, height), margin=0.1) == box

  with pytest.raises(InputError, match="no performer"):
    process.stable_crop_box(np.zeros((5, 67, 3)), (width, height))


def test_crop_is_padded_where_the_square_leaves_a_portrait_image():
  width, height = 100, 300
  kp = np.zeros((3, 67, 3), np.float32)
  kp[:, :25, 0] = np.linspace(30, 70, 25)
  kp[:, :25, 1] = np.linspace(50, 250, 25)  # 200 px tall: the square is wider than the image.
  kp[:, :25, 2] = 1
  x0, y0, size = process.stable_crop_box(kp, (width, height), margin=0.1)
  assert size == 240 and x0 == -70 and y0 == 30  # Centred on the performer, padded.
  image = np.full((height, width, 3), 200, np.uint8)
  crop = process.crop_frame(image, (x0, y0, size), 24)
  assert crop.shape == (24, 24, 3)
  assert (crop[:, :6] == 0).all() and (crop[:, -6:] == 0).all()  # 70 px of 240 each side.
  assert (crop[:, 8:16] == 200).all()


def test_snap_fps_and_nearest_frames():
  assert process.snap_fps(29.97002997) == 30000 / 1001
  assert process.snap_fps(25.0001) == 25.0 and process.snap_fps(13.5593) == 13.559
  stamps = np.array([0.0, 0.05, 0.1, 0.2, 0.3])
  # Output times 0, 0.04, ..., 0.28; e.g. 0.24 is nearer 0.2 (frame 3), 0.28 nearer 0.3.
  np.testing.assert_array_equal(process.nearest_source_frames(stamps, 25, 8),
                                [0, 1, 2, 2, 3, 3, 3, 4])


def test_variable_frame_rate_is_resampled_by_timestamp(tmp_path):
  # 20 frames 50 ms apart, then 20 frames 100 ms apart: 3 s of video.
  video = _write_video(tmp_path / "vfr.mp4", _gray_frames(40), 20,
                       setpts="if(lt(N,20),50*N,1000+100*(N-20))")
  wav = _write_wav(tmp_path / "vfr.wav", _noise(3.0))
  source = process.ClipSource("vfr", video=video, audio=wav)
  result = process.process_clip(source, process.Settings(resolution=32, fps=25),
                                detector=FixedDetector(), progress=False)
  assert result.report["variable_frame_rate"]
  assert result.frames.shape == (75, 32, 32, 3)
  shown = np.round(result.frames.reshape(75, -1).mean(1) / 5).astype(int)
  times = np.arange(75) / 25
  expected = np.where(times < 0.975, np.round(times / 0.05), 20 + np.round((times - 1) / 0.1))
  # The last frame (2.9 s) lasts to 3.0 s: output times past it show it.
  np.testing.assert_array_equal(shown, np.minimum(expected, 39).astype(int))
  assert audio.num_video_frames(len(result.waveform), 25) == 75


def test_audio_and_frames_stay_aligned(tmp_path):
  """A white flash at frame 30 and a click at 1.0 s of the video's own track line up."""
  frames = np.zeros((60, 64, 64, 3), np.uint8)
  frames[30] = 255
  sound = np.zeros(2 * SR)
  sound[SR:SR + 220] = 0.8 * np.sin(np.arange(220) * 2 * np.pi * 1000 / SR)
  video = _write_video(tmp_path / "flash.mp4", frames, 30,
                       wav=_write_wav(tmp_path / "click.wav", sound))
  result = process.process_clip(process.ClipSource("flash", video=video),
                                process.Settings(resolution=32), detector=FixedDetector(),
                                progress=False)
  assert result.fps == 30.0 and len(result.frames) == 60
  assert int(np.argmax(result.frames.reshape(60, -1).mean(1))) == 30
  onset = int(np.argmax(np.abs(result.waveform) > 0.2))
  assert abs(onset - SR) < 0.005 * SR  # AAC's encoder delay is undone by the decoder.
  # The audio window of frame 30 is centred on the click.
  cqt = audio.cqt(result.waveform)
  windows = audio.frame_windows(cqt, result.fps, len(result.frames))
  assert windows.shape == (60, 84, 87)
  # The click starts 0.27 columns after the window's centre column (43) and lasts 0.86.
  assert abs(int(np.argmax(windows[30].max(0))) - 43) <= 2


def test_openpose_json_input(tmp_path):
  video = _write_video(tmp_path / "take.mp4", _gray_frames(10), 10)
  wav = _write_wav(tmp_path / "take.wav", _noise(1.0))
  folder = tmp_path / "openpose"
  folder.mkdir()
  expected = []
  for i in range(10):
    body = np.zeros((25, 3))
    body[:, 0], body[:, 1], body[:, 2] = np.linspace(20, 44, 25) + i, np.linspace(16, 48, 25), 0.9
    hand = np.zeros((21, 3)) if i in (4, 5) else np.column_stack(
        [np.full(21, 40.0), np.linspace(30, 40, 21), np.full(21, 0.8)])
    person = {"pose_keypoints_2d": body.ravel().tolist(),
              "hand_left_keypoints_2d": hand.ravel().tolist(),
              "hand_right_keypoints_2d": []}
    with open(folder / f"take_{i:012d}_keypoints.json", "w") as f:
      json.dump({"version": 1.3, "people": [person]}, f)
    expected.append(skeleton.from_openpose({"people": [person]}))
  source = process.ClipSource("take", video=video, audio=wav, openpose_dir=str(folder))
  result = process.process_clip(source, process.Settings(resolution=32, max_gap_frames=2),
                                progress=False)
  assert result.report["keypoints_from"] == "openpose"
  np.testing.assert_allclose(result.source_keypoints, np.stack(expected))
  assert result.report["gaps_filled"] == 21  # The left hand's 2 missing frames, per point.
  np.testing.assert_allclose(
      result.keypoints, skeleton.to_square_crop(process.fill_gaps(np.stack(expected), 2)[0],
                                                result.crop_box), atol=1e-6)
  assert (result.keypoints[:, skeleton.LEFT_HAND, 2] > 0).all()
  assert result.report["right_hand_fraction"] == 0.0

  os.remove(folder / "take_000000000009_keypoints.json")
  with pytest.raises(InputError, match="9 OpenPose files but .* 10 frames"):
    process.process_clip(source, process.Settings(resolution=32), progress=False)


def _openpose_body(x0, confidence):
  """An OpenPose person: body along a line from (x0, 16) to (x0 + 16, 48), right hand beside."""
  body = np.column_stack([np.linspace(x0, x0 + 16, 25), np.linspace(16, 48, 25),
                          np.full(25, confidence)])
  hand = np.column_stack([np.full(21, x0 + 8.0), np.linspace(30, 40, 21), np.full(21, 0.7)])
  return {"pose_keypoints_2d": body.ravel().tolist(), "hand_left_keypoints_2d": [],
          "hand_right_keypoints_2d": hand.ravel().tolist()}


def test_openpose_frames_with_nobody_and_with_two_people(tmp_path):
  video = _write_video(tmp_path / "duo.mp4", _gray_frames(10), 10)
  wav = _write_wav(tmp_path / "duo.wav", _noise(1.0))
  folder = tmp_path / "openpose"
  folder.mkdir()
  performer = _openpose_body(36, 0.9)
  spectator = _openpose_body(0, 0.4)  # At the left edge, less confident.
  people = {2: [], 5: [], 3: [spectator, performer], 4: [performer, spectator],
            7: [spectator, performer]}
  for i in range(10):
    with open(folder / f"duo_{i:012d}_keypoints.json", "w") as f:
      json.dump({"version": 1.3, "people": people.get(i, [performer])}, f)
  alone = skeleton.from_openpose({"people": [performer]})
  expected = np.stack([np.zeros((67, 3), np.float32) if i in (2, 5) else alone
                       for i in range(10)])
  source = process.ClipSource("duo", video=video, audio=wav, openpose_dir=str(folder))

  kept = process.process_clip(source, process.Settings(resolution=32, max_gap_frames=0),
                              progress=False)
  # Nobody: all 67 points confidence 0, kept missing; two people: always the performer, so
  # the crop is the performer's alone.
  np.testing.assert_array_equal(kept.source_keypoints, expected)
  assert kept.crop_box == process.stable_crop_box(expected, (64, 64))
  assert not kept.keypoints[[2, 5], :, 2].any()
  assert kept.report["body_fraction"] == 0.8 and kept.report["gaps_filled"] == 0

  filled = process.process_clip(source, process.Settings(resolution=32, max_gap_frames=1),
                                progress=False)
  # Each empty frame is a one-frame gap of the 25 body and 21 right-hand points.
  assert filled.report["gaps_filled"] == 2 * (25 + 21)
  np.testing.assert_allclose(filled.keypoints[2], filled.keypoints[1], atol=1e-6)
  assert (filled.keypoints[[2, 5]][:, skeleton.RIGHT_HAND, 2] == np.float32(0.7)).all()


def test_bad_inputs_raise_input_error_and_leave_no_dataset(tmp_path, small_clip):
  text = tmp_path / "notes.mp4"
  text.write_text("this is not a video\n" * 20)
  with pytest.raises(InputError, match="cannot read video .*notes.mp4"):
    process.process_clip(process.ClipSource("notes", video=str(text)), progress=False)

  silent = _write_video(tmp_path / "silent.mp4", _gray_frames(30), 30)
  with pytest.raises(InputError, match="no audio track.*--audio_dir"):
    process.process_clip(process.ClipSource("silent", video=silent),
                         detector=FixedDetector(), progress=False)

  out = tmp_path / "out"
  sources = videos.list_videos(silent)
  with pytest.raises(InputError, match="no clip could be processed: silent: .*no audio track"):
    footage_dataset.build_footage_dataset(sources, out, instrument="violin", runner="none",
                                          detector_factory=FixedDetector, progress=False)
  assert not out.exists()

  audio_dir = tmp_path / "music"
  audio_dir.mkdir()
  with pytest.raises(InputError, match="no audio for video .*silent.mp4"):
    videos.list_videos(silent, audio_dir=str(audio_dir))
  _write_wav(audio_dir / "silent.wav", _noise(1.0))
  (source,) = videos.list_videos(silent, audio_dir=str(audio_dir))
  assert source.audio == str(audio_dir / "silent.wav") and source.clip_id == "silent"
  result = process.process_clip(source, process.Settings(resolution=32),
                                detector=FixedDetector(), progress=False)
  assert len(result.frames) == 30


def test_bad_videos_in_a_batch_fail_alone(tmp_path):
  """Videos without sound, damaged or too short are left out, each with its reason."""
  folder = tmp_path / "videos"
  folder.mkdir()
  music = _write_wav(tmp_path / "music.wav", _noise(2.0))
  whole = open(_write_video(folder / "good.mp4", _gray_frames(60, step=4), 30, wav=music),
               "rb").read()
  # One audio window is 87 x 256 samples = 0.505 s: 16 frames at 30 fps (0.533 s) are enough,
  # 15 (0.500 s) are not.
  _write_video(folder / "brief.mp4", _gray_frames(16), 30, wav=music)
  _write_video(folder / "short.mp4", _gray_frames(15), 30, wav=music)
  _write_video(folder / "silent.mp4", _gray_frames(30), 30)
  # An interrupted copy (MP4's index is at the end), and a copy with 1000 bytes overwritten
  # a third of the way in (OpenCV would stop there as if the video ended).
  (folder / "truncated.mp4").write_bytes(whole[:len(whole) // 2])
  damaged = bytearray(whole)
  damaged[len(whole) // 3:len(whole) // 3 + 1000] = np.random.default_rng(0).bytes(1000)
  (folder / "damaged.mp4").write_bytes(bytes(damaged))

  out = tmp_path / "out"
  summary = footage_dataset.build_footage_dataset(
      videos.list_videos(str(folder)), out, instrument="violin",
      settings=process.Settings(resolution=32), runner="none", detector_factory=FixedDetector,
      progress=False)
  assert summary["clips"] == ["brief", "good"]
  reasons = {"damaged": r"damaged\.mp4 is damaged: its index lists 60 frames but decoding "
                        r"stops after \d+",
             "short": r"clip short lasts 0\.500 s \(video 0\.500 s, audio 2\.000 s.*less than "
                      r"one audio window \(87 CQT columns x 256 samples = 0\.505 s\).*at "
                      r"least 0\.51 s",
             "silent": r"silent\.mp4.*no audio track.*--audio_dir",
             "truncated": r"cannot read video .*truncated\.mp4"}
  assert sorted(summary["failed"]) == sorted(reasons)
  for clip_id, reason in reasons.items():
    assert re.search(reason, summary["failed"][clip_id]), summary["failed"][clip_id]
    with open(staging.error_path(summary["staging_dir"], clip_id)) as f:
      assert json.load(f)["type"] == "InputError"  # A user's error, not a crash.
  manifest = data.load_manifest(out)
  assert manifest["metadata"]["failed"] == summary["failed"]
  written = {c["clip_id"]: c["num_frames"] for clips in manifest["splits"].values()
             for c in clips}
  assert written == {"brief": 16, "good": 60}


def test_list_videos_folder(tmp_path, small_clip):
  for name in ("b take.MOV", "a.mp4", "c.webm"):
    os.symlink(small_clip, tmp_path / name)
  (tmp_path / "notes.txt").write_text("x")
  sources = videos.list_videos(str(tmp_path))
  assert [s.clip_id for s in sources] == ["a", "b_take", "c"]
  (tmp_path / "empty").mkdir()
  with pytest.raises(InputError, match="holds no videos"):
    videos.list_videos(str(tmp_path / "empty"))
  with pytest.raises(InputError, match="does not exist"):
    videos.list_videos(str(tmp_path / "missing.mp4"))


def test_assign_splits_by_clip_deterministic():
  assert footage_dataset.assign_splits(["only"], seed=3) == {"only": "train"}
  ids = [f"take{i:02d}" for i in range(30)]
  splits = footage_dataset.assign_splits(ids, seed=0)
  assert splits == footage_dataset.assign_splits(list(reversed(ids)), seed=0)
  assert set(splits.values()) == {"train", "validation", "test"}
  assert 18 <= list(splits.values()).count("train") <= 28
  # Adding a clip does not move the others.
  more = footage_dataset.assign_splits(ids + ["take99"], seed=0)
  assert all(more[c] == splits[c] for c in ids)
  assert footage_dataset.assign_splits(ids, seed=1) != splits
  fixed = footage_dataset.assign_splits(ids[:3], seed=0, fixed={"take00": "test"})
  assert fixed["take00"] == "test" and "train" in fixed.values()
  three = footage_dataset.assign_splits(ids[:3], seed=5)
  assert sorted(three.values()) == ["test", "train", "validation"]


def test_beam_direct_runner_skips_broken_clip_and_reruns(tmp_path, small_clip):
  broken = tmp_path / "broken.mp4"
  broken.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(200))  # A header and nothing else.
  sources = videos.list_videos(f"{small_clip},{broken}")
  settings = process.Settings(resolution=32)
  out = tmp_path / "beam"
  kwargs = dict(instrument="violin", settings=settings, detector_factory=FixedDetector,
                progress=False)
  summary = footage_dataset.build_footage_dataset(sources, out, runner="DirectRunner",
                                                  num_workers=1, **kwargs)
  assert summary["clips"] == ["good"] and list(summary["failed"]) == ["broken"]
  assert "cannot read video" in summary["failed"]["broken"]
  staging_dir = summary["staging_dir"]
  assert os.path.exists(staging.error_path(staging_dir, "broken"))
  assert not os.path.exists(staging.staged_path(staging_dir, "broken"))
  assert not [f for f in os.listdir(staging_dir) if ".tmp" in f]
  manifest = data.load_manifest(out)
  assert [c["clip_id"] for c in manifest["splits"]["train"]] == ["good"]
  assert manifest["metadata"]["failed"] == summary["failed"]
  assert manifest["metadata"]["quality"]["good"]["frames"] == 60
  (clip,) = data.read_clips(str(out), "train")
  assert clip["frames"].shape == (60, 32, 32, 3)

  # A rerun skips the finished clip (its staged file is not rewritten) and retries the other.
  staged = staging.staged_path(staging_dir, "good")
  stamp = os.stat(staged).st_mtime_ns
  again = footage_dataset.build_footage_dataset(sources, out, runner="DirectRunner",
                                                num_workers=1, **kwargs)
  assert os.stat(staged).st_mtime_ns == stamp and again["failed"].keys() == {"broken"}
  # Other settings make it stale: it is processed again.
  assert not staging.is_staged(staging_dir, sources[0], process.Settings(resolution=48))

  # The plain loop runs the same per-clip function: the same staged result.
  plain = footage_dataset.build_footage_dataset(sources[:1], tmp_path / "plain", runner="none",
                                                **kwargs)
  _, beam_arrays = staging.read_staged(staging_dir, "good")
  _, plain_arrays = staging.read_staged(plain["staging_dir"], "good")
  for name, array in beam_arrays.items():
    np.testing.assert_array_equal(plain_arrays[name], array)


def _dataset_files(folder):
  """{path relative to the dataset: bytes} of a dataset's shards; its manifest, less command."""
  shards = footage_dataset.shard_bytes(folder)
  manifest = data.load_manifest(folder)
  del manifest["command"]  # The one field that differs: it records the runner flag.
  return shards, manifest


def test_beam_two_processes_and_plain_loop_write_identical_datasets(tmp_path, small_clip,
                                                                   monkeypatch):
  # DirectRunner's worker processes unpickle FixedDetector from this module.
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join([os.path.dirname(__file__), conftest.ROOT]))
  flash = np.zeros((45, 48, 80, 3), np.uint8)
  flash[::7] = 255
  other = _write_video(tmp_path / "flash.mp4", flash, 30,
                       wav=_write_wav(tmp_path / "click.wav", _noise(1.5, seed=3)))
  broken = tmp_path / "broken.mp4"
  broken.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(200))
  sources = videos.list_videos(f"{small_clip},{other},{broken}")
  kwargs = dict(instrument="violin", settings=process.Settings(resolution=32),
                detector_factory=FixedDetector, progress=False)
  footage_dataset.build_footage_dataset(sources, tmp_path / "plain", runner="none",
                                        command="preprocess.py videos --runner=none", **kwargs)
  summary = footage_dataset.build_footage_dataset(
      sources, tmp_path / "beam", runner="DirectRunner", num_workers=2,
      running_mode="multi_processing", command="preprocess.py videos", **kwargs)
  assert summary["clips"] == ["good", "flash"] and list(summary["failed"]) == ["broken"]
  plain_shards, plain_manifest = _dataset_files(tmp_path / "plain")
  beam_shards, beam_manifest = _dataset_files(tmp_path / "beam")
  assert sorted(beam_shards) == sorted(plain_shards) and len(beam_shards) == 2
  for name, contents in plain_shards.items():
    assert beam_shards[name] == contents, f"{name} differs"
  assert beam_manifest == plain_manifest


def test_urmp_layout_clips_are_cut_to_their_player(tmp_path):
  # A two-player URMP piece: the violinist's half of the picture is dark, the cellist's light.
  piece = tmp_path / "urmp" / "01_Duet_vn_vc"
  piece.mkdir(parents=True)
  frames = np.zeros((30, 64, 128, 3), np.uint8)
  frames[:, :, :64], frames[:, :, 64:] = 40, 200
  _write_video(piece / "Vid_01_Duet_vn_vc.mp4", frames, 30)
  for k, abbreviation in enumerate(("vn", "vc"), 1):
    _write_wav(piece / f"AuSep_{k}_{abbreviation}_01_Duet.wav", _noise(1.0, seed=k))
  from apvg_tf.footage import layouts  # pylint: disable=g-import-not-at-top
  (clip,) = layouts.discover(str(tmp_path / "urmp"), "cello", str(tmp_path / "staging"))
  assert clip.source.region == (0.5, 0.0, 1.0, 1.0) and clip.source.audio.endswith("vc_01_Duet.wav")
  result = process.process_clip(clip.source, process.Settings(resolution=32),
                                detector=FixedDetector(), progress=False)
  # Only the cellist's (light) half was seen, by the detector and in the frames.
  assert result.report["image_size"] == [64, 64] and result.report["region"] == [0.5, 0, 1, 1]
  assert abs(float(result.frames.mean()) - 200) < 3
  assert result.frames.shape == (30, 32, 32, 3)


def _preprocess(*args):
  return subprocess.run([sys.executable, os.path.join(conftest.ROOT, "preprocess.py"), *args],
                        capture_output=True, text=True, timeout=300, cwd=conftest.ROOT)


def test_cli_videos_with_openpose_and_bad_input(tmp_path):
  video = _write_video(tmp_path / "solo.mp4", _gray_frames(12), 12,
                       wav=_write_wav(tmp_path / "solo.wav", _noise(1.0)))
  folder = tmp_path / "openpose" / "solo"
  folder.mkdir(parents=True)
  body = np.column_stack([np.linspace(20, 44, 25), np.linspace(16, 48, 25), np.ones(25)])
  for i in range(12):
    with open(folder / f"solo_{i:012d}_keypoints.json", "w") as f:
      json.dump({"people": [{"pose_keypoints_2d": body.ravel().tolist()}]}, f)
  out = tmp_path / "dataset"
  done = _preprocess("videos", f"--input={video}", "--instrument=cello", f"--out={out}",
                     "--keypoints=openpose", f"--openpose_dir={tmp_path / 'openpose'}",
                     "--resolution=32", "--runner=none")
  assert done.returncode == 0, done.stderr
  assert "solo" in done.stdout and "wrote" in done.stdout
  manifest = data.load_manifest(out)
  assert manifest["fps"] == 12.0 and manifest["splits"]["train"][0]["num_frames"] == 12
  assert "preprocess.py videos --input=" in manifest["command"]

  text = tmp_path / "fake.mp4"
  text.write_text("hello")
  failed = _preprocess("videos", f"--input={text}", "--instrument=cello",
                       f"--out={tmp_path / 'nothing'}", "--runner=none")
  assert failed.returncode == 2
  assert failed.stderr.strip().splitlines()[-1].startswith("error: no clip could be processed")
  assert not (tmp_path / "nothing").exists()


def _sub_urmp_from_fixture(root, songs):
  """A Sub-URMP folder cut from the URMP fixture: one jpg and one 0.5 s chunk per step.

  Step k of the video (at 0.5 k s) is the frame shown then and the 48 kHz stereo audio of
  [0.5 k, 0.5 k + 0.5) s, as Sub-URMP cut URMP. `songs` is a list of (split, song, steps),
  consecutive stretches of the video in order.

  Returns:
    float64 [S] seconds of the first step of each song in the video.
  """
  import cv2  # pylint: disable=g-import-not-at-top
  pcm = subprocess.run([_ffmpeg(), "-loglevel", "error", "-i", FIXTURE_VIDEO, "-vn", "-f",
                        "s16le", "-ac", "2", "-ar", "48000", "-"],
                       capture_output=True, check=True).stdout
  stereo = np.frombuffer(pcm, "<i2").reshape(-1, 2)
  capture = cv2.VideoCapture(FIXTURE_VIDEO)
  frames, stamps = [], []
  while True:
    ok, bgr = capture.read()
    if not ok:
      break
    frames.append(bgr)
    stamps.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000)
  capture.release()
  step, starts = 0, []
  for split, song, count in songs:
    starts.append(0.5 * step)
    for k in range(count):
      stem = f"violin_{song}_{k:04d}"
      image = root / "img" / split / "violin" / f"{stem}.jpg"
      image.parent.mkdir(parents=True, exist_ok=True)
      cv2.imwrite(str(image), frames[int(np.argmin(np.abs(np.array(stamps) - 0.5 * step)))])
      chunk = root / "chunk" / split / "violin" / f"{stem}.wav"
      chunk.parent.mkdir(parents=True, exist_ok=True)
      with wave.open(str(chunk), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(48000)
        f.writeframes(stereo[24000 * step:24000 * (step + 1)].tobytes())
      step += 1
  assert len(stereo) >= 24000 * step, "the fixture's audio is shorter than the steps asked for"
  return np.array(starts)


def test_sub_urmp_cut_from_the_fixture_through_preprocess_urmp(tmp_path):
  if not os.path.isfile(FIXTURE_VIDEO):
    pytest.skip(f"the real-footage fixture {FIXTURE_VIDEO} is absent (only in the project's "
                "shared folder)")
  pytest.importorskip("mediapipe")
  import cv2  # pylint: disable=g-import-not-at-top
  root = tmp_path / "Sub-URMP"
  songs = [("train", "01", 12), ("validation", "02", 7)]
  starts = _sub_urmp_from_fixture(root, songs)
  out = tmp_path / "dataset"
  done = _preprocess("urmp", f"--root={root}", "--instrument=violin", f"--out={out}",
                     "--resolution=64", "--runner=none")
  assert done.returncode == 0, done.stderr[-2000:]
  assert "2 violin clips (sub_urmp layout)" in done.stdout
  manifest = data.load_manifest(out)
  assert manifest["fps"] == 2.0 and manifest["source"] == "sub_urmp"
  # Sub-URMP's own split is kept; one frame per image, 0.5 s of 44.1 kHz audio per chunk.
  assert {split: [(c["clip_id"], c["num_frames"], c["num_samples"]) for c in clips]
          for split, clips in manifest["splits"].items() if clips} == {
              "train": [("suburmp_train_violin_01", 12, 12 * 22050)],
              "validation": [("suburmp_validation_violin_02", 7, 7 * 22050)]}
  original = audio.load_waveform(FIXTURE_VIDEO)
  for (split, song, count), start in zip(songs, starts):
    clip_id = f"suburmp_{split}_violin_{song}"
    report = manifest["metadata"]["quality"][clip_id]
    assert report["keypoints_from"] == "mediapipe" and report["frames"] == count
    assert report["body_fraction"] == 1.0  # MediaPipe finds the violinist in every frame.
    (clip,) = data.read_clips(str(out), split)
    assert clip["frames"].shape == (count, 64, 64, 3)
    # Frame k is image k cut to the report's crop: 3.4 gray levels apart on average (the
    # dataset's JPEG), while the other images of the song are 6.8 or more.
    for k in range(count):
      image = cv2.cvtColor(cv2.imread(str(root / "img" / split / "violin" /
                                          f"violin_{song}_{k:04d}.jpg")), cv2.COLOR_BGR2RGB)
      expected = process.crop_frame(image, report["crop_box"], 64).astype(np.float32)
      assert np.abs(clip["frames"][k] - expected).mean() < 5
    assert ((clip["keypoints"][:, skeleton.BODY, 2] > 0).sum(1) >= 10).all()
    # The joined chunks are the video's own music from the song's first step on (0.99999 to
    # the video's track; -0.01 one chunk off).
    begin = int(round(start * audio.SAMPLE_RATE))
    same = original[begin:begin + len(clip["waveform"])]
    assert np.corrcoef(clip["waveform"], same)[0, 1] > 0.999


# --------------------------------------------------------------------------- the real violinist


@pytest.fixture(scope="module")
def violinist(tmp_path_factory):
  """The URMP fixture through MediaPipe, once: (dataset folder, summary, staged arrays)."""
  if not os.path.isfile(FIXTURE_VIDEO):
    pytest.skip(f"the real-footage fixture {FIXTURE_VIDEO} is absent (only in the project's "
                "shared folder)")
  pytest.importorskip("mediapipe")
  out = tmp_path_factory.mktemp("violinist") / "dataset"
  summary = footage_dataset.build_footage_dataset(
      videos.list_videos(FIXTURE_VIDEO), out, instrument="violin", runner="none",
      command="pytest", progress=False)
  _, arrays = staging.read_staged(summary["staging_dir"], "urmp_vln1")
  return str(out), summary, arrays


def test_violinist_dataset_all_frames_body_and_wrists(violinist):
  out, summary, arrays = violinist
  manifest = data.load_manifest(out)
  assert manifest["fps"] == pytest.approx(30000 / 1001)
  assert [c["clip_id"] for c in manifest["splits"]["train"]] == ["urmp_vln1"]  # One clip.
  report = manifest["metadata"]["quality"]["urmp_vln1"]
  assert report["frames"] == 299 and report["keypoints_from"] == "mediapipe"
  (clip,) = data.read_clips(out, "train")
  assert clip["frames"].shape == (299, 128, 128, 3)
  keypoints = clip["keypoints"]
  assert (keypoints[:, skeleton.BODY, 2] > 0).any(1).mean() >= 0.95
  # Both wrists: detected in every frame, inside the crop (source pixels and crop units).
  x0, y0, size = report["crop_box"]
  wrists = arrays["source_keypoints"][:, [skeleton.INDEX["left_wrist"],
                                          skeleton.INDEX["right_wrist"]]]
  assert (wrists[..., 2] > 0).all()
  assert ((wrists[..., 0] >= x0) & (wrists[..., 0] <= x0 + size)).all()
  assert ((wrists[..., 1] >= y0) & (wrists[..., 1] <= y0 + size)).all()
  crop_wrists = keypoints[:, [skeleton.INDEX["left_wrist"], skeleton.INDEX["right_wrist"]]]
  assert (crop_wrists[..., 2] > 0).all()
  assert ((crop_wrists[..., :2] >= 0) & (crop_wrists[..., :2] <= 1)).all()
  assert report["wrists_in_crop_fraction"] == 1.0


def test_violinist_audio_windows_aligned_to_frames(violinist):
  out, _, _ = violinist
  (clip,) = data.read_clips(out, "train")
  fps, frames = clip["fps"], len(clip["keypoints"])
  # The video's own track, cut at the end only: sample n is still at time n / 44100.
  original = audio.load_waveform(FIXTURE_VIDEO)
  np.testing.assert_array_equal(clip["waveform"], original[:len(clip["waveform"])])
  assert audio.num_video_frames(len(clip["waveform"]), fps) == frames == 299
  windows = audio.frame_windows(clip["cqt"], fps, frames)
  assert windows.shape == (299, 84, 87)
  # Frame t's window is centred on the CQT column at t / fps seconds.
  centers = audio.window_centers(np.arange(frames), fps)
  np.testing.assert_array_equal(windows[:, :, 43], clip["cqt"][:, centers].T)


def test_debug_config_trains_on_the_violinist_and_generate_runs_with_it(violinist, tmp_path):
  out, _, _ = violinist
  # One step of each stage (KHP, CVG, STU) of the debug config, exported, then generate.py.
  config = conftest.debug_config(out, stage="all", num_train_steps=1, eval_every_steps=0)
  config.eval.checkpoint = "latest"
  workdir = str(tmp_path / "run")
  losses = trainer.train_and_evaluate(config, workdir)
  assert all(np.isfinite(v) for stage in losses.values() for v in stage.values())
  model = str(tmp_path / "model")
  meta = export_run.export_run(config, workdir, model, onnx=False)
  assert meta["instrument"] == "violin"
  music = os.path.join(conftest.FIXTURES, "mix.wav")  # 4.97 s of the ensemble.
  video = tmp_path / "violinist.mp4"
  result = subprocess.run([sys.executable, os.path.join(conftest.ROOT, "generate.py"),
                           f"--model={model}", f"--audio={music}", f"--out={video}"],
                          capture_output=True, text=True, timeout=600, cwd=conftest.ROOT)
  assert result.returncode == 0, result.stderr[-2000:]
  frames = round(4.97 * meta["fps"])
  assert f"wrote {video}: " in result.stdout and os.path.getsize(video) > 0
  assert abs(int(result.stdout.split(": ")[1].split()[0]) - frames) <= 1
