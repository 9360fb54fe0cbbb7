"""Shared behaviour of the command-line programs: user errors become one line and exit 2."""

import sys

from absl import app

from apvg_tf.errors import InputError


def run(main):
  """Runs an absl `main(argv)`; an InputError prints `error: <message>` and exits with 2.

  Args:
    main: the program's main function, as for `absl.app.run`.
  """

  def guarded(argv):
    try:
      return main(argv)
    except InputError as e:
      message = " ".join(str(e).split())  # One line, whatever the message held.
      print(f"error: {message}", file=sys.stderr)
      sys.exit(2)

  app.run(guarded)
