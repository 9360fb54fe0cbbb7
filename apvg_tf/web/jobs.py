"""What the web page does with a request, without the page (so it is tested without a browser).

The rules live in the modules that own them; this one only strings them together:
  - the models offered are the exports in one folder that `export_format.read_metadata`
    accepts and that hold a SavedModel, by folder name (never a path typed by the user);
  - the music is read by `audio.load_waveform` (a file that is not audio, empty, truncated or
    with NaN samples is its InputError), after a size check and before a length check;
  - a generation is `generation.generate_video`, the path generate.py takes, into the job's own
    folder under the server's temporary folder.
Every step logs one line on the server's stdout (`job N: ...`), in the order it happened.
"""

import collections
import dataclasses
import itertools
import os
import re
import shutil
import threading
import time

from apvg_tf import audio, generation, runtime
from apvg_tf.errors import InputError
from apvg_tf.export_format import read_metadata

# The bundled pieces: the audio files of the assets folder (its figures are not music).
PIECE_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
MEGABYTE = 2**20  # As Gradio counts its upload limit.
_CLOSED_SESSIONS_KEPT = 10_000


@dataclasses.dataclass(frozen=True)
class Limits:
  """What one piece of music may be.

  50 MB holds 10 minutes of FLAC, OGG or MP3 (a WAV of 10 minutes is 100 MB: compress it);
  10 minutes of music is 18,000 frames at 30 fps, several minutes of a 2-core CPU during which
  every other request waits.
  """
  max_megabytes: float = 50.0
  max_minutes: float = 10.0

  @property
  def max_bytes(self):
    return int(self.max_megabytes * MEGABYTE)


@dataclasses.dataclass(frozen=True)
class Result:
  """The files of a finished job (all in its folder) and what they hold."""
  video: str
  skeleton: str
  keypoints: str
  frames: int
  seconds: float
  fps: float
  elapsed: float


class Cancelled(Exception):
  """The page that asked for the job was closed while it ran."""


def list_models(folder):
  """{name: folder} of the exported models in `folder`, sorted by name.

  A subfolder counts if it holds a SavedModel and metadata that this version can stream;
  anything else there (a half-copied export, an ONNX-only folder, notes) is left out.
  """
  if not os.path.isdir(folder):
    return {}
  found = {}
  for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
      continue
    try:
      read_metadata(path)
    except InputError:
      continue
    found[name] = path
  return found


def list_pieces(folder):
  """{file name: path} of the music files in `folder`, sorted by name."""
  if not os.path.isdir(folder):
    return {}
  return {name: os.path.join(folder, name) for name in sorted(os.listdir(folder))
          if name.lower().endswith(PIECE_EXTENSIONS)}


class Models:
  """The exported models offered, each loaded once (a SavedModel takes seconds to load).

  Loaded models stay in memory for the server's life: the demo's is 45 MB.
  """

  def __init__(self, folder):
    """Finds the models of `folder`.

    Raises:
      InputError: if it holds none.
    """
    self.paths = list_models(folder)
    if not self.paths:
      raise InputError(f"no exported model in {folder!r}; export one with export.py (see "
                       "docs/serving.md) or pass --models=FOLDER")
    self._runners = {}
    self._lock = threading.Lock()

  @property
  def names(self):
    return list(self.paths)

  def runner(self, name):
    """The runner of model `name`, loaded at the first call.

    Raises:
      InputError: if `name` is not one of `names`, or its export is damaged.
    """
    if name not in self.paths:
      raise InputError(f"there is no model {name!r}; pick one of: {', '.join(self.paths)}")
    with self._lock:
      if name not in self._runners:
        self._runners[name] = runtime.load_runner(self.paths[name])
      return self._runners[name]


def read_music(path, name, limits):
  """The waveform of a music file, within the limits.

  Args:
    path: the file on the server.
    name: its name as the user knows it: messages name it, never the server's path.
    limits: `Limits`.

  Returns:
    float32 [N], mono at 44.1 kHz.

  Raises:
    InputError: the file is over the size limit (checked before decoding, which it would
      make long), is not readable audio (`audio.load_waveform`'s errors), or is longer than
      the length limit.
  """
  size = os.path.getsize(path)
  if size > limits.max_bytes:
    raise InputError(f"{name} is {size / MEGABYTE:.1f} MB, over the limit of "
                     f"{limits.max_megabytes:g} MB; compress it (FLAC, OGG or MP3) or cut it")
  try:
    waveform = audio.load_waveform(path)
  except InputError as e:
    raise InputError(str(e).replace(path, name)) from None
  minutes = len(waveform) / audio.SAMPLE_RATE / 60
  if minutes > limits.max_minutes:
    raise InputError(f"{name} is {minutes:.1f} minutes long, over the limit of "
                     f"{limits.max_minutes:g} minutes; cut it into parts")
  return waveform


def check_seed(seed):
  """The seed as an int; InputError unless it is a whole number >= 0 (as generate.py's)."""
  try:
    value = float(seed)
  except (TypeError, ValueError):
    value = -1.0
  if not value.is_integer() or value < 0:
    raise InputError(f"seed {seed!r}: the seed must be a whole number >= 0")
  return int(value)


def output_stem(name):
  """A file-name stem for the outputs of music called `name` ("My song.mp3" -> "My_song")."""
  stem = re.sub(r"[^A-Za-z0-9_-]+", "_", os.path.splitext(os.path.basename(name))[0])
  return stem.strip("_") or "music"


@dataclasses.dataclass
class _Job:
  number: int
  session: str
  folder: str
  cancelled: threading.Event
  running: bool = True


class Workspace:
  """The server's temporary folder; each job writes into its own `results/<number>/` in it.

  The page calls `close_session` when a tab goes away: its running job stops at the next
  chunk, and its results are removed (nothing can show them any more).
  """

  def __init__(self, root):
    self.root = root
    self._numbers = itertools.count(1)
    self._lock = threading.Lock()
    self._jobs = {}  # session -> [_Job]
    # Sessions already closed, newest last: a request that was waiting in the queue when its
    # tab closed must not start. Bounded, as a server may see many sessions.
    self._closed = collections.OrderedDict()

  def _start(self, session):
    with self._lock:
      number = next(self._numbers)
      job = _Job(number, session, os.path.join(self.root, "results", str(number)),
                 threading.Event())
      if session in self._closed:
        job.cancelled.set()
      else:
        self._jobs.setdefault(session, []).append(job)
    os.makedirs(job.folder)
    return job

  def _finish(self, job, *, keep):
    """Marks a job stopped; removes its folder unless it is kept. Returns whether it is."""
    with self._lock:
      job.running = False
      keep = keep and not job.cancelled.is_set()  # Closed after its last chunk.
    if not keep:
      shutil.rmtree(job.folder, ignore_errors=True)
    return keep

  def close_session(self, session):
    """Stops the running job of a closed tab and removes its results."""
    with self._lock:
      self._closed[session] = True
      while len(self._closed) > _CLOSED_SESSIONS_KEPT:
        self._closed.popitem(last=False)
      jobs = self._jobs.pop(session, [])
      for job in jobs:
        job.cancelled.set()
      finished = [job for job in jobs if not job.running]
    for job in finished:  # A running job removes its own folder when it stops.
      shutil.rmtree(job.folder, ignore_errors=True)

  def perform(self, session, *, models, model, music, music_name, seed, limits,
              on_progress=None):
    """One request: reads the music, loads the model, generates into a new job folder.

    Args:
      session: the page session asking (`close_session` cancels its job).
      models: `Models`.
      model: the name of one of them.
      music: path of the music file on the server.
      music_name: its name as the user knows it.
      seed: seed of the coarse video's noise.
      limits: `Limits`.
      on_progress: optional `on_progress(done, total)` in frames.

    Returns:
      `Result`.

    Raises:
      InputError: bad music, seed or model name; nothing is kept.
      Cancelled: the session was closed while the job ran; nothing is kept.
    """
    job = self._start(session)
    if job.cancelled.is_set():
      self._finish(job, keep=False)
      _log(job, f"cancelled before it started: {music_name} (the page was closed)")
      raise Cancelled("the page was closed")
    start = time.monotonic()
    _log(job, f"started: {music_name}, model {model}, seed {seed}")

    def progress(done, total):
      if job.cancelled.is_set():
        raise Cancelled("the page was closed")
      if on_progress is not None:
        on_progress(done, total)

    stem = output_stem(music_name)
    paths = [os.path.join(job.folder, stem + suffix)
             for suffix in (".mp4", "_skeleton.mp4", "_keypoints.json")]
    try:
      seed = check_seed(seed)
      waveform = read_music(music, music_name, limits)
      runner = models.runner(model)
      made = generation.generate_video(runner, waveform, paths[0], seed=seed,
                                       skeleton_video=paths[1], keypoints_json=paths[2],
                                       progress=False, on_progress=progress)
    except (InputError, Cancelled) as e:
      self._finish(job, keep=False)
      _log(job, f"{'refused' if isinstance(e, InputError) else 'cancelled'}: {e}")
      raise
    except BaseException:
      self._finish(job, keep=False)
      _log(job, "failed")
      raise
    if not self._finish(job, keep=True):
      _log(job, "cancelled: the page was closed")
      raise Cancelled("the page was closed")
    elapsed = time.monotonic() - start
    _log(job, f"finished: {made['frames']} frames ({made['seconds']:.1f} s of music) in "
              f"{elapsed:.1f} s")
    return Result(*paths, frames=made["frames"], seconds=made["seconds"], fps=made["fps"],
                  elapsed=elapsed)


def _log(job, message):
  print(f"job {job.number}: {' '.join(str(message).split())}", flush=True)
