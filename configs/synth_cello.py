"""The virtual cellist on a 2-core CPU (128x128): the setting of the measured results.

  python preprocess.py synth --instrument=cello --minutes=10 --resolution=128 \
      --out=data/synth_cello
  python train.py --config=configs/synth_cello.py --workdir=runs/synth_cello --config.stage=all
  python evaluate.py --config=configs/synth_cello.py --workdir=runs/synth_cello

Runtime on 2 CPU cores, alone: the data about 3 minutes; KHP about 10 minutes (1500 steps),
CVG 31.5 minutes (800 steps), STU about 11 minutes (300 steps); evaluation a few minutes.

Expected result (test pieces):
  KHP: kp_distance 0.72x-0.75x the better of its mean-pose and nearest-neighbour baselines,
       beat_align 0.85x-1.04x the real motion's, over three seeds
       (experiments/results/khp.md);
  CVG: psnr 28.14 dB, above the mean training frame (27.90) and the nearest-neighbour frame
       (26.17) (experiments/results/cvg.md);
  STU: psnr 28.13 dB on the mean of five seeds, level with its coarse video
       (experiments/results/table1_seeds.md).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset_dir = "data/synth_cello"
  config.resolution = 128
  config.batch_size = 8  # The CVG's batch: 8 x 64-frame windows fit 2 cores.
  config.window_frames = 64
  # The KP's 8.5 s windows hold the rests after which the bow is set back, its LSTM's cue.
  config.khp.batch_size = 2
  config.khp.window_frames = 256
  config.khp.pitch_shift = 3  # Transposed music: the bow learns from more than 10 minutes.
  config.khp.pitch_arm_units = 128  # The left arm's own path hears every window untransposed.
  config.khp.lookahead_frames = 15  # 0.5 s ahead: the motion meets the onsets (beat_align).
  config.num_train_steps = 1500
  config.eval_every_steps = 100  # Validation kp_distance; the best checkpoint is kept.
  config.cvg.num_train_steps = 800  # About half an hour on 2 cores.
  # Small STU steps and two VGG blocks: eq. (7)'s VGG dominates a CPU step's cost.
  config.stu.batch_size = 2
  config.stu.rollout_frames = 4
  config.stu.perceptual_layers = ("conv1_2", "conv2_2")
  config.stu.num_train_steps = 300
  # L2 leads, as in the CVG (PSNR rewards the conditional mean); a choice, not a measured gain.
  config.stu.l1_weight = 0.0
  config.stu.l2_weight = 10.0
  config.stu.perceptual_weight = 0.001
  return config
