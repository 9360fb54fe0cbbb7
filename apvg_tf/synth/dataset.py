"""`build_synth_dataset`: the virtual performer's dataset, in the project's dataset format.

For every piece (generated, or cut from MIDI files): render the audio, play the piece
(keypoints and motion events), draw the frames, and hand the clip to `DatasetWriter`.
Frames are drawn by worker processes while the main process computes the audio features
and encodes the frames. The manifest's metadata records the audio back-end, the seed, the
appearance and, per piece, its notes with the time and kind of the motion event each one
causes (the ground truth of audio-motion synchrony). Nothing in it depends on the clock, so
the same arguments give the same bytes.
"""

import multiprocessing
import os

import numpy as np
import tqdm

from apvg_tf import skeleton
from apvg_tf.data import DatasetWriter
from apvg_tf.video_io import VideoWriter
from apvg_tf.audio import framing, params
from apvg_tf.errors import InputError
from apvg_tf.synth import music, render, sound
from apvg_tf.synth import performer as performer_lib

MIN_RESOLUTION, MAX_RESOLUTION = 64, 512
_CHUNK = 48  # Frames per rendering task.


def _check(instrument, minutes, resolution, fps, performer_index, midi_files, track):
  music.instrument_spec(instrument)
  if not MIN_RESOLUTION <= int(resolution) <= MAX_RESOLUTION or int(resolution) != resolution:
    raise InputError(f"--resolution must be a whole number of pixels from {MIN_RESOLUTION} to "
                     f"{MAX_RESOLUTION}, got {resolution}")
  if not 0 < float(fps) <= 120:
    raise InputError(f"--fps must be in (0, 120], got {fps}")
  if not float(minutes) > 0:
    raise InputError(f"--minutes must be positive, got {minutes}")
  if not 0 <= int(performer_index) < render.NUM_PERFORMERS:
    raise InputError(f"--performer must be 0 to {render.NUM_PERFORMERS - 1} (one per "
                     f"appearance), got {performer_index}")
  if track is not None and not midi_files:
    raise InputError("--track picks a track of the --midi files; give --midi too")
  if track is not None and int(track) < 0:
    raise InputError(f"--track must be 0 or more, got {track}")


# --------------------------------------------------------------------------- frame workers

_RENDERERS = {}


def _init_worker():
  import cv2  # pylint: disable=g-import-not-at-top
  cv2.setNumThreads(1)  # Two workers on two cores: no nested thread pools.


def _render_chunk(task):
  """Worker: frames of one chunk. task = (instrument, resolution, appearance, kp, props)."""
  instrument, resolution, appearance, keypoints, props = task
  key = (instrument, resolution, appearance)
  if key not in _RENDERERS:
    _RENDERERS[key] = render.FigureRenderer(instrument, resolution, appearance)
  figure = _RENDERERS[key]
  return np.stack([figure.frame(keypoints[i], {k: v[i] for k, v in props.items()})
                   for i in range(len(keypoints))])


def _chunks(performance, resolution, appearance):
  count = len(performance.keypoints)
  for start in range(0, count, _CHUNK):
    stop = min(start + _CHUNK, count)
    yield (performance.instrument, resolution, appearance, performance.keypoints[start:stop],
           {k: v[start:stop] for k, v in performance.props.items()})


def _preview_frame(frame, keypoints):
  """The frame at no less than 256 px with the keypoints drawn over it."""
  import cv2  # pylint: disable=g-import-not-at-top
  size = max(frame.shape[0], 256)
  big = cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)
  return skeleton.draw_skeleton(big, keypoints, thickness=1, radius=1 + size // 256)


# --------------------------------------------------------------------------- the build


def build_synth_dataset(out_dir, *, instrument, minutes=10.0, resolution=128, fps=30.0, seed=0,
                        midi_files=(), track=None, performer=0, preview=None, command="",
                        audio_backend="auto", workers=None, progress=True):
  """Builds the virtual performer's dataset.

  Args:
    out_dir: dataset folder to write (created if missing).
    instrument: "cello" or "trombone".
    minutes: minutes of music (generated pieces), or the most to take from `midi_files`.
    resolution: side of the square frames in pixels, 64 to 512.
    fps: video frame rate.
    seed: seeds the music, the noise of the audio and the idle motion; same seed, same bytes.
    midi_files: MIDI files to play instead of generated music.
    track: index of the track to play in each MIDI file (default: the instrument's track).
    performer: appearance index (0 .. render.NUM_PERFORMERS - 1).
    preview: optional .mp4 path: the whole dataset as one video with the music, keypoints
      drawn over the frames.
    command: the command line to record in the manifest.
    audio_backend: "auto", "fluidsynth" or "harmonic".
    workers: processes drawing frames (default: 2 if there are 2 cores or more; 0 or 1
      draws in this process).
    progress: show a progress bar.

  Returns:
    dict: out_dir, audio_backend, pieces, splits (piece ids per split), frames, seconds.

  Raises:
    InputError: bad arguments, unreadable or unusable MIDI files, missing preview folder.
  """
  midi_files = list(midi_files or ())
  _check(instrument, minutes, resolution, fps, performer, midi_files, track)
  resolution, fps = int(resolution), float(fps)
  if preview is not None:
    folder = os.path.dirname(os.path.abspath(preview))
    if not os.path.isdir(folder):
      raise InputError(f"cannot write the preview {preview}: the folder {folder} does not "
                       "exist")
  if midi_files:
    pieces = music.read_midi_pieces(midi_files, instrument, track=track, max_minutes=minutes)
  else:
    pieces = music.generate_pieces(instrument, minutes, seed)
  splits = music.assign_splits(pieces, seed)
  backend = sound.choose_backend(audio_backend)
  # Audio lasts exactly round(duration * rate) samples (sound.render_audio), so the motion
  # can be planned, and recorded in the manifest, before any audio is rendered.
  lengths = [framing.num_video_frames(int(round(p.duration * params.SAMPLE_RATE)), fps)
             for p in pieces]
  performances = [performer_lib.perform(p, instrument, fps, n, seed=seed)
                  for p, n in zip(pieces, lengths)]
  metadata = {
      "generator": "apvg_tf.synth", "seed": int(seed), "performer": int(performer),
      "audio_backend": backend,
      "soundfont": os.path.basename(sound.find_soundfont()) if backend == "fluidsynth" else None,
      "onset_latency": sound.ONSET_LATENCY,
      "midi_files": [os.path.basename(p) for p in midi_files], "track": track,
      "pieces": [_piece_record(p, perf, splits[p.piece_id])
                 for p, perf in zip(pieces, performances)],
  }
  if workers is None:
    workers = 2 if (os.cpu_count() or 1) >= 2 else 0
  # Spawn, not fork: a process that has already run TensorFlow (a test session, a notebook)
  # holds thread pools whose locks a forked child inherits in whatever state they were,
  # and the child can deadlock on its first import or allocation.
  pool = (multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker)
          if workers > 1 else None)
  total_frames = 0
  bar = tqdm.tqdm(total=sum(lengths), unit="frame", disable=not progress,
                  desc=f"synth {instrument}")
  video = VideoWriter(preview, fps) if preview is not None else None
  try:
    with DatasetWriter(out_dir, instrument=instrument, fps=fps, resolution=resolution,
                       source="synth", command=command, metadata=metadata) as writer:
      for piece, performance in zip(pieces, performances):
        waveform = sound.render_audio(piece, instrument, backend, seed=seed)
        num_frames = len(performance.keypoints)
        chunks = _chunks(performance, resolution, performer)
        rendered = pool.imap(_render_chunk, chunks) if pool else map(_render_chunk, chunks)

        def frames(rendered=rendered, performance=performance):
          t = 0
          for chunk in rendered:
            for frame in chunk:
              if video is not None:
                video.write(_preview_frame(frame, performance.keypoints[t]))
              t += 1
              yield frame
            bar.update(len(chunk))

        writer.add_clip(split=splits[piece.piece_id], clip_id=piece.piece_id, frames=frames(),
                        keypoints=performance.keypoints, waveform=waveform)
        if video is not None:
          video.add_audio(waveform)
        total_frames += num_frames
    if video is not None:
      video.close()
  except BaseException:
    if video is not None:
      video.abort()
    raise
  finally:
    bar.close()
    if pool is not None:
      pool.terminate()
      pool.join()
  return {"out_dir": os.fspath(out_dir), "audio_backend": backend,
          "pieces": [p.piece_id for p in pieces],
          "splits": {s: sorted(k for k, v in splits.items() if v == s) for s in music.SPLITS},
          "frames": total_frames, "seconds": float(sum(p.duration for p in pieces))}


def recorded_notes(manifest):
  """The notes of every piece of a synthetic dataset, as its manifest records them.

  Args:
    manifest: a dataset manifest (`data.load_manifest`).

  Returns:
    dict clip_id -> list of music.Note (downbeats are not recorded: False).

  Raises:
    InputError: if the dataset records no notes (it was not made by `preprocess.py synth`).
  """
  pieces = (manifest.get("metadata") or {}).get("pieces")
  if not pieces:
    raise InputError("the dataset records no notes: only datasets made by "
                     "`preprocess.py synth` do")
  out = {}
  for piece in pieces:
    field = {name: i for i, name in enumerate(piece["note_fields"])}
    out[piece["clip_id"]] = [
        music.Note(start=float(n[field["start"]]), end=float(n[field["end"]]),
                   pitch=int(n[field["pitch"]]), velocity=int(n[field["velocity"]]),
                   slur=bool(n[field["slur"]]))
        for n in piece["notes"]]
  return out


def _piece_record(piece, performance, split):
  """The manifest's record of a piece: its notes and the motion event of each."""
  notes = [[round(n.start, 4), round(n.end, 4), int(n.pitch), int(n.velocity), int(n.slur),
            round(float(e), 4), kind]
           for n, e, kind in zip(piece.notes, performance.events, performance.event_kinds)]
  return {"clip_id": piece.piece_id, "split": split, "source": piece.source,
          "duration": round(piece.duration, 4),
          "note_fields": ["start", "end", "pitch", "velocity", "slur", "event_time",
                          "event_kind"],
          "notes": notes}
