"""Base config: the virtual cellist at 128x128, trainable on a 2-core CPU.

Every other config imports this one and overrides a few fields. Run as
  python train.py --config=configs/default.py --workdir=runs/x --config.stage=khp
and override any field from the command line (--config.batch_size=8).
"""

import ml_collections


def get_config():
  """The default configuration."""
  config = ml_collections.ConfigDict()
  config.stage = "khp"  # khp | cvg | stu | all
  config.dataset_dir = "data/synth_cello"
  config.seed = 0
  config.strategy = "auto"  # See apvg_tf/strategy.py.
  config.mixed_precision = False
  config.deterministic = False
  config.resolution = 128

  # Training loop (shared by every stage).
  config.window_frames = 64
  config.batch_size = 16  # Global: split over replicas.
  config.num_train_steps = 3000
  config.log_every_steps = 50
  config.image_every_steps = 500
  config.checkpoint_every_steps = 250
  config.max_checkpoints = 3
  # The paper: Adam, learning rate 1e-3 decreasing to 1.25e-4 (here exponentially, over the
  # run), Kaiming initialisation.
  config.learning_rate = 1e-3
  config.final_learning_rate = 1.25e-4

  # Stage 1: keypoints and heatmaps from audio (KP + DLT).
  config.khp = ml_collections.ConfigDict()
  config.khp.mean_pose_condition = True  # The paper's instrument-related feature.
  config.khp.dlt_loss = True  # Eq. (3) through the DLT.
  config.khp.coord_loss_weight = 1.0  # Eq. (2).
  config.khp.heatmap_loss_weight = 0.05  # Eq. (3).
  config.khp.heatmap_size = 64
  config.khp.tent_radius = 1.0
  config.khp.heatmap_parts = False
  config.khp.encoder_channels = (64, 128, 128)
  config.khp.audio_embedding = 256
  config.khp.pose_embedding = 128
  config.khp.lstm_units = 256

  # Evaluation.
  config.eval = ml_collections.ConfigDict()
  config.eval.split = "test"
  config.eval.chunk_frames = 256  # Frames per streamed chunk (recurrent state carried over).
  config.eval.max_clips = 0  # 0: all clips of the split.
  return config
