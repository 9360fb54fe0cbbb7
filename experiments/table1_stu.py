"""The paper's Tables I and III on a dataset: STU ablations and a per-frame pose-to-image baseline.

  python experiments/table1_stu.py --config=configs/synth_cello.py --workdir=runs/table1_cello \
      [--stages_from=runs/cello_all] [--override=stu.num_train_steps=150] \
      [--variants=wo_gru,pix2pix]

Table I removes one part at a time: the coarse video (w/o CVG), the keypoint heatmaps and the
GCN (w/o KHP), the ConvGRU and the GCN together (w/o STU: a plain UNet over coarse frame,
heatmap and audio), the GCN alone, the ConvGRU alone. Table III sets the full model against
the per-frame baseline in the Everybody-Dance-Now manner: the same UNet and discriminator on
the heatmaps alone (no coarse video, no audio, no temporal state, no GCN), trained, as EDN
is, on the video's real poses and driven at test time by the KP's; a second row trains it
on the KP's poses instead, as the STU is. Every row is evaluated on the KP's poses. The
CVG-alone row is the full run's coarse video (`psnr_coarse`).

Every variant's STU trains on the same frozen KHP and CVG: those of `--stages_from` (linked
into each variant's folder), or, without it, the ones `--config.stage=all` trains in the
full variant's folder first. Finished runs are not retrained, nor evaluated again while their
metrics.json is newer than their checkpoints. `--variants` runs some of them, in the order
given; the tables list every variant evaluated so far. Prints two Markdown tables and writes
<workdir>/table1.json.
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
_VARIANTS = flags.DEFINE_list(
    "variants", None, "Run only these variants, in this order (run folder names; default: "
    "all). The tables list every variant that has been evaluated.")

FULL = {"stu.use_coarse": True, "stu.use_heatmap": True, "stu.use_gru": True,
        "stu.use_gcn": True, "stu.use_audio": True}
# The per-frame baseline: the heatmaps alone, no coarse video, audio or temporal state.
PER_FRAME = {"stu.use_coarse": False, "stu.use_gru": False, "stu.use_gcn": False,
             "stu.use_audio": False}
# The STU trained as the paper trains it (and as this config did before the renderer
# setting): on the KP's poses, L2 leading, one audio-video discriminator.
PAPER_TRAINING = {"stu.train_keypoints": "predicted", "stu.keypoint_jitter": 0.0,
                  "stu.keypoint_drift": 0.0, "stu.keypoint_drop": 0.0, "stu.disc_scales": 1,
                  "stu.disc_pose_condition": False, "stu.adversarial_weight": 0.005,
                  "stu.feature_matching_weight": 0.0, "stu.perceptual_weight": 0.001,
                  "stu.local_disc_weight": 0.0}
# (run folder, the paper's row name, overrides of the full model, table).
VARIANTS = (
    ("full", "Ours (full)", {}, "I"),
    ("paper_training", "Ours, trained as the paper's STU (K^pred, L2-led, one D)",
     PAPER_TRAINING, "I"),
    ("wo_cvg", "w/o CVG", {"stu.use_coarse": False}, "I"),
    ("wo_khp", "w/o KHP", {"stu.use_heatmap": False, "stu.use_gcn": False}, "I"),
    ("wo_stu", "w/o STU", {"stu.use_gru": False, "stu.use_gcn": False}, "I"),
    ("wo_gcn", "w/o GCN", {"stu.use_gcn": False}, "I"),
    ("wo_gru", "w/o CNN-GRU", {"stu.use_gru": False}, "I"),
    ("pix2pix", "per-frame pose-to-image (pix2pix), trained on real poses as EDN is",
     {**PER_FRAME, "stu.train_keypoints": "real"}, "III"),
    ("pix2pix_pred", "per-frame pose-to-image (pix2pix), trained on K^pred",
     PER_FRAME, "III"),
)
# PSNR against the real video rewards a blur where the arm may be; the viewer's measures
# (does the frame draw its pose, sharply, and move) beside it.
COLUMNS = ("psnr", "ssim", "flicker", "pose_render_psnr", "pose_render_psnr_arm",
           "sharpness_arm", "motion_energy_arm", "fid_vgg16")


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
  known = {v[0]: v for v in VARIANTS}
  chosen = _VARIANTS.value or list(known)
  if set(chosen) - set(known):
    raise SystemExit(f"unknown variants {sorted(set(chosen) - set(known))}; choose from "
                     f"{', '.join(known)}")
  if not source and "full" in chosen:
    chosen = ["full"] + [c for c in chosen if c != "full"]  # The others share its stages.
  for folder in chosen:  # In the order given.
    _, _, overrides, _ = known[folder]
    workdir = os.path.join(_WORKDIR.value, folder)
    stage = "stu"
    if source:
      _share_stages(source, workdir)
    elif folder == "full":
      stage = "all"  # Trains KHP, CVG and STU here; the other variants link to the first two.
    else:
      _share_stages(os.path.join(_WORKDIR.value, "full"), workdir)
    common.run_variant(_CONFIG.value, workdir, {"stage": stage, **FULL, **overrides, **extra},
                       stages=["stu"])
  rows = {}
  for folder, name, _, table in VARIANTS:  # Every evaluated variant, in the tables' order.
    path = os.path.join(_WORKDIR.value, folder, "metrics.json")
    if os.path.exists(path):
      with open(path) as f:
        rows[folder] = (name, json.load(f)["stages"]["stu"], table)
  coarse = []
  if "full" in rows:
    full = rows["full"][1]
    coarse = [("CVG alone (coarse video)", {c: full.get(c + "_coarse") for c in COLUMNS})]
  text = []
  for table, extra_rows in (("I", coarse), ("III", [])):
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
