"""Music in, performance video out.

  python generate.py --audio=FILE --out=FILE.mp4 [--model=saved_models/demo_cello]
      [--keypoints_json=FILE.json --skeleton_video=FILE.mp4 --seed=0]

Any audio file the audio module reads (wav, flac, ogg, mp3; other formats and the audio track
of a video through ffmpeg) at any sample rate and channel count. The model is an exported
SavedModel folder or a model.onnx file (export.py). Writes an H.264 mp4 with the music.
"""

import apvg_tf  # noqa: F401  pylint: disable=unused-import  (selects Keras 2 first)
from absl import flags

from apvg_tf import audio, cli, generation, instruments, runtime
from apvg_tf.errors import InputError

_MODEL = flags.DEFINE_string("model", "saved_models/demo_cello",
                             "Exported model: a SavedModel folder or a .onnx file.")
_AUDIO = flags.DEFINE_string("audio", None, "Music file (wav, flac, ogg, mp3, or a video).")
_OUT = flags.DEFINE_string("out", None, "Output mp4 path.")
_INSTRUMENT = flags.DEFINE_string(
    "instrument", None, "Instrument the music is played on; must match the model's "
    "(default: the model's).")
_KEYPOINTS = flags.DEFINE_string("keypoints_json", None, "Also write the keypoint track here.")
_SKELETON = flags.DEFINE_string("skeleton_video", None, "Also write a skeleton video here.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the coarse video's noise (an integer >= 0).")
flags.mark_flags_as_required(["audio", "out"])


def main(argv):
  del argv
  # Checked here rather than with lower_bound=0, whose absl usage error exits with 1; and
  # before the audio and the model load, where NumPy would only refuse it (a traceback).
  if _SEED.value < 0:
    raise InputError(f"--seed={_SEED.value}: the seed must be an integer >= 0")
  if not _OUT.value.lower().endswith(".mp4"):
    raise InputError(f"--out={_OUT.value!r}: the output must be an .mp4 file")
  for path in (_OUT.value, _KEYPOINTS.value, _SKELETON.value):
    generation.check_output_folder(path)
  # The music first: a bad file is reported before the model takes seconds to load.
  waveform = audio.load_waveform(_AUDIO.value)
  runner = runtime.load_runner(_MODEL.value)
  trained_on = runner.metadata.get("instrument")
  if _INSTRUMENT.value:
    wanted = instruments.check(_INSTRUMENT.value)
    if trained_on and wanted != trained_on:
      raise InputError(f"the model {_MODEL.value!r} performs the {trained_on}, not the "
                       f"{wanted}; pass a {wanted} model with --model")
  result = generation.generate_video(runner, waveform, _OUT.value, seed=_SEED.value,
                                     keypoints_json=_KEYPOINTS.value,
                                     skeleton_video=_SKELETON.value)
  print(f"wrote {_OUT.value}: {result['frames']} frames, {result['seconds']:.1f} s at "
        f"{result['fps']:g} fps")


if __name__ == "__main__":
  cli.run(main)
