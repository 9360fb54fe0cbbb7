"""Makes datasets in the project's format (DESIGN.md, "Data").

  python preprocess.py synth --instrument=cello --out=data/synth_cello [--minutes=10
      --resolution=128 --fps=30 --seed=0 --midi=FILE ... --track=N --performer=K
      --preview=FILE.mp4 --audio_backend=auto]
  python preprocess.py videos --input=DIR_OR_FILES --instrument=violin --out=data/my_violin
      [--audio_dir=DIR --resolution=128 --fps=F --keypoints=mediapipe|openpose
      --openpose_dir=DIR --max_gap_frames=5 --margin=0.15 --runner=DirectRunner|none
      --num_workers=N --seed=0] [-- BEAM_OPTIONS ...]
  python preprocess.py urmp --root=URMP_OR_SUB_URMP --instrument=cello --out=data/urmp_cello
      [the videos flags above, without --input/--audio_dir/--keypoints]

`synth` builds the virtual performer's dataset (apvg_tf.synth): music played by a cellist
or trombonist whose motion the notes cause, with ground-truth keypoints. `videos` turns
performance videos (mp4, mov, mkv, webm; the music from their own sound or from
--audio_dir) into a dataset (apvg_tf.footage): keypoints by MediaPipe Holistic or OpenPose
JSON, one stable square crop per clip, splits by clip. It runs as an Apache Beam pipeline
(DirectRunner with --num_workers by default; options after `--` go to Beam unchanged, e.g.
`--runner=DataflowRunner -- --project=P --region=R --temp_location=gs://B/tmp`), or as a
plain loop with --runner=none. `urmp` does the same for the instrument's clips of a URMP
folder (each player cut from the ensemble video, with its separated track; splits by piece)
or a Sub-URMP folder (its images and joined 0.5 s chunks; its own train / validation split);
see apvg_tf/footage/layouts.py.
"""

import shlex
import sys

from absl import flags

import apvg_tf  # pylint: disable=unused-import  (selects Keras 2 before TensorFlow loads)
from apvg_tf import cli
from apvg_tf.errors import InputError

SUBCOMMANDS = ("synth", "videos", "urmp")

_INSTRUMENT = flags.DEFINE_string("instrument", None, "Instrument: cello or trombone (synth).")
_OUT = flags.DEFINE_string("out", None, "Dataset folder to write.")
_MINUTES = flags.DEFINE_float(
    "minutes", 10.0, "Minutes of generated music; with --midi, the most to take from the files.")
_RESOLUTION = flags.DEFINE_integer("resolution", 128, "Side of the square frames, 64 to 512 px.")
_FPS = flags.DEFINE_float(
    "fps", None, "Video frame rate of the dataset. synth: default 30. videos: default the "
    "videos' own nominal rate (the one most of them share); others are resampled to it.")
_SEED = flags.DEFINE_integer(
    "seed", 0, "synth: seed of the music, audio noise and idle motion. videos: seed of the "
    "assignment of clips to splits.")
_MIDI = flags.DEFINE_multi_string(
    "midi", [], "MIDI file to play instead of generated music (repeatable).")
_TRACK = flags.DEFINE_integer(
    "track", None, "Track index (0-based) to play in each --midi file; default: the track "
    "whose General MIDI program is the instrument's.")
_PERFORMER = flags.DEFINE_integer("performer", 0, "Appearance of the virtual performer, 0-3.")
_PREVIEW = flags.DEFINE_string(
    "preview", None, "Also write this .mp4: the frames with keypoints drawn and the music.")
_AUDIO_BACKEND = flags.DEFINE_enum(
    "audio_backend", "auto", ["auto", "fluidsynth", "harmonic"],
    "Audio: FluidSynth with the GM soundfont, the built-in synthesizer, or auto (FluidSynth "
    "when installed).")
_INPUT = flags.DEFINE_string(
    "input", None, "videos: a folder of videos (mp4, mov, mkv, webm), a video file, or "
    "comma-separated video files.")
_AUDIO_DIR = flags.DEFINE_string(
    "audio_dir", None, "videos: folder of music files matched to the videos by file stem "
    "(take1.mp4 <- take1.wav); default: the videos' own sound.")
_KEYPOINTS = flags.DEFINE_enum(
    "keypoints", "mediapipe", ["mediapipe", "openpose"],
    "videos: keypoints from MediaPipe Holistic (bundled models, offline) or from OpenPose "
    "JSON files (--openpose_dir).")
_OPENPOSE_DIR = flags.DEFINE_string(
    "openpose_dir", None, "videos, with --keypoints=openpose: folder with one subfolder of "
    "*_keypoints.json per video stem, or the JSON files themselves for a single video.")
_MAX_GAP_FRAMES = flags.DEFINE_integer(
    "max_gap_frames", 5, "videos: a keypoint missing for at most this many frames between "
    "detections is interpolated; longer gaps stay missing.")
_MARGIN = flags.DEFINE_float(
    "margin", 0.15, "videos: space around the performer's box on each side of the crop, as a "
    "fraction of the box's longer side.")
_MODEL_COMPLEXITY = flags.DEFINE_integer(
    "model_complexity", 1, "videos: MediaPipe Holistic model; 1 is the one its wheel ships.")
_RUNNER = flags.DEFINE_string(
    "runner", "DirectRunner", "videos: Apache Beam runner (DirectRunner, DataflowRunner, "
    "FlinkRunner, SparkRunner, ...), or 'none' for a plain loop in this process.")
_NUM_WORKERS = flags.DEFINE_integer(
    "num_workers", None, "videos: DirectRunner worker processes (default: the CPU count, at "
    "most one per video).")
_DIRECT_RUNNING_MODE = flags.DEFINE_enum(
    "direct_running_mode", "multi_processing", ["multi_processing", "multi_threading"],
    "videos: how DirectRunner runs --num_workers > 1 workers.")
_STAGING_DIR = flags.DEFINE_string(
    "staging_dir", None, "videos: folder of finished per-clip results (default OUT/.staging; "
    "a gs:// folder for distributed runners). Kept, so a rerun skips finished clips.")
_ROOT = flags.DEFINE_string(
    "root", None, "urmp: a URMP folder (one folder per piece: Vid_*.mp4, AuSep_*.wav) or a "
    "Sub-URMP folder (img/ and chunk/, split/instrument/*.jpg|wav).")
_SUB_URMP_VALIDATION_AS = flags.DEFINE_enum(
    "sub_urmp_validation_as", "validation", ["validation", "test"],
    "urmp, Sub-URMP: the split its validation songs go to (the paper evaluates on them).")


def _settings():
  from apvg_tf import footage  # pylint: disable=g-import-not-at-top
  return footage.Settings(resolution=_RESOLUTION.value, fps=_FPS.value, margin=_MARGIN.value,
                          max_gap_frames=_MAX_GAP_FRAMES.value,
                          model_complexity=_MODEL_COMPLEXITY.value)


def _build_footage(sources, beam_args, source_name):
  """Processes real-footage clips (videos or urmp) into --out and prints the report."""
  from apvg_tf import footage  # pylint: disable=g-import-not-at-top
  summary = footage.build_footage_dataset(
      sources, _OUT.value, instrument=_INSTRUMENT.value, settings=_settings(),
      seed=_SEED.value, runner=_RUNNER.value, num_workers=_NUM_WORKERS.value,
      running_mode=_DIRECT_RUNNING_MODE.value, pipeline_args=beam_args,
      staging_dir=_STAGING_DIR.value, command=shlex.join(sys.argv), source_name=source_name)
  print(summary["table"])
  for clip_id, error in summary["failed"].items():
    print(f"skipped {clip_id}: {error}", file=sys.stderr)
  print(f"wrote {summary['out_dir']}: {len(summary['clips'])} clips, {summary['frames']} "
        f"frames at {summary['fps']:g} fps" + (f", {len(summary['failed'])} clips failed"
                                               if summary["failed"] else ""))


def _videos(beam_args):
  """`preprocess.py videos`: a folder or list of videos -> a dataset."""
  from apvg_tf import footage  # pylint: disable=g-import-not-at-top
  if not _INPUT.value or not _INSTRUMENT.value or not _OUT.value:
    raise InputError("videos needs --input=DIR_OR_FILES, --instrument=NAME and --out=DIR")
  if _KEYPOINTS.value == "openpose" and not _OPENPOSE_DIR.value:
    raise InputError("--keypoints=openpose needs --openpose_dir=DIR (OpenPose --write_json "
                     "output)")
  if _OPENPOSE_DIR.value and _KEYPOINTS.value != "openpose":
    raise InputError("--openpose_dir is only read with --keypoints=openpose")
  _build_footage(footage.list_videos(_INPUT.value, audio_dir=_AUDIO_DIR.value,
                                     openpose_dir=_OPENPOSE_DIR.value), beam_args, "videos")


def _urmp(beam_args):
  """`preprocess.py urmp`: the instrument's clips of a URMP or Sub-URMP folder -> a dataset."""
  import os  # pylint: disable=g-import-not-at-top
  from apvg_tf.footage import layouts  # pylint: disable=g-import-not-at-top
  if not _ROOT.value or not _INSTRUMENT.value or not _OUT.value:
    raise InputError("urmp needs --root=URMP_OR_SUB_URMP_DIR, --instrument=NAME and --out=DIR")
  if _KEYPOINTS.value != "mediapipe" or _OPENPOSE_DIR.value or _AUDIO_DIR.value:
    raise InputError("urmp finds its own audio tracks and takes keypoints from MediaPipe; "
                     "drop --keypoints/--openpose_dir/--audio_dir (or use videos)")
  # Sub-URMP's audio chunks are joined into one file per song beside the per-clip results.
  staging = _STAGING_DIR.value or os.path.join(_OUT.value, ".staging")
  clips = layouts.discover(_ROOT.value, _INSTRUMENT.value, staging,
                           validation_as=_SUB_URMP_VALIDATION_AS.value)
  layout = layouts.detect_layout(_ROOT.value)
  print(f"{_ROOT.value}: {len(clips)} {_INSTRUMENT.value} clips ({layout} layout)")
  _build_footage([clip.source for clip in clips], beam_args, layout)


def main(argv):
  if len(argv) < 2 or argv[1] not in SUBCOMMANDS:
    given = f" (got {' '.join(argv[1:])!r})" if len(argv) > 1 else ""
    raise InputError(f"give a subcommand first: {', '.join(SUBCOMMANDS)}{given}")
  extra = argv[2:]
  if argv[1] in ("videos", "urmp") and all(a.startswith("--") for a in extra):
    # Options after `--` are Beam's.
    return _videos(extra) if argv[1] == "videos" else _urmp(extra)
  if extra:
    raise InputError(f"unexpected arguments: {' '.join(extra)}")
  if not _INSTRUMENT.value or not _OUT.value:
    raise InputError("synth needs --instrument=cello|trombone and --out=DIR")
  from apvg_tf.synth.dataset import build_synth_dataset  # pylint: disable=g-import-not-at-top
  summary = build_synth_dataset(
      _OUT.value, instrument=_INSTRUMENT.value, minutes=_MINUTES.value,
      resolution=_RESOLUTION.value, fps=30.0 if _FPS.value is None else _FPS.value,
      seed=_SEED.value, midi_files=_MIDI.value,
      track=_TRACK.value, performer=_PERFORMER.value, preview=_PREVIEW.value,
      audio_backend=_AUDIO_BACKEND.value, command=shlex.join(sys.argv))
  print(f"wrote {summary['out_dir']}: {len(summary['pieces'])} pieces, {summary['frames']} "
        f"frames, {summary['seconds'] / 60:.1f} min, audio by {summary['audio_backend']}")


if __name__ == "__main__":
  cli.run(main)
