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

from apvg_tf import audio, data, generation, serving
from apvg_tf.errors import InputError
from apvg_tf.evaluation import khp_eval
from apvg_tf.training import trainer
from conftest import ROOT

CHUNK = 4  # Frames per step: the ONNX graph unrolls this many, so keep it small here.


@pytest.fixture(scope="module")
def exported(trained_pipeline, tmp_path_factory):
  """The debug run of the three stages (conftest), exported as SavedModel + ONNX."""
  workdir, config, _ = trained_pipeline
  out = str(tmp_path_factory.mktemp("export") / "model")
  meta = serving.export_run(config, workdir, out, onnx=True, chunk_frames=CHUNK)
  task, _ = trainer.restore(config, workdir, "stu")
  return out, meta, task.generator(), config


def _fresh_windows(frames=CHUNK):
  """Windows of `frames` frames and of the pipeline KP's lookahead (conftest: 2) after them."""
  rng = np.random.default_rng()  # Fresh audio each run, as the parity requirement asks.
  wave = (0.2 * rng.standard_normal(audio.SAMPLE_RATE)).astype(np.float32)
  windows = audio.frame_windows(audio.cqt(wave), 30.0, frames + 2)
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
  assert meta["state_names"] == ["kp_h", "kp_c", "cvg_h", "cvg_c", "cvg_frame", "stu_g"]
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
  runner = generation.SavedModelRunner(out)
  windows, noise = _fresh_windows()
  module = serving.ServingModule(generator, data.load_manifest(config.dataset_dir),
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
  saved, onnx = (generation.load_runner(out),
                 generation.load_runner(os.path.join(out, "model.onnx")))
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
  evaluation's (`predict_clip` on the normalised clip windows) on every frame."""
  out, meta, generator, config = exported
  wave = (0.2 * np.random.default_rng(5).standard_normal(audio.SAMPLE_RATE // 2)).astype(
      np.float32)
  fps = meta["fps"]
  frames = audio.num_video_frames(len(wave), fps)
  normalized = data.normalize_cqt(audio.cqt(wave).T, data.load_manifest(config.dataset_dir))
  windows = audio.frame_windows(normalized.numpy().T, fps, frames + generator.lookahead)
  expected = khp_eval.predict_clip(generator.kp, windows, CHUNK)
  assert generator.lookahead == meta["lookahead_frames"] == 2  # conftest's pipeline.
  served = tf.saved_model.load(out).signatures["generate"](waveform=tf.constant(wave))
  np.testing.assert_allclose(served["keypoints"].numpy(), expected, atol=2e-4, rtol=0)
  track = tmp_path / "track.json"
  generation.generate_video(generation.load_runner(out), wave, str(tmp_path / "v.mp4"),
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
  result = subprocess.run([sys.executable, os.path.join(ROOT, "export.py"),
                           f"--from_model={model}"], capture_output=True, text=True, cwd=ROOT,
                          check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  _assert_onnx_agrees_with_saved_model(model)
  # Another dataset's CQT statistics (constants of the graph, not variables) are caught.
  other = str(tmp_path / "other")
  shutil.copytree(config.dataset_dir, other)
  with open(os.path.join(other, "manifest.json")) as f:
    manifest = json.load(f)
  manifest["cqt_mean"] = [m + 0.5 for m in manifest["cqt_mean"]]
  with open(os.path.join(other, "manifest.json"), "w") as f:
    json.dump(manifest, f)
  with pytest.raises(InputError, match="differ from its SavedModel"):
    serving.module_from_export(model, dataset_dir=other)


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
  result = generation.generate_video(generation.load_runner(out), waveform, video,
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
