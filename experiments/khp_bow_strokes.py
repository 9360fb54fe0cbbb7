"""Where the virtual cellist's KP loses the bow: bow-hand error by strokes since the last rest.

  python evaluate.py --config=configs/synth_cello.py --workdir=RUN --stages=khp
  python experiments/khp_bow_strokes.py --dataset_dir=data/synth_cello --runs=RUN[,RUN2,...]

After a rest the virtual cellist sets the bow at the frog; from there its position is the sum
of the strokes played since (`music.bowing`). So a KP that hears the strokes should know the
bow best right after a rest, and a KP that memorised its training pieces' bowing is worse than
the mean pose once it has lost count. The test frames are grouped by the number of bow
strokes begun since the last rest (rests, where no note sounds, apart), and per group the
right hand's `kp_distance` is given for the KP (per frame, the mean over the runs) and for
the mean training pose. The notes come from the dataset's manifest (synthetic datasets
record them); the predictions from each run's khp/eval_<split>/predictions.npz, which
`evaluate.py` writes. Prints a Markdown table; `--out` also writes it as JSON.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from apvg_tf import cli, data, skeleton  # pylint: disable=g-import-not-at-top
from apvg_tf.errors import InputError  # pylint: disable=g-import-not-at-top
from apvg_tf.synth import dataset as synth_dataset  # pylint: disable=g-import-not-at-top
from apvg_tf.synth import music  # pylint: disable=g-import-not-at-top
from experiments import common  # pylint: disable=g-import-not-at-top

_DATASET = flags.DEFINE_string("dataset_dir", None, "A synthetic cello dataset.")
_RUNS = flags.DEFINE_list("runs", None, "Run folders whose KP was evaluated on the split.")
_SPLIT = flags.DEFINE_string("split", "test", "The split the runs were evaluated on.")
_OUT = flags.DEFINE_string("out", None, "Optional JSON file for the table.")
flags.mark_flags_as_required(["dataset_dir", "runs"])

# (row name, first and last stroke count of the group; None: the rests).
GROUPS = (("rests", None), ("1st stroke after a rest", (0, 0)), ("2nd stroke", (1, 1)),
          ("3rd stroke", (2, 2)), ("4th to 6th stroke", (3, 5)), ("7th stroke on", (6, 10**9)))


def main(argv):
  del argv
  manifest = data.load_manifest(_DATASET.value)
  notes = synth_dataset.recorded_notes(manifest)
  mean_pose = np.asarray(manifest["mean_pose"], np.float32)[skeleton.PARTS["right_hand"], :2]
  predictions = []
  for run in _RUNS.value:
    path = os.path.join(run, "khp", f"eval_{_SPLIT.value}", "predictions.npz")
    if not os.path.exists(path):
      raise InputError(f"{path} is missing: run `python evaluate.py --config=CONFIG "
                       f"--workdir={run} --stages=khp --split={_SPLIT.value} "
                       f"--config.dataset_dir={_DATASET.value}` first")
    predictions.append(np.load(path))
  errors = {name: ([], []) for name, _ in GROUPS}
  for clip in data.split_clips(manifest, _SPLIT.value):
    clip_id = clip["clip_id"]
    if any(f"{clip_id}/pred" not in p.files for p in predictions):
      raise InputError(f"clip {clip_id} is not in every run's predictions: were they "
                       f"evaluated on {_DATASET.value}?")
    real = predictions[0][f"{clip_id}/real"][:, skeleton.PARTS["right_hand"]]
    visible = real[..., 2] > 0
    kp = np.mean([np.linalg.norm(p[f"{clip_id}/pred"][:, skeleton.PARTS["right_hand"]] -
                                 real[..., :2], axis=-1) for p in predictions], 0)
    mean = np.linalg.norm(mean_pose - real[..., :2], axis=-1)
    count = music.strokes_since_rest(notes[clip_id], np.arange(len(real)) / manifest["fps"])
    for name, span in GROUPS:
      frames = count < 0 if span is None else (count >= span[0]) & (count <= span[1])
      errors[name][0].append(kp[frames][visible[frames]])
      errors[name][1].append(mean[frames][visible[frames]])
  total = sum(np.concatenate(e[0]).size for e in errors.values())
  rows, result = [], {}
  for name, _ in GROUPS:
    kp, mean = (np.concatenate(e) for e in errors[name])
    result[name] = {"points": int(kp.size), "share": kp.size / max(total, 1),
                    "kp_distance": float(kp.mean()) if kp.size else None,
                    "kp_distance_mean_pose": float(mean.mean()) if mean.size else None}
    rows.append((f"{name} ({100 * result[name]['share']:.0f}%)",
                 {"KP": result[name]["kp_distance"],
                  "mean pose": result[name]["kp_distance_mean_pose"]}))
  print(common.markdown_table(rows, ("KP", "mean pose")))
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      json.dump({"dataset_dir": _DATASET.value, "split": _SPLIT.value, "runs": _RUNS.value,
                 "groups": result}, f, indent=1)


if __name__ == "__main__":
  cli.run(main)
