"""The STU evaluation of an exported model (one whose work directory is gone, e.g. the demo).

  python experiments/evaluate_export.py --model=saved_models/demo_cello \
      [--dataset_dir=data/synth_cello] [--split=test] [--out=outputs/demo_metrics.json] \
      [--stu_keypoints=predicted]

The export's in-memory models are rebuilt from its own config and variables
(`serving_module.module_from_export`, checked against the SavedModel) and scored by
`stu_eval.evaluate_stu` as `evaluate.py` scores a run: the same frames, the same metrics
(psnr, fid_vgg16, the pose_render family, ...). `--dataset_dir` replaces the dataset its config
names (the virtual performer's data is the same bytes for the same arguments, so a dataset
rebuilt with the export's command is the one it was trained on). Prints and writes the JSON.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apvg_tf  # noqa: F401,E402  pylint: disable=g-import-not-at-top  (Keras 2 first)
from absl import flags  # pylint: disable=g-import-not-at-top

from apvg_tf import cli, serving_module
from apvg_tf.data import manifest as manifest_lib
from apvg_tf.evaluation import stu_eval
from configs import default

_MODEL = flags.DEFINE_string("model", "saved_models/demo_cello", "An exported model folder.")
_DATASET = flags.DEFINE_string("dataset_dir", None, "Dataset to score on (default: the "
                               "export's own).")
_SPLIT = flags.DEFINE_string("split", "test", "The split scored.")
_KEYPOINTS = flags.DEFINE_enum("stu_keypoints", "predicted", ["predicted", "real"],
                               "The KP's poses (generation) or the real ones (the oracle).")
_OUT = flags.DEFINE_string("out", None, "JSON file to write (default: print only).")


def main(argv):
  del argv
  module = serving_module.module_from_export(_MODEL.value, default.get_config(),
                                             dataset_dir=_DATASET.value)
  config = module.config
  with config.unlocked():
    if _DATASET.value:
      config.dataset_dir = _DATASET.value
    config.eval.stu_keypoints = _KEYPOINTS.value
  result = stu_eval.evaluate_stu(module.generator, config, _SPLIT.value)
  result.update(model=_MODEL.value, dataset_dir=config.dataset_dir, split=_SPLIT.value,
                stu_keypoints=_KEYPOINTS.value)
  print(json.dumps(result, indent=1))
  if _OUT.value:
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    manifest_lib.write_json_atomic(_OUT.value, result)


if __name__ == "__main__":
  cli.run(main)
