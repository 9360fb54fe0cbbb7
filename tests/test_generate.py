"""Tests of export (SavedModel, ONNX), streaming generation and generate.py's bad inputs."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from apvg_tf import audio, data, export_run, generation, runtime, serving_module, streaming
from apvg_tf.errors import InputError
from apvg_tf.training import stages
from conftest import ROOT
from configs import default

CHUNK = 4  # Frames per step: the ONNX graph unrolls this many, so keep it small here.


@pytest.fixture(scope="module")
def exported(trained_pipeline, tmp_path_factory):
  """The debug run of the three stages (conftest), exported as SavedModel + ONNX."""
  workdir, config, _ = trained_pipeline
  out = str(tmp_path_factory.mktemp("export") / "model")
  meta = export_run.export_run(config, workdir, out, onnx=True, chunk_frames=CHUNK)
  task, _ = stages.restore(config, workdir, "stu")
  return out, meta, task.generator(), config


def _fresh_windows(frames=CHUNK):
  """Raw windows and noise of `frames` stream positions: [1, frames, 84, 87], [1, frames, 4]."""
  rng = np.random.default_rng()  # Fresh audio each run, as the parity requirement asks.
  wave = (0.2 * rng.standard_normal(audio.SAMPLE_RATE)).astype(np.float32)
  windows = audio.frame_windows(audio.cqt(wave), 30.0, frames)
  return windows[None], rng.standard_normal((1, frames, 4)).astype(np.float32)


def test_saved_model_has_the_contract_signatures(exported, tmp_path):
  out, meta, _, _ = exported
  loaded = tf.saved_model.load(out)
  assert set(loaded.signatures) == {"generate", "step", "initial_state"}
  wave = tf.constant(np.random.default_rng(0).standard_normal(22050).astype(np.float32) * 0.1)
  result = loaded.signatures["generate"](waveform=wave)
  frames = audio.num_video_frames(22050, meta["fps"])
  assert result["frames"].dtype == tf.uint8
  assert result["frames"].shape == (frames, 64, 64, 3)
  assert result["keypoints"].shape == (frames, 67, 2)
  assert meta["state_names"] == ["kp_h", "kp_c", "cvg_h", "cvg_c", "cvg_frame", "stu_g",
                                 "lag_audio", "lag_coarse", "position"]  # Lookahead 2.
  assert meta["format_version"] == 2 and meta["state"]["lag_audio"] == [1, 2, 84, 87]
  cli = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show",
                        "--dir", out, "--tag_set", "serve", "--signature_def", "step"],
                       capture_output=True, text=True, check=False)
  assert cli.returncode == 0, cli.stderr[-1000:]
  assert "next_stu_g" in cli.stdout and "windows" in cli.stdout
  # What TensorFlow Serving would run: `generate` through saved_model_cli, on a waveform file.
  np.save(tmp_path / "wave.npy", wave.numpy())
  cli = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "run",
                        "--dir", out, "--tag_set", "serve", "--signature_def", "generate",
                        "--inputs", f"waveform={tmp_path / 'wave.npy'}",
                        "--outdir", str(tmp_path / "served")],
                       capture_output=True, text=True, check=False)
  assert cli.returncode == 0, cli.stderr[-1000:]
  served = np.load(tmp_path / "served" / "frames.npy")
  assert served.dtype == np.uint8 and served.shape == (frames, 64, 64, 3)
  assert np.load(tmp_path / "served" / "keypoints.npy").shape == (frames, 67, 2)


def test_saved_model_equals_the_in_memory_model(exported):
  out, _, generator, config = exported
  runner = runtime.SavedModelRunner(out)
  windows, noise = _fresh_windows()
  module = serving_module.ServingModule(generator, data.load_manifest(config.dataset_dir),
                                        chunk_frames=CHUNK)
  state = runner.initial_state()
  expected = module.step(tf.constant(windows), tf.constant(noise),
                         *[tf.constant(state[k]) for k in runner.state_names])
  got, new_state = runner.step(windows, noise, state)
  np.testing.assert_array_equal(got["frames"], expected["frames"].numpy())
  np.testing.assert_array_equal(got["keypoints"], expected["keypoints"].numpy())
  for k in runner.state_names:
    np.testing.assert_array_equal(new_state[k], expected["next_" + k].numpy())


def _assert_onnx_agrees_with_saved_model(out):
  saved, onnx = (runtime.load_runner(out), runtime.load_runner(os.path.join(out, "model.onnx")))
  state_a, state_b = saved.initial_state(), onnx.initial_state()
  for _ in range(2):  # Two chunks: the state carried through ONNX as well.
    windows, noise = _fresh_windows()
    a, state_a = saved.step(windows, noise, state_a)
    b, state_b = onnx.step(windows, noise, state_b)
    assert a["frames"].min() >= 0 and a["frames"].max() <= 1
    np.testing.assert_allclose(b["frames"], a["frames"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(b["keypoints"], a["keypoints"], atol=1e-4, rtol=0)
  # A short last chunk is padded to the graph's fixed length and cropped.
  windows, noise = _fresh_windows(frames=CHUNK - 1)
  a, _ = saved.step(windows, noise, state_a)
  b, _ = onnx.step(windows, noise, state_b)
  assert b["frames"].shape[1] == CHUNK - 1
  np.testing.assert_allclose(b["frames"], a["frames"], atol=1e-4, rtol=0)


def test_exported_generation_pads_the_music_as_training_does(exported, tmp_path):
  """The first and last frames' windows reach past the song: `generate` and generate.py
  must see there what training saw (zeros after normalisation), so their keypoints are the
  evaluation's (`streaming.predict_keypoints` on the normalised clip windows) on every frame."""
  out, meta, generator, config = exported
  wave = (0.2 * np.random.default_rng(5).standard_normal(audio.SAMPLE_RATE // 2)).astype(
      np.float32)
  fps = meta["fps"]
  frames = audio.num_video_frames(len(wave), fps)
  normalized = data.normalize_cqt(audio.cqt(wave).T, data.load_manifest(config.dataset_dir))
  windows = audio.frame_windows(normalized.numpy().T, fps, frames + generator.lookahead)
  expected = streaming.predict_keypoints(generator.kp, windows, CHUNK)
  assert generator.lookahead == meta["lookahead_frames"] == 2  # conftest's pipeline.
  served = tf.saved_model.load(out).signatures["generate"](waveform=tf.constant(wave))
  np.testing.assert_allclose(served["keypoints"].numpy(), expected, atol=2e-4, rtol=0)
  track = tmp_path / "track.json"
  generation.generate_video(runtime.load_runner(out), wave, str(tmp_path / "v.mp4"),
                            keypoints_json=str(track), progress=False)
  with open(track) as f:
    np.testing.assert_allclose(np.asarray(json.load(f)["keypoints"]), expected, atol=2e-4,
                               rtol=0)


def test_onnx_runtime_agrees_with_the_saved_model(exported):
  _assert_onnx_agrees_with_saved_model(exported[0])


def test_onnx_from_an_export_alone(exported, tmp_path):
  """export.py --from_model: an export without its work directory gets its ONNX step."""
  out, _, _, config = exported
  model = str(tmp_path / "model")
  shutil.copytree(out, model, ignore=shutil.ignore_patterns("model.onnx"))
  os.rename(config.dataset_dir, config.dataset_dir + ".away")  # Not needed: prove it.
  try:
    result = subprocess.run([sys.executable, os.path.join(ROOT, "export.py"),
                             f"--from_model={model}"], capture_output=True, text=True, cwd=ROOT,
                            check=False)
  finally:
    os.rename(config.dataset_dir + ".away", config.dataset_dir)
  assert result.returncode == 0, result.stderr[-2000:]
  _assert_onnx_agrees_with_saved_model(model)
  # Other CQT statistics (constants of the graph, not variables) are caught.
  with open(os.path.join(model, "apvg_model.json")) as f:
    meta = json.load(f)
  meta["cqt_mean"] = [m + 0.5 for m in meta["cqt_mean"]]
  with open(os.path.join(model, "apvg_model.json"), "w") as f:
    json.dump(meta, f)
  with pytest.raises(InputError, match="differ from its SavedModel"):
    serving_module.module_from_export(model, default.get_config())


def _probe(path):
  from apvg_tf import video_io  # pylint: disable=g-import-not-at-top
  return subprocess.run([video_io.ffmpeg_exe(), "-hide_banner", "-i", path],
                        capture_output=True, text=True, check=False).stderr


def _run(*args):
  return subprocess.run([sys.executable, os.path.join(ROOT, "generate.py"), *args],
                        capture_output=True, text=True, cwd=ROOT, check=False)


def test_generate_writes_the_music_video_and_the_keypoint_track(exported, tmp_path):
  out, meta, _, _ = exported
  song = str(tmp_path / "song.wav")
  seconds = 1.5
  t = np.arange(int(seconds * 44100)) / 44100
  soundfile.write(song, 0.3 * np.sin(2 * np.pi * 220 * t), 44100)
  video, track = str(tmp_path / "out.mp4"), str(tmp_path / "kp.json")
  result = _run(f"--model={out}", f"--audio={song}", f"--out={video}",
                f"--keypoints_json={track}", f"--skeleton_video={tmp_path / 'skel.mp4'}")
  assert result.returncode == 0, result.stderr[-2000:]
  probe = _probe(video)
  assert "Video: h264" in probe and "Audio: aac" in probe
  with open(track) as f:
    keypoints = np.asarray(json.load(f)["keypoints"])
  frames = audio.num_video_frames(len(t), meta["fps"])
  assert keypoints.shape == (frames, 67, 2)
  duration = [line for line in probe.splitlines() if "Duration" in line][0]
  hours, minutes, secs = duration.split("Duration:")[1].split(",")[0].strip().split(":")
  assert abs(float(secs) + 60 * float(minutes) - seconds) <= 1.0 / meta["fps"] + 0.03
  assert os.path.getsize(tmp_path / "skel.mp4") > 0
  assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # No temporary files.


@pytest.mark.parametrize("rate,channels,seconds", [(8000, 1, 0.5), (96000, 2, 0.5),
                                                    (44100, 1, 10.0)])
def test_valid_audio_of_any_rate_and_silence_gives_a_video(exported, tmp_path, rate, channels,
                                                           seconds):
  out, meta, _, _ = exported
  path = str(tmp_path / "in.wav")
  samples = np.zeros((int(rate * seconds), channels), np.float32)  # Silence: at rest.
  if seconds < 1:
    samples += 0.1 * np.sin(np.arange(len(samples)) / rate * 2 * np.pi * 440)[:, None]
  soundfile.write(path, samples, rate)
  waveform = audio.load_waveform(path)
  video = str(tmp_path / "out.mp4")
  result = generation.generate_video(runtime.load_runner(out), waveform, video,
                                     progress=False)
  assert result["frames"] == audio.num_video_frames(int(44100 * seconds), meta["fps"])
  assert "Audio: aac" in _probe(video)


def _write_bad(tmp_path, kind):
  path = str(tmp_path / "in.wav")
  if kind == "text":
    with open(path, "w") as f:
      f.write("this is not audio\n")
  elif kind == "truncated":
    soundfile.write(path, np.zeros(44100, np.float32), 44100)
    with open(path, "rb") as f:
      head = f.read(30)
    with open(path, "wb") as f:
      f.write(head)
  elif kind == "empty":
    soundfile.write(path, np.zeros(0, np.float32), 44100)
  else:
    path = str(tmp_path / "missing.wav")
  return path


@pytest.mark.parametrize("kind", ["missing", "text", "truncated", "empty", "out_folder",
                                  "model"])
def test_bad_input_exits_2_with_one_line_and_no_output(exported, tmp_path, kind):
  out, _, _, _ = exported
  good = str(tmp_path / "good.wav")
  soundfile.write(good, 0.1 * np.ones(4410, np.float32), 44100)
  song = good if kind in ("out_folder", "model") else _write_bad(tmp_path, kind)
  video = str(tmp_path / ("missing_folder" if kind == "out_folder" else "") / "out.mp4")
  model = str(tmp_path) if kind == "model" else out
  result = _run(f"--model={model}", f"--audio={song}", f"--out={video}")
  assert result.returncode == 2, (kind, result.stderr[-2000:])
  lines = [l for l in result.stderr.strip().splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
  assert not os.path.exists(video)
  assert not [n for n in os.listdir(tmp_path) if n.endswith(".mp4") or n.startswith(".")]


def _one_pass(generator, normalized, noise):
  """The pipeline over a whole clip in one call of each stage: what streaming must equal.

  The KP hears every window and its output p is the pose of frame p - D; the CVG rolls out
  from its stored first frame over the N frames; the STU draws them.
  """
  d = generator.lookahead
  n = len(normalized) - d
  keypoints = generator.kp(normalized[None])[:, d:]
  coarse = generator.cvg(normalized[None, :n], noise=noise[None, :n])
  frames = generator.stu({"audio": normalized[None, :n], "keypoints": keypoints,
                          "heatmaps": generator.heatmaps(keypoints), "coarse": coarse})
  return frames.numpy()[0], keypoints.numpy()[0]


def _clip_windows(config, frames, lookahead, seed=0):
  """Raw and normalised windows of `frames` + `lookahead` positions of random music."""
  manifest = data.load_manifest(config.dataset_dir)
  rng = np.random.default_rng(seed)
  raw = rng.normal(-4.0, 1.0, (frames + lookahead, audio.N_BINS, audio.WINDOW_COLUMNS))
  raw = raw.astype(np.float32)
  normalized = audio.normalize_cqt(raw, manifest["cqt_mean"], manifest["cqt_std"],
                                   bins_axis=-2).numpy()
  return raw, normalized


@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_streaming_equals_one_pass_whatever_the_chunk(exported, chunk):
  """Evaluation's stream (the one loop, lookahead kept in the step's state) gives the frames
  and keypoints of one pass over the clip, for chunks shorter and longer than the lag."""
  _, _, generator, config = exported
  frames = 11
  _, normalized = _clip_windows(config, frames, generator.lookahead)
  noise = np.random.default_rng(3).standard_normal(
      (len(normalized), generator.z_dim)).astype(np.float32)
  expected_frames, expected_keypoints = _one_pass(generator, normalized, noise)
  got = streaming.generate_performance(generator, normalized, chunk, seed=3)
  assert got["frames"].shape == (frames, 64, 64, 3) and got["keypoints"].shape == (frames, 67, 2)
  np.testing.assert_allclose(got["keypoints"], expected_keypoints, atol=1e-5, rtol=0)
  assert np.abs(got["frames"].astype(int) -
                np.round(expected_frames * 255).astype(int)).max() <= 1


def test_exported_runtimes_stream_the_evaluation_frames(exported):
  """generate.py's runners (SavedModel `step`, ONNX) through the same loop give the frames
  and keypoints that evaluation computes in memory, and the SavedModel's `generate` the
  keypoints."""
  out, meta, generator, config = exported
  frames, d = 9, generator.lookahead
  raw, normalized = _clip_windows(config, frames, d, seed=1)
  expected = streaming.generate_performance(generator, normalized, CHUNK, seed=4)
  noise = np.random.default_rng(4).standard_normal((frames + d, meta["z_dim"]))
  for name, tolerance in (("", 1e-5), ("model.onnx", 1e-4)):
    runner = runtime.load_runner(os.path.join(out, name) if name else out)
    got = streaming.stream_all(lambda w, n, s, k, r=runner: r.step(w, n, s),
                               runner.initial_state(), raw, frames, lookahead=d,
                               chunk_frames=CHUNK, noise=noise.astype(np.float32))
    np.testing.assert_allclose(got["keypoints"], expected["keypoints"], atol=tolerance, rtol=0)
    assert np.abs(streaming.to_uint8(got["frames"]).astype(int) -
                  expected["frames"].astype(int)).max() <= 1, name


def test_the_stream_drops_the_lag_and_covers_every_frame():
  """A step that returns its positions: the loop hands out frames 0 .. N - 1 in order."""
  def step(windows, noise, state, keypoints):
    del noise, keypoints
    positions = windows[..., 0, 0]
    return {"position": positions}, state + positions.shape[1]

  windows = np.arange(13, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
  for chunk in (1, 2, 5, 13, None):
    got = list(streaming.stream(step, 0, windows, 10, lookahead=3, chunk_frames=chunk))
    firsts = [first for first, _, _ in got]
    values = np.concatenate([o["position"][0] for _, o, _ in got])
    np.testing.assert_array_equal(values, np.arange(3, 13))  # Frame f is position f + 3.
    assert firsts[0] == 0 and got[-1][2] == 13


def test_format_1_exports_are_read_when_their_step_is_the_same(tmp_path):
  """The first exports (format 1, no lookahead, like the demo's first export) stream as they
  are; one whose step took extra lookahead windows is refused with what to do."""
  old = tmp_path / "old"
  shutil.copytree(os.path.join(ROOT, "saved_models", "demo_cello"), old)
  with open(old / "apvg_model.json") as f:
    meta = json.load(f)
  assert meta["format_version"] == 2 and meta["lookahead_frames"] == 0  # The shipped demo.
  for key in ("format_version", "cqt_std"):
    del meta[key]
  with open(old / "apvg_model.json", "w") as f:
    json.dump(meta, f)
  runner = runtime.load_runner(str(old))
  windows, _ = _fresh_windows()
  outputs, _ = runner.step(windows, np.zeros((1, CHUNK, meta["z_dim"]), np.float32),
                           runner.initial_state())
  assert outputs["frames"].shape == (1, CHUNK, 128, 128, 3)
  meta["lookahead_frames"] = 3
  with open(old / "apvg_model.json", "w") as f:
    json.dump(meta, f)
  with pytest.raises(InputError, match="--from_model=.*--out="):
    runtime.load_runner(str(old))
