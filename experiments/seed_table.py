"""Table I over several seeds: each variant's mean and spread, and its paired gap to the full model.

  python experiments/seed_table.py --tables=runs/t1/table1.json,runs/t1_s1/table1.json,... \
      [--reference=full] [--out=runs/t1_seeds.json]

Each table is the `table1.json` of one `table1_stu.py` run: the same variants, at one seed
(`--override=seed=S`). A single 300-step run per variant cannot separate parts that buy a few
hundredths of a dB: on the virtual cellist the full model's PSNR spans 0.085 dB over five
seeds (28.099 to 28.184; experiments/results/table1.md). This puts the spread beside
the differences. For every variant and metric it gives

  mean, std      over the seeds where the variant was run (std: sample standard deviation,
                 n - 1 in the denominator; blank for one seed),
  gap            the mean over the seeds where both were run of (variant - reference),
  better         in how many of those seeds the variant beat the reference (higher PSNR and
                 SSIM, lower flicker).

Prints one Markdown table per metric and writes the figures as JSON.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from experiments import common  # pylint: disable=g-import-not-at-top

_TABLES = flags.DEFINE_list("tables", None, "table1.json files, one per seed.", required=True)
_REFERENCE = flags.DEFINE_string("reference", "full", "The variant the gaps are taken to.")
_OUT = flags.DEFINE_string("out", None, "Where to write the JSON (default: none).")

# Metric -> +1 where higher is better, -1 where lower is.
METRICS = {"psnr": 1, "ssim": 1, "flicker": -1}


def load_tables(paths):
  """The rows of each table1.json: a list of {variant: metrics dict}, one per seed.

  Raises:
    SystemExit: a file is missing or is not a table1.json.
  """
  tables = []
  for path in paths:
    try:
      with open(path) as f:
        tables.append(json.load(f)["rows"])
    except (OSError, ValueError, KeyError, TypeError) as e:  # TypeError: JSON not an object.
      raise SystemExit(f"{path!r} is not a readable table1.json (written by "
                       f"experiments/table1_stu.py): {e}") from e
  return tables


def summarise(tables, reference="full"):
  """Per variant and metric: mean, std, n, and the paired gap to `reference`.

  Args:
    tables: list (one per seed) of {variant: {"name": str, metric: float, ...}}.
    reference: the variant gaps are taken to.

  Returns:
    {variant: {"name": str, metric: {"mean", "std", "n", "gap", "better", "paired"}}}, the
    variants in order of first appearance. std is None for n = 1; gap and better are None
    where no seed has both the variant and the reference (and for the reference itself).
  """
  names = {}
  for rows in tables:
    for variant, row in rows.items():
      names.setdefault(variant, row.get("name", variant))
  summary = {}
  for variant, name in names.items():
    summary[variant] = {"name": name}
    for metric, sign in METRICS.items():
      values, gaps = [], []
      for rows in tables:
        value = rows.get(variant, {}).get(metric)
        if value is None:
          continue
        values.append(value)
        ref = rows.get(reference, {}).get(metric)
        if ref is not None and variant != reference:
          gaps.append(value - ref)
      if not values:
        continue
      summary[variant][metric] = {
          "mean": float(np.mean(values)), "n": len(values),
          "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
          "gap": float(np.mean(gaps)) if gaps else None,
          "better": int(sum(sign * g > 0 for g in gaps)) if gaps else None,
          "paired": len(gaps)}
  return summary


def markdown(summary, metric):
  """One metric's Markdown table: variant | mean | std | seeds | gap | better."""
  digits = 5 if metric == "flicker" else 4 if metric == "ssim" else 3
  rows = []
  for variant in summary.values():
    cell = variant.get(metric)
    if cell is not None:
      rows.append((variant["name"], {
          "mean": f"{cell['mean']:.{digits}f}",
          "std": None if cell["std"] is None else f"{cell['std']:.{digits}f}",
          "seeds": cell["n"],
          "gap to reference": None if cell["gap"] is None else f"{cell['gap']:+.{digits}f}",
          "better than reference": (None if cell["better"] is None else
                                    f"{cell['better']} of {cell['paired']}")}))
  return f"{metric}\n" + common.markdown_table(
      rows, ("mean", "std", "seeds", "gap to reference", "better than reference"))


def main(argv):
  del argv
  summary = summarise(load_tables(_TABLES.value), _REFERENCE.value)
  print("\n\n".join(markdown(summary, metric) for metric in METRICS))
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      json.dump({"tables": _TABLES.value, "reference": _REFERENCE.value, "rows": summary}, f,
                indent=1)


if __name__ == "__main__":
  app.run(main)
