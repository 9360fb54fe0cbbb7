"""What a pose can buy in PSNR on a dataset: test frames recalled from training frames by pose.

  python experiments/stu_headroom.py --config=configs/synth_cello.py --workdir=RUN

For each test frame, the mean of the K training frames whose real keypoints are nearest to
  pred   the KP's keypoints for that frame, predicted from the music as at inference (what a
         pose-to-image model driven by K^pred reaches if it renders the pose it is given);
  real   the frame's real keypoints (the ceiling, were the pose known),
scored against the real frame (PSNR, as `evaluate.py`), beside the mean training frame. RUN
needs a trained khp stage. Prints a Markdown table and writes <workdir>/stu_headroom.json.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apvg_tf  # noqa: F401,E402  pylint: disable=g-import-not-at-top  (Keras 2 first)
from absl import flags  # pylint: disable=g-import-not-at-top
from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from apvg_tf import cli, data, metrics, streaming
from apvg_tf.evaluation import cvg_eval
from apvg_tf.training import stages
from experiments import common

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "A run folder with a trained khp stage.")
flags.mark_flags_as_required(["config", "workdir"])
_K = flags.DEFINE_list("k", ["1", "8", "128"], "Numbers of nearest training frames averaged.")
_SPLIT = flags.DEFINE_string("split", "test", "The split scored.")


def _train_poses(config):
  """Real keypoints of every training frame, flattened, and their (clip index, frame) ids."""
  poses, ids = [], []
  for index, clip in enumerate(data.read_clips(config.dataset_dir, "train", with_frames=False)):
    keypoints = clip["keypoints"][..., :2]
    poses.append(keypoints.reshape(len(keypoints), -1))
    ids.append(np.stack([np.full(len(keypoints), index), np.arange(len(keypoints))], 1))
  return np.concatenate(poses), np.concatenate(ids)


def main(argv):
  del argv
  config = _CONFIG.value
  manifest = data.load_manifest(config.dataset_dir)
  kp = stages.restore(config, _WORKDIR.value, "khp")[0].model
  ks = sorted(int(k) for k in _K.value)
  ref_poses, ref_ids = _train_poses(config)
  queries, real_frames = {}, {}
  for clip in data.read_clips(config.dataset_dir, _SPLIT.value):
    windows = data.clip_windows(clip, manifest, kp.lookahead_frames)
    pred = streaming.predict_keypoints(kp, windows, config.eval.chunk_frames)
    real_frames[clip["clip_id"]] = data.resize_frames(clip["frames"], config.resolution)
    for source, pose in (("pred", pred), ("real", clip["keypoints"][..., :2])):
      queries[(source, clip["clip_id"])] = pose.reshape(len(pose), -1)
  rows, result = [], {}
  # The k nearest are the first k of the max(ks) nearest (nearest first): one search, and
  # one pass over the training frames for every k.
  nearest = {key: ref_ids[metrics.nearest_neighbour_indices(q, ref_poses, k=ks[-1])]
             for key, q in queries.items()}
  mean_frame, _, recalled = cvg_eval.train_frames(
      config, {key + (k,): ids[:, :k] for key, ids in nearest.items() for k in ks})
  for k in ks:
    for source in ("pred", "real"):
      psnr = np.concatenate([metrics.frame_scores(recalled[(source, c, k)], real)[0]
                             for c, real in real_frames.items()])
      result[f"psnr_{source}_pose_k{k}"] = float(psnr.mean())
  mean = np.round(mean_frame).astype(np.uint8)
  result["psnr_mean_frame"] = float(np.concatenate(
      [metrics.frame_scores(np.broadcast_to(mean, real.shape), real)[0]
       for real in real_frames.values()]).mean())
  for k in ks:
    rows.append((f"mean of the {k} training frames nearest in pose",
                 {"K^pred": result[f"psnr_pred_pose_k{k}"],
                  "real pose": result[f"psnr_real_pose_k{k}"]}))
  rows.append(("mean training frame", {"K^pred": result["psnr_mean_frame"]}))
  print(common.markdown_table(rows, ("K^pred", "real pose")))
  with open(os.path.join(_WORKDIR.value, "stu_headroom.json"), "w") as f:
    json.dump({"split": _SPLIT.value, **result}, f, indent=1)


if __name__ == "__main__":
  cli.run(main)
