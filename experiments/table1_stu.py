"""The paper's Tables I and III on a dataset: STU ablations and a per-frame pose-to-image baseline.

  python experiments/table1_stu.py --config=configs/synth_cello.py --workdir=runs/table1_cello \
      [--stages_from=runs/cello_all] [--override=stu.num_train_steps=150]

Table I removes one part at a time: the coarse video (w/o CVG), the keypoint heatmaps and the
GCN (w/o KHP), the ConvGRU and the GCN together (w/o STU: a plain UNet over coarse frame,
heatmap and audio), the GCN alone, the ConvGRU alone. Table III sets the full model against
the per-frame baseline in the Everybody-Dance-Now manner: the same UNet and discriminator on
the heatmaps alone (no coarse video, no audio, no temporal state, no GCN). The CVG-alone row
is the full run's coarse video (`psnr_coarse`).

Every variant's STU trains on the same frozen KHP and CVG: those of `--stages_from` (linked
into each variant's folder), or, without it, the ones `--config.stage=all` trains in the
full variant's folder first. Finished runs are not retrained. Prints two Markdown tables and
writes <workdir>/table1.json.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # pylint: disable=g-import-not-at-top

from experiments import common

_CONFIG = flags.DEFINE_string("config", "configs/synth_cello.py", "Base config file.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/table1", "Folder for the variants' runs.")
_STAGES_FROM = flags.DEFINE_string(
    "stages_from", None, "A run folder with trained khp/ and cvg/ stages that every variant "
    "shares (default: train them in <workdir>/full).")
_OVERRIDE = flags.DEFINE_multi_string("override", [], "Extra KEY=VALUE config overrides.")

FULL = {"stu.use_coarse": True, "stu.use_heatmap": True, "stu.use_gru": True,
        "stu.use_gcn": True, "stu.use_audio": True}
# (run folder, the paper's row name, overrides of the full model, table).
VARIANTS = (
    ("full", "Ours (full)", {}, "I"),
    ("wo_cvg", "w/o CVG", {"stu.use_coarse": False}, "I"),
    ("wo_khp", "w/o KHP", {"stu.use_heatmap": False, "stu.use_gcn": False}, "I"),
    ("wo_stu", "w/o STU", {"stu.use_gru": False, "stu.use_gcn": False}, "I"),
    ("wo_gcn", "w/o GCN", {"stu.use_gcn": False}, "I"),
    ("wo_gru", "w/o CNN-GRU", {"stu.use_gru": False}, "I"),
    ("pix2pix", "per-frame pose-to-image (pix2pix)",
     {"stu.use_coarse": False, "stu.use_gru": False, "stu.use_gcn": False,
      "stu.use_audio": False}, "III"),
)
COLUMNS = ("psnr", "ssim", "flicker")


def _share_stages(source, workdir):
  """Links source/khp and source/cvg into workdir (the frozen stages every variant uses)."""
  os.makedirs(workdir, exist_ok=True)
  for stage in ("khp", "cvg"):
    link, target = os.path.join(workdir, stage), os.path.abspath(os.path.join(source, stage))
    if not os.path.isdir(target):
      raise SystemExit(f"{source!r} has no trained {stage} stage ({target} is missing); train "
                       f"it with train.py --config.stage={stage} or leave out --stages_from")
    if not os.path.lexists(link):
      os.symlink(target, link)


def main(argv):
  del argv
  extra = dict(o.split("=", 1) for o in _OVERRIDE.value)
  source = _STAGES_FROM.value
  rows = {}
  for folder, name, overrides, table in VARIANTS:
    workdir = os.path.join(_WORKDIR.value, folder)
    stage = "stu"
    if source:
      _share_stages(source, workdir)
    elif folder == "full":
      stage = "all"  # Trains KHP, CVG and STU here; the other variants link to the first two.
    else:
      _share_stages(os.path.join(_WORKDIR.value, "full"), workdir)
    metrics = common.run_variant(_CONFIG.value, workdir,
                                 {"stage": stage, **FULL, **overrides, **extra},
                                 stages=["stu"])
    rows[folder] = (name, metrics["stages"]["stu"], table)
  full = rows["full"][1]
  coarse = ("CVG alone (coarse video)", {"psnr": full["psnr_coarse"],
                                         "ssim": full["ssim_coarse"]})
  text = []
  for table, extra_rows in (("I", [coarse]), ("III", [])):
    text.append(f"Table {table}\n" + common.markdown_table(
        [(n, m) for n, m, t in rows.values() if t == table or n == "Ours (full)"] + extra_rows,
        COLUMNS))
  print("\n\n".join(text))
  with open(os.path.join(_WORKDIR.value, "table1.json"), "w") as f:
    json.dump({"config": _CONFIG.value, "overrides": extra, "stages_from": source,
               "rows": {k: {"name": n, "table": t, **m} for k, (n, m, t) in rows.items()}},
              f, indent=1)


if __name__ == "__main__":
  app.run(main)
