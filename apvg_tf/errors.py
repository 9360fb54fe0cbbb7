"""The one exception type for errors a user can cause.

Every problem that a user can fix (a missing or unreadable file, audio that is not audio, a
dataset folder without a manifest, an unknown instrument, a wrong config key) raises
`InputError` with a message that says what was wrong and what to do. Command-line programs
catch it, print the message on one line and exit with status 2 (`cli.run`).
"""


class InputError(ValueError):
  """A user-caused error; its message says what was wrong and what to do."""
