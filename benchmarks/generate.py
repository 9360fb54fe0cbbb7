"""Benchmark: end-to-end generation frames/s (TF, SavedModel, ONNX Runtime) and peak memory.

  python benchmarks/generate.py [--model=saved_models/demo_cello] [--seconds=20]
      [--config=configs/synth_cello.py --workdir=RUN] [--memory_minutes=1,10]

End to end = from the decoded waveform to the finished mp4 with the music: streaming CQT,
framing, the model's step, H.264 encoding (apvg_tf.generation.generate_video), on the same
`--seconds` of music for each runtime:
  tf           the in-memory models (tf.function of PerformanceGenerator.step): the trained
               run of --config and --workdir, else rebuilt from the export's own config
               and variables (serving_module.module_from_export)
  saved_model  the exported SavedModel's `step` signature
  onnx         model.onnx beside it, in ONNX Runtime (CPU)
Peak memory: generate.py on 1 and 10 minutes of music in a fresh process each, with the
faster exported runtime; the high-water mark of that process's resident size (VmHWM).
"""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apvg_tf  # noqa: F401  pylint: disable=g-bad-import-order,unused-import
from absl import app, flags
from ml_collections import config_flags
import numpy as np
import soundfile
import tensorflow as tf

from apvg_tf import data, export_format, generation, runtime, serving_module
from apvg_tf.training import stages
from benchmarks import common
from configs import default

_OUT = flags.DEFINE_string("out", "outputs/benchmarks", "Folder for the JSON results.")
_MODEL = flags.DEFINE_string("model", "saved_models/demo_cello", "Exported model folder.")
_SECONDS = flags.DEFINE_float("seconds", 20.0, "Seconds of music per speed measurement.")
_CONFIG = flags.DEFINE_string("config", None, "Config of the run (for the in-memory tf row).")
_WORKDIR = flags.DEFINE_string("workdir", None, "The run (for the in-memory tf row).")
_MEMORY = flags.DEFINE_list("memory_minutes", ["1", "10"],
                            "Minutes of music for the peak-memory runs (empty: skip).")


class _InMemoryRunner:
  """The trained models in memory, through the ServingModule's step (no export)."""

  def __init__(self, metadata, config_path=None, workdir=None, model_dir=None):
    if workdir:
      config = config_flags.config_flags._LoadConfigModule(  # pylint: disable=protected-access
          "config", config_path).get_config()
      task, _ = stages.restore(config, workdir, "stu")
      self.module = serving_module.ServingModule(task.generator(),
                                                 data.load_manifest(config.dataset_dir),
                                                 chunk_frames=metadata["chunk_frames"])
    else:  # The export alone: no dataset, no training code.
      self.module = serving_module.module_from_export(model_dir, default.get_config())
    self.metadata = metadata
    self.state_names = self.module.state_names

  def initial_state(self):
    state = self.module.initial_state()
    return {k: state[k].numpy() for k in self.state_names}

  def step(self, windows, noise, state):
    out = self.module.step(tf.constant(windows), tf.constant(noise),
                           *[tf.constant(state[k]) for k in self.state_names])
    return ({k: out[k].numpy() for k in ("frames", "keypoints") if k in out},
            {k: out[export_format.NEXT + k].numpy() for k in self.state_names})


def _music(seconds, seed=0):
  """A test signal with notes and silences (float32 mono, 44.1 kHz)."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * 44100)) / 44100
  pitch = 110 * 2 ** (rng.integers(0, 24, int(seconds * 2) + 1) / 12)
  f = pitch[(t * 2).astype(int)]
  gate = (np.sin(2 * np.pi * 0.25 * t) > -0.7).astype(np.float32)
  return (0.2 * gate * np.sin(2 * np.pi * np.cumsum(f) / 44100)).astype(np.float32)


def _speed(runner, seconds, folder):
  wave = _music(seconds)
  generation.generate_video(runner, wave[:44100], os.path.join(folder, "warmup.mp4"),
                            progress=False)
  start = time.perf_counter()
  result = generation.generate_video(runner, wave, os.path.join(folder, "out.mp4"),
                                     progress=False)
  return result["frames"] / (time.perf_counter() - start)


# generate.py in a child process that reports its peak resident size: VmHWM, the high-water
# mark of the child's own address space. Not getrusage's ru_maxrss: Linux carries the parent's
# resident size at fork over into the child's ru_maxrss through exec, and this benchmark's
# parent holds three runtimes and the test music (~1.9 GB), which the 1- and 10-minute runs
# once reported as their own peaks (1909 and 2847 MB; their VmHWM: 1277 and 1370 MB).
_CHILD = """
import atexit, os, resource, runpy, sys
sys.path.insert(0, os.getcwd())
def peak_kb():
  try:
    with open("/proc/self/status") as f:
      return int([l for l in f if l.startswith("VmHWM:")][0].split()[1])
  except (OSError, IndexError):
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
atexit.register(lambda: print("PEAK_KB=%d" % peak_kb(), file=sys.stderr))
sys.argv = ["generate.py"] + sys.argv[1:]
runpy.run_path("generate.py", run_name="__main__")
"""


def _peak_memory_mb(model, minutes, folder):
  """Peak resident memory of generate.py on `minutes` of music, in its own process."""
  path = os.path.join(folder, f"music_{minutes:g}.wav")
  soundfile.write(path, _music(float(minutes) * 60, seed=1), 44100)
  result = subprocess.run([sys.executable, "-c", _CHILD, f"--model={model}", f"--audio={path}",
                           f"--out={os.path.join(folder, 'mem.mp4')}"],
                          capture_output=True, text=True, check=False,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  if result.returncode:
    raise RuntimeError(result.stderr[-2000:])
  peak = [line for line in result.stderr.splitlines() if line.startswith("PEAK_KB=")][-1]
  return int(peak.split("=")[1]) / 1024.0


def main(argv):
  del argv
  meta = export_format.read_metadata(_MODEL.value)
  runners = {}
  runners["tf"] = _InMemoryRunner(meta, _CONFIG.value, _WORKDIR.value, _MODEL.value)
  runners["saved_model"] = runtime.load_runner(_MODEL.value)
  onnx_path = os.path.join(_MODEL.value, "model.onnx")
  if os.path.isfile(onnx_path):
    runners["onnx"] = runtime.load_runner(onnx_path)
  rows = []
  with tempfile.TemporaryDirectory() as folder:
    speeds = {}
    for name, runner in runners.items():
      speeds[name] = _speed(runner, _SECONDS.value, folder)
      rows.append({"measure": f"end-to-end frames/s, {name}", "value": speeds[name],
                   "resolution": meta["resolution"], "seconds": _SECONDS.value})
    fastest = max((k for k in speeds if k != "tf"), key=speeds.get)
    model = onnx_path if fastest == "onnx" else _MODEL.value
    for minutes in (float(m) for m in _MEMORY.value if m):
      rows.append({"measure": f"peak memory MB, {minutes:g} min of music ({fastest})",
                   "value": _peak_memory_mb(model, minutes, folder),
                   "resolution": meta["resolution"], "seconds": minutes * 60})
  common.report("generate", rows, _OUT.value, ["measure", "value", "resolution", "seconds"])


if __name__ == "__main__":
  app.run(main)
