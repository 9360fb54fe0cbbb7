"""Tests of the dataset format, the reader, the tf.data pipeline and audio framing."""

import fractions
import os

import numpy as np
import pytest
import tensorflow as tf

from apvg_tf import audio, data
from apvg_tf.audio import framing
from apvg_tf.data import schema
from apvg_tf.errors import InputError

FPS = 30.0
RES = 24


def _clip(rng, seconds):
  n = int(seconds * audio.SAMPLE_RATE)
  t = np.arange(n) / audio.SAMPLE_RATE
  waveform = (0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.2 * t))).astype(np.float32)
  frames_count = audio.num_video_frames(n, FPS)
  frames = rng.integers(0, 256, (frames_count, RES, RES, 3), dtype=np.uint8)
  keypoints = rng.random((frames_count, 67, 3)).astype(np.float32)
  return frames, keypoints, waveform


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  """A dataset of 3 train clips (one spanning several segments) and 1 test clip."""
  out = str(tmp_path_factory.mktemp("dataset"))
  rng = np.random.default_rng(0)
  clips = {}
  with data.DatasetWriter(out, instrument="cello", fps=FPS, resolution=RES, source="test",
                          command="pytest", max_segment_frames=40) as writer:
    for split, seconds in (("train", 2.0), ("train", 3.1), ("train", 1.0), ("test", 1.5)):
      clip_id = f"{split}_{len(clips)}"
      clips[clip_id] = _clip(rng, seconds)
      frames, keypoints, waveform = clips[clip_id]
      writer.add_clip(split=split, clip_id=clip_id, frames=iter(frames), keypoints=keypoints,
                      waveform=waveform)
  return out, clips


def test_write_read_round_trip(dataset):
  out, clips = dataset
  manifest = data.load_manifest(out)
  assert [c["clip_id"] for c in manifest["splits"]["train"]] == ["train_0", "train_1",
                                                                  "train_2"]
  assert manifest["command"] == "pytest" and manifest["instrument"] == "cello"
  read = list(data.read_clips(out, "train")) + list(data.read_clips(out, "test"))
  assert len(read) == 4
  for clip in read:
    frames, keypoints, waveform = clips[clip["clip_id"]]
    np.testing.assert_array_equal(clip["frames"], frames)  # PNG is lossless.
    np.testing.assert_array_equal(clip["keypoints"], keypoints)
    np.testing.assert_array_equal(clip["waveform"], waveform)
    np.testing.assert_allclose(clip["cqt"], audio.cqt(waveform), atol=1e-6)
    assert clip["fps"] == FPS
  # Normalisation statistics are those of the train split's CQT columns.
  train_cqt = np.concatenate([c["cqt"] for c in read[:3]], 1)
  np.testing.assert_allclose(manifest["cqt_mean"], train_cqt.mean(1), atol=1e-4)
  np.testing.assert_allclose(manifest["cqt_std"], np.maximum(train_cqt.std(1), 1e-2), rtol=1e-3,
                             atol=1e-4)
  # Clip train_1 (93 frames) is stored as 3 segments of at most 40 frames.
  segments = data.reader.read_segments(os.path.join(out, "shards/train/train_1.tfrecord"))
  assert [int(s["num_frames"]) for s in segments] == [40, 40, 13]


def _reference_windows(clips_by_index, manifest, batch):
  mean = np.asarray(manifest["cqt_mean"], np.float32)[:, None]
  std = np.asarray(manifest["cqt_std"], np.float32)[:, None]
  for j, (clip_index, start) in enumerate(zip(batch["clip_index"].numpy(),
                                              batch["start_frame"].numpy())):
    clip = clips_by_index[clip_index]
    t = batch["keypoints"].shape[1]
    audio_ref = audio.frame_windows((clip["cqt"] - mean) / std, FPS, t, first_frame=start)
    np.testing.assert_allclose(batch["audio"][j].numpy(), audio_ref, atol=1e-5)
    np.testing.assert_array_equal(batch["keypoints"][j].numpy(),
                                  clip["keypoints"][start:start + t])
    if "frames" in batch:
      np.testing.assert_array_equal(batch["frames"][j].numpy(), clip["frames"][start:start + t])


def test_pipeline_matches_read_clips_and_numpy_framing(dataset):
  out, _ = dataset
  manifest = data.load_manifest(out)
  clips = list(data.read_clips(out, "train"))
  ds = data.make_dataset(out, "train", window_frames=8, batch_size=3, shuffle=False,
                         repeat=False, deterministic=True, drop_remainder=False)
  batches = list(ds)
  # Windows never cross a segment: 40-frame segments give 5 windows each; a shorter one ends
  # with a window at its last frame (20 frames: starts 0, 8, 12; 13: 0, 5; 30: 0, 8, 16, 22).
  # Clips: 60 frames -> 40+20 -> 5+3; 93 -> 40+40+13 -> 5+5+2; 30 -> 4.
  assert sum(b["clip_index"].shape[0] for b in batches) == 8 + 12 + 4
  for batch in batches:
    assert batch["frames"].dtype == tf.uint8
    assert batch["audio"].shape[1:] == (8, 84, 87)
    assert set(batch) == {"frames", "audio", "keypoints", "instrument_id", "clip_index",
                          "start_frame"}
    _reference_windows(clips, manifest, batch)


def test_make_windows_same_eagerly_and_in_graph(dataset):
  out, _ = dataset
  manifest = data.load_manifest(out)
  path = os.path.join(out, "shards/train/train_1.tfrecord")
  segment = data.reader.read_segments(path)[1]
  starts = tf.constant([0, 7, 32])

  def windows(s):
    cut = data.make_windows(s, starts, window_frames=8, manifest=manifest)
    # The pipeline expands each window after the shuffle; do the same window by window.
    expanded = [data.expand_audio({k: v[i] for k, v in cut.items()}, window_frames=8,
                                  manifest=manifest) for i in range(3)]
    return {k: tf.stack([e[k] for e in expanded]) for k in expanded[0]}

  eager = windows(segment)
  graph = tf.function(windows)(dict(segment))
  in_dataset = next(iter(tf.data.TFRecordDataset(path).skip(1).map(schema.parse_segment).map(
      windows)))
  assert eager["audio"].shape == (3, 8, 84, 87)
  for key in eager:
    np.testing.assert_array_equal(eager[key].numpy(), graph[key].numpy())
    np.testing.assert_array_equal(eager[key].numpy(), in_dataset[key].numpy())
  assert eager["start_frame"].numpy().tolist() == [40, 47, 72]


def test_shuffled_pipeline_is_deterministic_per_seed_and_resizes(dataset):
  out, _ = dataset

  def first_batches(seed):
    ds = data.make_dataset(out, "train", window_frames=6, batch_size=4, seed=seed,
                           deterministic=True, resolution=12)
    return [b for _, b in zip(range(5), ds)]

  a, b, c = first_batches(1), first_batches(1), first_batches(2)
  assert a[0]["frames"].shape == (4, 6, 12, 12, 3)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["start_frame"].numpy(), y["start_frame"].numpy())
    np.testing.assert_array_equal(x["frames"].numpy(), y["frames"].numpy())
  assert any((x["start_frame"].numpy() != z["start_frame"].numpy()).any() for x, z in zip(a, c))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_frame_is_in_a_window_on_every_pass(dataset, seed):
  """Each pass over a clip covers all its frames, the first and last ones too, whatever the
  random phase of its windows (with windows at the phase only, up to stride - 1 frames at
  each end of a segment were left out of most passes)."""
  out, clips = dataset
  manifest = data.load_manifest(out)
  lengths = [len(clips[c["clip_id"]][1]) for c in manifest["splits"]["train"]]
  ds = data.make_dataset(out, "train", window_frames=8, batch_size=1, seed=seed, repeat=False,
                         deterministic=True, drop_remainder=False, fields=("keypoints",))
  covered = [np.zeros(n, bool) for n in lengths]
  phases = set()
  for batch in ds:
    clip, start = int(batch["clip_index"][0]), int(batch["start_frame"][0])
    covered[clip][start:start + 8] = True
    phases.add(start % 8)
  assert all(c.all() for c in covered), [np.flatnonzero(~c).tolist() for c in covered]
  assert phases - {0}  # Some windows did start at a random phase.


def test_keypoint_only_pipeline_skips_frames(dataset):
  out, _ = dataset
  batch = next(iter(data.make_dataset(out, "train", window_frames=8, batch_size=2,
                                      fields=("audio", "keypoints"))))
  assert "frames" not in batch and batch["audio"].shape == (2, 8, 84, 87)


@pytest.mark.parametrize("pipelines", [2, 4])
def test_input_context_sharding(dataset, pipelines):
  out, _ = dataset
  seen = []
  for i in range(pipelines):
    ctx = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=i,
                                     num_replicas_in_sync=pipelines)
    ds = data.make_dataset(out, "train", window_frames=8, batch_size=2 * pipelines,
                           shuffle=False, repeat=False, deterministic=True, input_context=ctx,
                           drop_remainder=False)
    keys = [(int(c), int(s)) for b in ds for c, s in zip(b["clip_index"], b["start_frame"])]
    assert all(b["clip_index"].shape[0] <= 2 for b in ds)  # Per-replica batch.
    seen.append(set(keys))
  union = set().union(*seen)
  assert sum(len(s) for s in seen) == len(union) == 24  # Disjoint, and nothing lost.


# --------------------------------------------------------------------------- framing


# Frame t exists when it starts inside the audio (t / fps < duration): at 29.97 fps frame
# 17982 starts at 599.9994 s, so 600 s hold 17983 frames.
@pytest.mark.parametrize("fps,expected", [(25.0, 15000), (30000 / 1001, 17983), (30.0, 18000)])
def test_frame_counts_and_no_drift_over_ten_minutes(fps, expected):
  n = 10 * 60 * audio.SAMPLE_RATE
  frames = audio.num_video_frames(n, fps)
  assert frames == expected
  columns = framing.num_cqt_columns(n)
  centers = audio.window_centers(np.arange(frames), fps)
  # Exact rational arithmetic: the centre of frame t is round(t * sr / (fps * hop)).
  exact_fps = fractions.Fraction(30000, 1001) if abs(fps - 30000 / 1001) < 1e-9 else \
      fractions.Fraction(fps)
  for t in (0, 1, frames // 2, frames - 2, frames - 1):
    exact = fractions.Fraction(t) * audio.SAMPLE_RATE / (exact_fps * audio.HOP_LENGTH)
    assert centers[t] == int(exact + fractions.Fraction(1, 2))
  assert centers[-1] < columns  # The last frame's window is centred inside the audio.
  # The TF twin gives the same centres.
  np.testing.assert_array_equal(audio.window_centers_tf(np.arange(frames), fps).numpy(), centers)
  # Windows: TF and NumPy agree everywhere, including the zero padding at both ends.
  cqt = np.random.default_rng(1).standard_normal((2, columns)).astype(np.float32)
  ref = audio.frame_windows(cqt, fps, frames)
  got = audio.frame_windows_tf(cqt.T, fps, np.arange(frames)).numpy()
  np.testing.assert_array_equal(got, ref)
  assert ref.shape == (frames, 2, 87)
  assert not ref[0, :, :43].any() and ref[0, :, 43:].all()
  np.testing.assert_array_equal(ref[frames // 2, :, 43], cqt[:, centers[frames // 2]])


def test_streamed_windows_wholly_past_the_song_are_padding():
  # A streamed chunk of lookahead positions past the song's end gets no columns at all
  # (generation.py's last chunk with a KP lookahead): its windows are all padding.
  fps, columns = 30.0, 1200
  cqt = np.random.default_rng(2).standard_normal((columns, 3)).astype(np.float32)
  pad = np.array([5.0, 6.0, 7.0], np.float32)
  past = np.arange(300, 304)  # Frames whose windows begin after column 1200 (1680 on).
  empty = audio.frame_windows_tf(np.zeros((0, 3), np.float32), fps, past, column_offset=1300,
                                 total_columns=columns, pad_value=pad).numpy()
  np.testing.assert_array_equal(empty, np.broadcast_to(pad[None, :, None], (4, 3, 87)))
  # With the columns present, the same frames are padding too, and a straddling one is not.
  full = audio.frame_windows_tf(cqt, fps, np.array([60, 300]), pad_value=pad).numpy()
  np.testing.assert_array_equal(full[1], empty[0])
  np.testing.assert_array_equal(full[0, :, 43], cqt[audio.window_centers(np.array([60]), fps)[0]])


# --------------------------------------------------------------------------- bad input


def test_missing_or_incomplete_dataset(tmp_path):
  with pytest.raises(InputError, match="does not exist"):
    data.load_manifest(tmp_path / "nope")
  with pytest.raises(InputError, match="no manifest.json"):
    data.load_manifest(tmp_path)
  with pytest.raises(InputError, match="no manifest.json"):
    next(data.read_clips(tmp_path, "train"))


def test_crash_while_writing_leaves_nothing_that_reads_complete(tmp_path):
  frames, keypoints, waveform = _clip(np.random.default_rng(2), 1.0)
  with pytest.raises(RuntimeError):
    with data.DatasetWriter(tmp_path, instrument="cello", fps=FPS, resolution=RES,
                            source="test", command="x") as writer:
      writer.add_clip(split="train", clip_id="a", frames=frames, keypoints=keypoints,
                      waveform=waveform)

      def dying_frames():
        yield frames[0]
        raise RuntimeError("killed")

      writer.add_clip(split="train", clip_id="b", frames=dying_frames(), keypoints=keypoints,
                      waveform=waveform)
  assert not os.path.exists(tmp_path / "manifest.json")
  leftovers = [f for _, _, fs in os.walk(tmp_path) for f in fs if ".tmp" in f]
  assert not leftovers
  with pytest.raises(InputError, match="did not finish"):
    data.load_manifest(tmp_path)


def test_bad_clips_raise_input_error(tmp_path):
  frames, keypoints, waveform = _clip(np.random.default_rng(3), 1.0)
  with pytest.raises(InputError, match="unknown instrument 'kazoo'"):
    data.DatasetWriter(tmp_path, instrument="kazoo", fps=FPS, resolution=RES, source="t",
                       command="x")
  with data.DatasetWriter(tmp_path, instrument="vc", fps=FPS, resolution=RES, source="t",
                          command="x") as writer:
    bad = waveform.copy()
    bad[10] = np.nan
    with pytest.raises(InputError, match="NaN"):
      writer.add_clip(split="train", clip_id="nan", frames=frames, keypoints=keypoints,
                      waveform=bad)
    with pytest.raises(InputError, match="keypoints have shape"):
      writer.add_clip(split="train", clip_id="short", frames=frames, keypoints=keypoints[:-1],
                      waveform=waveform)
    with pytest.raises(InputError, match="fewer frames"):
      writer.add_clip(split="train", clip_id="few", frames=frames[:-1], keypoints=keypoints,
                      waveform=waveform)
    writer.add_clip(split="train", clip_id="ok", frames=frames, keypoints=keypoints,
                    waveform=waveform)
  manifest = data.load_manifest(tmp_path)
  assert manifest["instrument"] == "cello"  # URMP's abbreviation "vc" was accepted.
  with pytest.raises(InputError, match="has no clips"):
    data.make_dataset(tmp_path, "test", window_frames=4, batch_size=1)
  with pytest.raises(InputError, match="no split 'dev'"):
    data.make_dataset(tmp_path, "dev", window_frames=4, batch_size=1)
  with pytest.raises(InputError, match="lower the window length"):
    data.make_dataset(tmp_path, "train", window_frames=1000, batch_size=1)
  os.remove(tmp_path / "shards/train/ok.tfrecord")
  with pytest.raises(InputError, match="missing"):
    data.load_manifest(tmp_path)


def test_failed_json_write_leaves_no_file(tmp_path):
  path = tmp_path / "manifest.json"
  with pytest.raises(TypeError):
    data.manifest.write_json_atomic(str(path), {"bad": object()})
  assert os.listdir(tmp_path) == []
