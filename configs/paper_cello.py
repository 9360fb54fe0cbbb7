"""The paper's setting for the cello, for a GPU: 256x256 video, the full-size networks.

  python preprocess.py urmp --root=SUB_URMP --instrument=cello --out=data/urmp_cello   # or videos
  python train.py --config=configs/paper_cello.py --workdir=runs/paper_cello --config.stage=all
  python evaluate.py --config=configs/paper_cello.py --workdir=runs/paper_cello

The paper (Sec. IV-A): Sub-URMP cello, frames cropped square and resized to 256x256, CQT of
84 bins with hop 256 at 44.1 kHz (87-column windows), Adam from 1e-3 down to 1.25e-4, Kaiming
initialisation, VGG-19 (ImageNet) for the perceptual loss. Runs on one or several GPUs
(MirroredStrategy; batch sizes are global); on GPUs with tensor cores add
--config.mixed_precision=True (float16 with loss scaling; docs/scaling.md).

Expected result: the paper's Table I row "Ours" is PSNR 17.07 and SSIM 0.563 on Sub-URMP
cello; not yet measured here (no GPU on the development machine), so there is no result file
under experiments/results/ (docs/results.md).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset_dir = "data/urmp_cello"
  config.resolution = 256
  config.window_frames = 64
  config.batch_size = 32
  config.num_train_steps = 20000
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  config.cvg.backbone = "vgg19_imagenet"  # The paper's; downloads once (online machines).
  config.cvg.vgg_input_size = 128  # 256 / 2: conv3_1 32x32 -> strides (2, 2) -> 8x8 map.
  config.cvg.image_strides = (2, 2)
  config.cvg.decoder_channels = (256, 128, 64, 32)  # 8 -> 16 -> 32 -> 64 -> 128 -> 256.
  config.cvg.batch_size = 16
  config.stu.encoder_channels = (64, 128, 256, 256, 256)  # 256 -> ... -> 16: s = 16.
  config.stu.gru_filters = 256
  config.stu.disc_channels = (64, 128, 256, 256)
  config.stu.perceptual_layers = ("conv1_2", "conv2_2", "conv3_2", "conv4_2")
  config.stu.batch_size = 8
  return config
