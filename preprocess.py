"""Makes datasets in the project's format (DESIGN.md, "Data").

  python preprocess.py synth --instrument=cello --out=data/synth_cello [--minutes=10
      --resolution=128 --fps=30 --seed=0 --midi=FILE ... --track=N --performer=K
      --preview=FILE.mp4 --audio_backend=auto]

`synth` builds the virtual performer's dataset (apvg_tf.synth): music played by a cellist
or trombonist whose motion the notes cause, with ground-truth keypoints. `videos` and `urmp`
(folders of performance videos, URMP / Sub-URMP) come in a later version.
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
_FPS = flags.DEFINE_float("fps", 30.0, "Video frame rate.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the music, audio noise and idle motion.")
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
_INPUT = flags.DEFINE_string("input", None, "Video file or folder (videos; not implemented yet).")
_ROOT = flags.DEFINE_string("root", None, "URMP or Sub-URMP folder (urmp; not implemented yet).")


def main(argv):
  if len(argv) < 2 or argv[1] not in SUBCOMMANDS:
    given = f" (got {' '.join(argv[1:])!r})" if len(argv) > 1 else ""
    raise InputError(f"give a subcommand first: {', '.join(SUBCOMMANDS)}{given}")
  if len(argv) > 2:
    raise InputError(f"unexpected arguments: {' '.join(argv[2:])}")
  if argv[1] != "synth":
    raise InputError(f"preprocess.py {argv[1]} is not implemented yet; only synth is")
  if not _INSTRUMENT.value or not _OUT.value:
    raise InputError("synth needs --instrument=cello|trombone and --out=DIR")
  from apvg_tf.synth.dataset import build_synth_dataset  # pylint: disable=g-import-not-at-top
  summary = build_synth_dataset(
      _OUT.value, instrument=_INSTRUMENT.value, minutes=_MINUTES.value,
      resolution=_RESOLUTION.value, fps=_FPS.value, seed=_SEED.value, midi_files=_MIDI.value,
      track=_TRACK.value, performer=_PERFORMER.value, preview=_PREVIEW.value,
      audio_backend=_AUDIO_BACKEND.value, command=shlex.join(sys.argv))
  print(f"wrote {summary['out_dir']}: {len(summary['pieces'])} pieces, {summary['frames']} "
        f"frames, {summary['seconds'] / 60:.1f} min, audio by {summary['audio_backend']}")


if __name__ == "__main__":
  cli.run(main)
