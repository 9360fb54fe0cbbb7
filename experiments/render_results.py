"""Writes every experiments/results/**/<name>.md from the <name>.json beside it.

  python experiments/render_results.py            # rewrite every .md
  python experiments/render_results.py --check    # exit 1 if any .md differs from its JSON

A result JSON holds one measured table and where it came from:

  title, description   what was measured, in a line and a paragraph
  commit, date         the commit that measured it (the newest, for rows measured over several)
  machine              {"cores": 2, "gpu": "none", "memory_gb": 24}
  commands             the exact commands, one string per line
  wall_time            as recorded (a string), or null with a note saying why
  columns, rows        the table: rows are dicts keyed by column (a missing key is a blank
                       cell); the first column names the row
  notes, source        short notes (a list of strings) and where the figures come from
  formats (optional)   {column: format spec} for numbers, e.g. {"psnr": ".3f"}

Edit the JSON, never the Markdown: tests/test_results.py checks that they agree.
"""

import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # pylint: disable=g-import-not-at-top

from experiments import common  # pylint: disable=g-import-not-at-top

RESULTS = os.path.join(common.ROOT, "experiments", "results")
REQUIRED = ("title", "description", "commit", "date", "machine", "commands", "wall_time",
            "columns", "rows", "notes", "source")

_CHECK = flags.DEFINE_bool("check", False, "Write nothing; exit 1 if any .md is out of date.")


class ResultError(ValueError):
  """A result JSON that cannot be rendered: the message names the file and what is wrong."""


def load(path):
  """The result JSON at `path`, checked.

  Raises:
    ResultError: the file is not a JSON object, lacks a required key, or has a row with a key
      that is not one of its columns.
  """
  try:
    with open(path) as f:
      data = json.load(f)
  except json.JSONDecodeError as e:
    raise ResultError(f"{path}: not valid JSON ({e})") from None
  if not isinstance(data, dict):
    raise ResultError(f"{path}: a result must be a JSON object with the keys {REQUIRED}")
  missing = [key for key in REQUIRED if key not in data]
  if missing:
    raise ResultError(f"{path}: missing required key(s) {', '.join(missing)} "
                      f"(every result JSON has {', '.join(REQUIRED)})")
  for i, row in enumerate(data["rows"]):
    unknown = sorted(set(row) - set(data["columns"]))
    if unknown:
      raise ResultError(f"{path}: row {i} has keys that are not columns: {unknown}")
  return data


def cell(value, spec):
  """One table cell as text: numbers through `spec` when given; None stays blank."""
  if value is None or isinstance(value, str):
    return value
  if isinstance(value, bool):
    return "yes" if value else "no"
  return format(value, spec) if spec else str(value)


def render(data, name):
  """The Markdown of one result (`name`: the JSON's file name, for the header comment)."""
  machine = data["machine"]
  formats = data.get("formats", {})
  first, *columns = data["columns"]
  rows = [(cell(row.get(first), formats.get(first)),
           {c: cell(row.get(c), formats.get(c)) for c in columns}) for row in data["rows"]]
  lines = [
      f"# {data['title']}", "",
      f"<!-- Written by experiments/render_results.py from {name}: edit the JSON, not this. -->",
      "", data["description"], "",
      f"- Commit: `{data['commit']}` ({data['date']})",
      f"- Machine: {machine['cores']} CPU cores, GPU: {machine['gpu']}, "
      f"{machine['memory_gb']} GB memory",
      f"- Wall time: {data['wall_time'] or 'not recorded (see the notes)'}", "",
      "```bash", *data["commands"], "```", "",
      common.markdown_table(rows, columns, name_column=first), "",
  ]
  if data["notes"]:
    lines += ["Notes:", ""] + [f"- {note}" for note in data["notes"]] + [""]
  lines.append(f"Source: {data['source']}.")
  return "\n".join(lines) + "\n"


def result_files(root=RESULTS):
  """Every result JSON under `root`, sorted."""
  return sorted(glob.glob(os.path.join(root, "**", "*.json"), recursive=True))


def main(argv):
  del argv
  stale = []
  for path in result_files():
    markdown = render(load(path), os.path.basename(path))
    target = path[:-len(".json")] + ".md"
    current = open(target).read() if os.path.exists(target) else None
    if current == markdown:
      continue
    stale.append(os.path.relpath(target, common.ROOT))
    if not _CHECK.value:
      with open(target, "w") as f:
        f.write(markdown)
  verb = "out of date" if _CHECK.value else "written"
  print(f"{len(stale)} file(s) {verb}" + "".join(f"\n  {p}" for p in stale))
  if _CHECK.value and stale:
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
