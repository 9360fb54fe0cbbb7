"""Tiny config for tests: a few steps on a tiny dataset, seconds on a CPU.

  python preprocess.py synth --instrument=cello --minutes=0.5 --resolution=64 \
      --out=runs/debug_data
  python train.py --config=configs/debug.py --workdir=runs/debug --config.stage=all \
      --config.dataset_dir=runs/debug_data

Expected result: the loop runs end to end in seconds per stage; the networks are too small
to learn anything (the tests use it: tests/conftest.py).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.resolution = 64
  config.window_frames = 8
  config.batch_size = 2
  config.num_train_steps = 2
  config.log_every_steps = 1
  config.image_every_steps = 1
  config.checkpoint_every_steps = 1
  config.eval_every_steps = 1
  config.khp.heatmap_size = 16
  config.khp.encoder_channels = (8, 8, 8)
  config.khp.audio_embedding = 16
  config.khp.pose_embedding = 8
  config.khp.lstm_units = 16
  config.eval.chunk_frames = 16
  config.eval.fid_max_frames = 16  # VGG on a few frames: the tests check the mechanics.
  config.cvg.vgg_input_size = 32  # conv3_1 8x8 -> 4x4 map -> 3 + 1 upsamplings -> 64x64.
  config.cvg.image_channels = (8, 8)
  config.cvg.audio_channels = (8, 8, 8)
  config.cvg.audio_embedding = 16
  config.cvg.lstm_units = 16
  config.cvg.audio_map_channels = 4
  config.cvg.z_dim = 4
  config.cvg.decoder_channels = (8, 8, 8)
  config.cvg.rollout_frames = 4
  config.cvg.eval_preview_seconds = 1.0
  config.stu.encoder_channels = (8, 8, 8)  # 64 -> 32 -> 16.
  config.stu.gru_filters = 8
  config.stu.gcn_layers = 1
  config.stu.audio_channels = (8, 8, 8)
  config.stu.audio_embedding = 16
  config.stu.audio_map_channels = 2
  config.stu.disc_channels = (8, 8)
  config.stu.disc_audio_embedding = 8
  config.stu.local_crop_size = 16
  config.stu.local_disc_channels = (8, 8)
  config.stu.perceptual_layers = ("conv1_2",)
  config.stu.rollout_frames = 4
  config.stu.eval_preview_seconds = 1.0
  config.sync.sequence_frames = 8
  config.sync.window_frames = 16
  config.sync.batch_size = 2
  config.sync.candidates = 4
  config.sync.embedding = 8
  config.sync.audio_channels = (8, 8, 8)
  config.sync.node_units = 8
  config.sync.gcn_layers = 1
  config.sync.pool_heads = 2
  config.sync.temporal_channels = (8, 8)
  config.sync.temporal_strides = (1, 2)
  return config
