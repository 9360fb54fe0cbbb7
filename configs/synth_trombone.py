"""The virtual trombonist on a 2-core CPU (128x128): synth_cello's settings on trombone data.

  python preprocess.py synth --instrument=trombone --minutes=10 --resolution=128 \
      --out=data/synth_trombone
  python train.py --config=configs/synth_trombone.py --workdir=runs/synth_trombone \
      --config.stage=khp
  python evaluate.py --config=configs/synth_trombone.py --workdir=runs/synth_trombone

Runtime: the KHP about 12 minutes on 2 cores (1500 steps, beside another training).
Expected result (KHP, test pieces): kp_distance 0.71x the better of its mean-pose and
nearest-neighbour baselines at the best validation step, beat_align 1.05x the real motion's
(experiments/results/khp.md). The CVG and STU are not measured on the trombonist.
"""

from configs import synth_cello


def get_config():
  config = synth_cello.get_config()
  config.dataset_dir = "data/synth_trombone"
  # The shared 8 x 64-frame windows: the slide follows pitch, which a short window hears.
  config.khp.batch_size = 0
  config.khp.window_frames = 0
  config.khp.lookahead_frames = 0  # The trombone's KP was measured without one.
  # The renderer setting is synth_cello's (real keypoints with augmentation, L2 leading); with
  # the local D on, its crops follow the slide arm (26-30 px at 128, as the cello's bow arm)
  # and hands (~9 px), so the same local_crop_size fits. Not measured on the trombonist.
  return config
