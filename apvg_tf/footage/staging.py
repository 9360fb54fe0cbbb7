"""Per-clip staging: the one step that both the plain loop and the Beam pipeline run per clip.

`stage_clip` processes one ClipSource and writes its finished result to
`<staging_dir>/<clip_id>.npz` through a temporary name and a rename, so a staged file is
always complete. A clip that fails writes `<clip_id>.error.json` instead (what went wrong)
and nothing else; a rerun tries it again. A staged result records the settings and the
source that made it, and a rerun skips a clip only if both are unchanged.

Staged file (np.savez): frames uint8 [T, R, R, 3], keypoints float32 [T, 67, 3], waveform
float32 [N], source_keypoints float32 [T, 67, 3], and meta (a JSON string: clip_id, split,
fps, crop_box, report, settings, source).

Paths with a scheme (gs://, s3://, hdfs://) are read and written through Beam's FileSystems,
so workers of a distributed runner can stage to shared storage and read inputs from it
(copied to a local temporary folder first, since OpenCV and ffmpeg read local files).
"""

import contextlib
import dataclasses
import io
import json
import logging
import os
import shutil
import tempfile
import time
import uuid

import numpy as np

from apvg_tf.data import manifest
from apvg_tf.errors import InputError
from apvg_tf.footage import process

STAGED_FORMAT = 1
_ARRAYS = ("frames", "keypoints", "waveform", "source_keypoints")


def is_remote(path):
  """Whether a path names a file system other than the local one (gs://, s3://, ...)."""
  return "://" in os.fspath(path)


def _join(folder, name):
  folder = os.fspath(folder)
  return f"{folder.rstrip('/')}/{name}" if is_remote(folder) else os.path.join(folder, name)


def staged_path(staging_dir, clip_id):
  """Path of a clip's staged result."""
  return _join(staging_dir, f"{clip_id}.npz")


def error_path(staging_dir, clip_id):
  """Path of a clip's failure record."""
  return _join(staging_dir, f"{clip_id}.error.json")


def _exists(path):
  if is_remote(path):
    from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
    return FileSystems.exists(path)
  return os.path.exists(path)


def _delete(path):
  if not _exists(path):
    return
  if is_remote(path):
    from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
    FileSystems.delete([path])
  else:
    os.remove(path)


def _write_atomic(path, data):
  """Writes bytes to `path` via a temporary name in the same folder and a rename."""
  if is_remote(path):
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
    with FileSystems.create(tmp) as f:
      f.write(data)
    FileSystems.rename([tmp], [path])
    return
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  manifest.write_bytes_atomic(path, data)


@contextlib.contextmanager
def _open_read(path):
  if is_remote(path):
    from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
    with FileSystems.open(path) as f:
      yield io.BytesIO(f.read())
  else:
    with open(path, "rb") as f:
      yield f


def _describe(settings, source):
  return {"settings": dataclasses.asdict(settings),
          "source": json.loads(json.dumps(dataclasses.asdict(source)))}


def write_staged(staging_dir, result, settings, source):
  """Writes a ClipResult as `<staging_dir>/<clip_id>.npz`, atomically."""
  meta = {"format": STAGED_FORMAT, "clip_id": result.clip_id, "split": result.split,
          "fps": result.fps, "crop_box": list(result.crop_box), "report": result.report,
          **_describe(settings, source)}
  buffer = io.BytesIO()
  np.savez(buffer, meta=np.array(json.dumps(meta)),
           **{name: getattr(result, name) for name in _ARRAYS})
  _write_atomic(staged_path(staging_dir, result.clip_id), buffer.getvalue())


def read_staged_meta(staging_dir, clip_id):
  """The meta dict of a staged clip, or None if there is none (or it is unreadable)."""
  path = staged_path(staging_dir, clip_id)
  if not _exists(path):
    return None
  try:
    with _open_read(path) as f, np.load(f) as staged:
      return json.loads(str(staged["meta"]))
  except (OSError, ValueError, KeyError):
    return None


def read_staged(staging_dir, clip_id):
  """A staged clip: (meta dict, dict of the arrays frames, keypoints, waveform, ...)."""
  with _open_read(staged_path(staging_dir, clip_id)) as f, np.load(f) as staged:
    return json.loads(str(staged["meta"])), {name: staged[name] for name in _ARRAYS}


def read_error(staging_dir, clip_id):
  """The error message recorded for a clip, or None."""
  path = error_path(staging_dir, clip_id)
  if not _exists(path):
    return None
  with _open_read(path) as f:
    return json.loads(f.read().decode())["error"]


def is_staged(staging_dir, source, settings):
  """Whether the clip is staged by the same settings from the same source."""
  meta = read_staged_meta(staging_dir, source.clip_id)
  if meta is None or meta.get("format") != STAGED_FORMAT:
    return False
  described = _describe(settings, source)
  return meta["settings"] == described["settings"] and meta["source"] == described["source"]


@contextlib.contextmanager
def _localized(source):
  """The source with remote files copied to a local temporary folder (as is if all local)."""
  paths = [source.video, source.audio, *source.images]
  if not any(p and is_remote(p) for p in paths) and not (
      source.openpose_dir and is_remote(source.openpose_dir)):
    yield source
    return
  from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
  folder = tempfile.mkdtemp(prefix=f"apvg_{source.clip_id}_")

  def local(path, index):
    if not path or not is_remote(path):
      return path
    target = os.path.join(folder, f"{index:06d}_{os.path.basename(path)}")
    with FileSystems.open(path) as f, open(target, "wb") as out:
      shutil.copyfileobj(f, out, 1 << 20)
    return target

  try:
    changes = {"video": local(source.video, 0), "audio": local(source.audio, 1),
               "images": tuple(local(p, 2 + i) for i, p in enumerate(source.images))}
    if source.openpose_dir and is_remote(source.openpose_dir):
      pattern = _join(source.openpose_dir, "*_keypoints.json")
      matches = FileSystems.match([pattern])[0].metadata_list
      openpose = os.path.join(folder, "openpose")
      os.makedirs(openpose)
      for meta in matches:
        with FileSystems.open(meta.path) as f, open(
            os.path.join(openpose, os.path.basename(meta.path)), "wb") as out:
          shutil.copyfileobj(f, out)
      changes["openpose_dir"] = openpose
    yield dataclasses.replace(source, **changes)
  finally:
    shutil.rmtree(folder, ignore_errors=True)


def stage_clip(source, settings, staging_dir, *, detector_factory=None, progress=False):
  """Processes one clip into the staging folder, unless it is staged already.

  Never raises for a bad clip: the error is logged, recorded in `<clip_id>.error.json` and
  returned, and nothing else is written for the clip.

  Args:
    source: a ClipSource.
    settings: a process.Settings (with fps set, so all clips of a dataset agree).
    staging_dir: the staging folder (local, or a FileSystems path such as gs://...).
    detector_factory: optional callable () -> keypoint detector (see process.process_clip),
      called once per clip; default MediaPipe.
    progress: show the clip's progress bars.

  Returns:
    dict: clip_id, status ('done', 'skipped' or 'failed'), error (str or None), seconds.
  """
  start = time.time()
  status = {"clip_id": source.clip_id, "status": "skipped", "error": None}
  try:
    if is_staged(staging_dir, source, settings):
      _delete(error_path(staging_dir, source.clip_id))
      return {**status, "seconds": 0.0}
    detector = detector_factory() if detector_factory is not None else None
    try:
      with _localized(source) as local:
        result = process.process_clip(local, settings, detector=detector, progress=progress)
    finally:
      if detector is not None and hasattr(detector, "close"):
        detector.close()
    write_staged(staging_dir, result, settings, source)
    _delete(error_path(staging_dir, source.clip_id))
    status["status"] = "done"
  except Exception as e:  # pylint: disable=broad-except  (one bad clip must not stop a run)
    message = str(e) if isinstance(e, InputError) else f"{type(e).__name__}: {e}"
    message = " ".join(message.split())
    if isinstance(e, InputError):
      logging.error("clip %s failed: %s", source.clip_id, message)
    else:
      logging.exception("clip %s failed: %s", source.clip_id, message)
    status.update(status="failed", error=message)
    try:
      _write_atomic(error_path(staging_dir, source.clip_id),
                    json.dumps({"clip_id": source.clip_id, "error": message,
                                "type": type(e).__name__}).encode())
    except Exception:  # pylint: disable=broad-except
      logging.exception("cannot record the failure of clip %s", source.clip_id)
  status["seconds"] = round(time.time() - start, 2)
  return status
