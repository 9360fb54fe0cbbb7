"""The footage preprocessing as an Apache Beam pipeline (DESIGN.md, "Scale").

One element per ClipSource; each runs `staging.stage_clip` (the same function the plain loop
runs), which writes the clip's finished result atomically into the staging folder, or records
its error and skips it. The dataset (shards and manifest) is assembled from the staged
results after the pipeline, by `dataset.build_footage_dataset`, on the machine that launched
it.

  DirectRunner (default): `num_workers` processes ("multi_processing") or threads
    ("multi_threading") on this machine. It runs on Beam's FnApiRunner, the engine of
    DirectRunner for batch pipelines, named directly so that Beam never tries to download
    its Prism runner (this project works offline).
  Dataflow, Flink, Spark: pass `runner` and the runner's options as `pipeline_args`
    (e.g. ["--project=P", "--region=R", "--temp_location=gs://B/tmp",
    "--setup_file=./setup.py"]), a staging folder the workers can write (gs://...), and
    inputs they can read (gs:// paths are copied to the worker's disk before decoding).
"""

import logging
import os

# Beam's own INFO and import-time warnings (optional Google Cloud clients absent, cache
# sizes) say nothing about the clips; its errors still show.
logging.getLogger("apache_beam").setLevel(logging.ERROR)

import apache_beam as beam  # pylint: disable=g-import-not-at-top,wrong-import-position
from apache_beam.options import pipeline_options as po
from apache_beam.runners.portability import fn_api_runner

from apvg_tf.footage import staging

_DIRECT = ("DirectRunner", "direct")


class StageClipDoFn(beam.DoFn):
  """ClipSource -> its status dict (staging.stage_clip), counting clips by outcome."""

  def __init__(self, settings, staging_dir, detector_factory=None):
    super().__init__()
    self._settings = settings
    self._staging_dir = staging_dir
    self._detector_factory = detector_factory

  def process(self, source):
    status = staging.stage_clip(source, self._settings, self._staging_dir,
                                detector_factory=self._detector_factory)
    beam.metrics.Metrics.counter("footage", f"clips_{status['status']}").inc()
    if status["status"] != "failed":  # stage_clip has logged a failure with its error.
      logging.info("clip %s %s in %.1f s", status["clip_id"], status["status"],
                   status["seconds"])
    yield status


def pipeline_options(runner="DirectRunner", num_workers=1, running_mode="multi_processing",
                     pipeline_args=()):
  """Beam PipelineOptions for `runner`; DirectRunner gets `num_workers` and `running_mode`.

  Args:
    runner: a Beam runner name (DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, ...).
    num_workers: DirectRunner workers; 1 runs in this process.
    running_mode: DirectRunner's "multi_processing" or "multi_threading" for num_workers > 1.
    pipeline_args: further Beam command-line options, passed through unchanged.

  Returns:
    apache_beam.options.pipeline_options.PipelineOptions.
  """
  options = po.PipelineOptions(list(pipeline_args))
  if runner not in _DIRECT:  # The direct case gets a runner object (see `run_pipeline`).
    options.view_as(po.StandardOptions).runner = runner
  else:
    direct = options.view_as(po.DirectOptions)
    direct.direct_num_workers = max(int(num_workers or 1), 1)
    direct.direct_running_mode = running_mode if direct.direct_num_workers > 1 else "in_memory"
  return options


def run_pipeline(sources, settings, staging_dir, *, runner="DirectRunner", num_workers=1,
                 running_mode="multi_processing", pipeline_args=(), detector_factory=None):
  """Stages every clip with Beam; returns when the pipeline has finished.

  Failed clips do not fail the pipeline: each is logged and leaves `<clip_id>.error.json` in
  the staging folder. Clips staged by an earlier run with the same settings are skipped.

  Args:
    sources: list of ClipSource.
    settings: process.Settings with fps set (every clip of a dataset shares the rate).
    staging_dir: staging folder, writable by the workers.
    runner: Beam runner name.
    num_workers: DirectRunner workers.
    running_mode: DirectRunner's "multi_processing" or "multi_threading".
    pipeline_args: further Beam options (list of "--key=value" strings).
    detector_factory: optional picklable callable () -> keypoint detector; default MediaPipe.
  """
  options = pipeline_options(runner, num_workers, running_mode, pipeline_args)
  if runner in _DIRECT and running_mode == "multi_processing" and (num_workers or 1) > 1:
    # DirectRunner's worker processes start a fresh Python: let them import apvg_tf from
    # this checkout whatever the current folder is.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
      os.environ["PYTHONPATH"] = os.pathsep.join([root] + paths)
  if not staging.is_remote(staging_dir):
    os.makedirs(staging_dir, exist_ok=True)
  engine = None
  if runner in _DIRECT:
    # The engine DirectRunner uses for batch pipelines, named directly: Beam's DirectRunner
    # first tries its Prism runner, which downloads a binary from the internet.
    engine = fn_api_runner.FnApiRunner()
  with beam.Pipeline(runner=engine, options=options) as pipeline:
    _ = (pipeline
         | "Clips" >> beam.Create(list(sources))
         # Create fuses with what follows; a reshuffle lets a distributed runner spread the
         # clips over its workers.
         | "Spread" >> beam.Reshuffle()
         | "Stage" >> beam.ParDo(StageClipDoFn(settings, staging_dir, detector_factory)))
