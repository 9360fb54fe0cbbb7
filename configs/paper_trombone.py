"""The paper's setting for the trombone, for a GPU (see paper_cello.py).

  python train.py --config=configs/paper_trombone.py --workdir=runs/paper_trombone \
      --config.stage=all

Expected result: the paper's Table I row "Ours" is PSNR 15.91 and SSIM 0.397 on Sub-URMP
trombone; not yet measured here (no GPU on the development machine), so there is no result
file under experiments/results/.
"""

from configs import paper_cello


def get_config():
  config = paper_cello.get_config()
  config.dataset_dir = "data/urmp_trombone"
  return config
