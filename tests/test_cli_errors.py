"""The command-line programs as a user meets them: a quiet start, and bad input as one line.

Every program runs in a subprocess with the environment of a user's shell (no
TF_CPP_MIN_LOG_LEVEL or TF_USE_LEGACY_KERAS: apvg_tf sets them), so stderr is what the user
reads. A user error is one line `error: ...` and exit status 2, with no output left behind.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import soundfile
from onnx import helper, numpy_helper

from apvg_tf import runtime
from apvg_tf.training import trainer
from apvg_tf.errors import InputError
from conftest import ROOT, debug_config

DEMO = os.path.join(ROOT, "saved_models", "demo_cello")
DATA = os.path.join("variables", "variables.data-00000-of-00001")

# What TensorFlow 2.17 prints at import when its CUDA plugins register a second time.
REGISTRATION_NOISE = ("Unable to register", "factory for plugin", "cuda_dnn.cc", "cuda_fft.cc",
                      "cuda_blas.cc", "computation placer already registered")


def _user_env():
  return {k: v for k, v in os.environ.items()
          if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_USE_LEGACY_KERAS")}


def _python(*args):
  return subprocess.run([sys.executable, *args], cwd=ROOT, env=_user_env(), capture_output=True,
                        text=True, timeout=600, check=False)


def _assert_one_error_line(result, *, contains=()):
  assert result.returncode == 2, result.stderr[-3000:]
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  for text in contains:
    assert text in lines[0], lines[0]


def _assert_nothing_written(folder):
  left = [n for n in os.listdir(folder) if n.endswith(".mp4") or n.startswith(".")]
  assert not left, left


@pytest.fixture
def song(tmp_path):
  """One second of a 220 Hz tone, 44.1 kHz mono."""
  path = str(tmp_path / "song.wav")
  t = np.arange(44100) / 44100
  soundfile.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44100)
  return path


def test_generate_starts_without_cuda_factory_lines():
  result = _python("generate.py", "--helpfull")
  assert "--seed" in result.stdout, result.stderr[-3000:]  # (absl's help exits with 1.)
  noise = [l for l in result.stderr.splitlines() if any(n in l for n in REGISTRATION_NOISE)]
  assert not noise, noise


def test_tensorflow_errors_after_the_import_still_reach_stderr():
  """Only the import's registration lines are dropped: a C++ ERROR later in the run shows
  (TF_CPP_MIN_LOG_LEVEL=3 would have hidden it for the whole process)."""
  result = _python("-c", "import ctypes, os, sys\n"
                   "import apvg_tf, tensorflow as tf\n"
                   "lib = os.path.join(tf.sysconfig.get_lib(), 'libtensorflow_framework.so.2')\n"
                   "if not os.path.exists(lib):\n"
                   "  sys.exit(77)\n"
                   "ctypes.CDLL(lib).TF_Log(ctypes.c_int(2), b'a real error from C++')\n")
  if result.returncode == 77:
    pytest.skip("no libtensorflow_framework.so.2 (not Linux)")
  assert result.returncode == 0, result.stderr[-3000:]
  noise = [l for l in result.stderr.splitlines() if any(n in l for n in REGISTRATION_NOISE)]
  assert not noise, noise
  assert "a real error from C++" in result.stderr


def test_negative_seed_is_one_error_line(song, tmp_path):
  video = str(tmp_path / "out.mp4")
  result = _python("generate.py", f"--audio={song}", f"--out={video}", "--seed=-5")
  _assert_one_error_line(result, contains=("--seed=-5",))
  _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("seed", [-5, 2**32])
def test_training_seed_out_of_range_is_an_input_error_before_any_work(seed, tmp_path):
  config = debug_config(str(tmp_path / "no_dataset"), seed=seed)
  with pytest.raises(InputError, match=r"--config.seed=.*integer from 0 to 4294967295"):
    trainer.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def _damage(model, kind):
  """Damages a copy of the demo export in place, as a cut-short copy or a bad disk would."""
  if kind == "truncated_variables":
    path = os.path.join(model, DATA)
    os.truncate(path, os.path.getsize(path) // 2)
  elif kind == "empty_variables":
    os.truncate(os.path.join(model, DATA), 0)
  elif kind == "missing_index":
    os.remove(os.path.join(model, "variables", "variables.index"))
  elif kind == "corrupt_saved_model_pb":
    path = os.path.join(model, "saved_model.pb")
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 3)
      f.seek(100)
      f.write(b"\xff" * 64)
  else:
    raise ValueError(kind)


def test_damaged_saved_model_is_one_error_line(song, tmp_path):
  """generate.py end to end on the damage that used to end in a traceback."""
  model = str(tmp_path / "model")
  shutil.copytree(DEMO, model)
  _damage(model, "truncated_variables")
  video = str(tmp_path / "out.mp4")
  result = _python("generate.py", f"--model={model}", f"--audio={song}", f"--out={video}")
  _assert_one_error_line(
      result, contains=("is damaged", "variables.data-00000-of-00001 is truncated",
                        "export it again"))
  _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("kind,what", [
    ("empty_variables", "variables.data-00000-of-00001 is empty"),
    ("missing_index", "variables.index is missing"),
    ("corrupt_saved_model_pb", "saved_model.pb"),
])
def test_damaged_saved_model_is_an_input_error_naming_the_damage(tmp_path, kind, what):
  """The other damages, in-process (the CLI turns any InputError into one line, as above)."""
  model = str(tmp_path / "model")
  shutil.copytree(DEMO, model)
  _damage(model, kind)
  with pytest.raises(InputError, match="is damaged") as error:
    runtime.SavedModelRunner(model)
  assert what in str(error.value) and "export it again" in str(error.value)


def test_truncated_onnx_model_is_one_error_line(song, tmp_path):
  """A model.onnx cut in half, beside the demo's apvg_model.json (the runner reads both)."""
  folder = tmp_path / "model"
  folder.mkdir()
  shutil.copy(os.path.join(DEMO, "apvg_model.json"), folder)
  weights = numpy_helper.from_array(np.ones((256, 256), np.float32), "weights")
  graph = helper.make_graph(
      [helper.make_node("MatMul", ["noise", "weights"], ["frames"])], "step",
      [helper.make_tensor_value_info("noise", onnx.TensorProto.FLOAT, [1, 256])],
      [helper.make_tensor_value_info("frames", onnx.TensorProto.FLOAT, [1, 256])], [weights])
  path = str(folder / "model.onnx")
  onnx.save(helper.make_model(graph), path)
  os.truncate(path, os.path.getsize(path) // 2)
  video = str(tmp_path / "out.mp4")
  result = _python("generate.py", f"--model={path}", f"--audio={song}", f"--out={video}")
  _assert_one_error_line(result, contains=("export it again",))
  _assert_nothing_written(tmp_path)
