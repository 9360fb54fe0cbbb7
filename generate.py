"""Music in, performance video out (DESIGN.md contract; being built: see README, Roadmap).

  python generate.py --model=SAVED_MODEL_DIR --audio=FILE --out=FILE.mp4 [--instrument=cello]
"""

import apvg_tf  # noqa: F401  pylint: disable=unused-import  (selects Keras 2 first)
from absl import flags

from apvg_tf import cli
from apvg_tf.errors import InputError

_MODEL = flags.DEFINE_string("model", "saved_models/demo_cello", "Exported model folder.")
_AUDIO = flags.DEFINE_string("audio", None, "Music file (wav, flac, ogg, mp3, or a video).")
_OUT = flags.DEFINE_string("out", None, "Output mp4 path.")
_INSTRUMENT = flags.DEFINE_string("instrument", "cello", "Instrument of the model.")


def main(argv):
  del argv
  raise InputError("generate.py needs the trained video stages (CVG and STU), which are not "
                   "built yet; see README, Roadmap. Today: `make demo` renders the virtual "
                   "performer.")


if __name__ == "__main__":
  cli.run(main)
