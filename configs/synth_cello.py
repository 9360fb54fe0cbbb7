"""The virtual cellist on a 2-core CPU (128x128): the setting of the measured results.

  python preprocess.py synth --instrument=cello --minutes=10 --resolution=128 \
      --out=data/synth_cello
  python train.py --config=configs/synth_cello.py --workdir=runs/synth_cello --config.stage=all
  python evaluate.py --config=configs/synth_cello.py --workdir=runs/synth_cello

Runtime on 2 CPU cores, alone: the data about 3 minutes; KHP about 10 minutes (1500 steps),
CVG 31.5 minutes (800 steps), STU about 11 minutes (300 steps; 23 minutes beside another
training, renderer.md); evaluation a few minutes.

Expected result (test pieces):
  KHP: kp_distance 0.72x-0.75x the better of its mean-pose and nearest-neighbour baselines,
       beat_align 0.85x-1.04x the real motion's, over three seeds
       (experiments/results/khp.md);
  CVG: psnr 28.14 dB, above the mean training frame (27.90) and the nearest-neighbour frame
       (26.17) (experiments/results/cvg.md);
  STU (the renderer setting below, one seed): pose_render_psnr 30.80 dB and
       pose_render_psnr_arm 24.43 dB (the paper's training: 28.26 and 21.74), fid_vgg16 57.2
       (the demo model: 92.3), psnr 26.84 dB against the real video
       (experiments/results/renderer.md).
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
  # L2 leads: on the real poses the frame is a function of the pose, so its mean is sharp.
  config.stu.l1_weight = 0.0
  config.stu.l2_weight = 10.0
  # The renderer setting (Everybody Dance Now, vid2vid, pix2pixHD): the STU learns to draw the
  # pose it is given from the real keypoints, and to draw it sharply from its discriminators
  # (docs/pipeline.md, "Training the renderer"). A deviation from the paper's K^pred.
  config.stu.train_keypoints = "real"
  config.stu.keypoint_jitter = 0.004  # About half a pixel at 128: tremor between frames.
  config.stu.keypoint_drift = 0.008  # Mean offset 0.010: the KP's body error (khp.md).
  config.stu.keypoint_drop = 0.05  # A limb is drawn from its neighbours when a point is missing.
  # 0: a K^pred example's target shows the bow hand ~0.08 of the frame away from where the KP
  # put it (khp.md), which rewards hedging between poses, the blur this setting removes.
  config.stu.predicted_fraction = 0.0
  # The discriminator-led setting (pix2pixHD's and EDN's weights: 2 pose-conditioned scales,
  # feature matching 10, a local D, adversarial 1.0) drew blobs at the hands after 300 and 600
  # steps (renderer.md); L2 leads, with the paper's one audio-video D at a small weight.
  config.stu.disc_scales = 1
  config.stu.disc_pose_condition = False
  config.stu.adversarial_weight = 0.005
  config.stu.feature_matching_weight = 0.0
  config.stu.perceptual_weight = 0.001
  config.stu.local_disc_weight = 0.0
  return config
