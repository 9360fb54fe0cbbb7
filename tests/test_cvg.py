"""Tests of the CVG stage: model, rollout, scheduled sampling, training, evaluation."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from apvg_tf import data, metrics, streaming
from apvg_tf.errors import InputError
from apvg_tf.evaluation import cvg_eval
from apvg_tf.evaluation import evaluate_run
from apvg_tf.models import coarse_video_generator
from apvg_tf.training import cvg_task, randomness, trainer
from configs import debug, default
from conftest import debug_config, write_random_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  # 11 s clips, so the test clip is long enough for the 300-frame drift numbers.
  return write_random_dataset(tmp_path_factory.mktemp("cvg_data"), seconds=11.0)


_config = debug_config


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
  """A work directory with one KHP step and one CVG step."""
  workdir = str(tmp_path_factory.mktemp("cvg_run"))
  result = {}
  for stage in ("khp", "cvg"):
    result.update(trainer.train_and_evaluate(_config(dataset, stage=stage, num_train_steps=1),
                                             workdir))
  return workdir, result


def _debug_model(first_frame=None, seed=0):
  tf.keras.utils.set_random_seed(seed)
  return coarse_video_generator.coarse_video_generator_from_config(
      debug.get_config().cvg, 64, first_frame=first_frame)


def test_image_encoder_is_vgg16_first_five_layers_frozen_plus_two_convs():
  model = coarse_video_generator.coarse_video_generator_from_config(default.get_config().cvg,
                                                                    128)
  frames = model(tf.zeros([2, 3, 84, 87]))
  assert frames.shape == (2, 3, 128, 128, 3)
  encoder = model.image_encoder
  # VGG-16 conv1_1..conv3_1: 1792 + 36928 + 73856 + 147584 + 295168 weights, all frozen.
  assert encoder.vgg.count_params() == 555328
  assert not encoder.vgg.trainable_weights
  # Two trainable 3x3 convs: 256 -> 128 (stride 2) and 128 -> 128.
  assert sum(int(np.prod(w.shape)) for w in encoder.trainable_weights) == (
      9 * 256 * 128 + 128 + 9 * 128 * 128 + 128)
  assert encoder.output_size == 8


def test_untrained_model_outputs_its_first_frame():
  first = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
  model = _debug_model(first)
  frames = model(tf.random.normal([1, 3, 84, 87])).numpy()
  # The decoder's last layer starts at zero, so V_t = sigmoid(logit(first)) = first, up to
  # the clipping of the logit to [1/255, 254/255].
  expected = np.clip(first / 255.0, 1 / 255, 254 / 255)
  np.testing.assert_allclose(frames, np.broadcast_to(expected, frames.shape), atol=1e-5)


def test_rollout_streams_300_frames_in_chunks_exactly():
  model = _debug_model()
  model(tf.zeros([1, 1, 84, 87]))
  kernel = model.image_decoder.out.kernel
  kernel.assign(0.1 * tf.random.normal(kernel.shape, seed=1))  # Make frames depend on inputs.
  audio = tf.random.normal([1, 300, 84, 87], seed=2)
  noise = tf.random.normal([1, 300, model.z_dim], seed=3)
  step = streaming.coarse_step(model)
  whole = streaming.stream_all(step, tuple(model.initial_state(1)), audio[0], 300,
                               noise=noise[0])["frames"]
  assert whole.shape == (300, 64, 64, 3)
  assert np.all(np.isfinite(whole))
  assert 0 <= whole.min() and whole.max() <= 1
  assert np.abs(whole[-1] - whole[0]).max() > 0  # It does move.
  chunks = streaming.stream_all(step, tuple(model.initial_state(1)), audio[0], 300,
                                noise=noise[0], chunk_frames=128)["frames"]
  np.testing.assert_allclose(chunks, whole, atol=1e-5)


def test_teacher_forcing_and_own_frames_are_the_two_ends_of_scheduled_sampling():
  model = _debug_model()
  model(tf.zeros([1, 1, 84, 87]))
  kernel = model.image_decoder.out.kernel
  kernel.assign(0.1 * tf.random.normal(kernel.shape, seed=1))
  audio = tf.random.normal([2, 5, 84, 87], seed=2)
  noise = tf.random.normal([2, 5, model.z_dim], seed=3)
  real = tf.random.uniform([2, 5, 64, 64, 3], seed=4)
  h, c, first = model.initial_state(2)
  maps, _, _ = model.encode_audio(audio, h, c)
  teacher, _ = model.rollout(maps, real[:, 0], noise, real_previous=real,
                             feed_own=tf.zeros([2, 5], tf.bool))
  np.testing.assert_allclose(teacher, model.decode_parallel(maps, real, noise), atol=1e-5)
  own, _ = model.rollout(maps, first, noise, real_previous=real,
                         feed_own=tf.ones([2, 5], tf.bool))
  np.testing.assert_allclose(own, model(audio, noise=noise), atol=1e-5)


def test_scheduled_sampling_probability_ramps_over_training(dataset):
  config = _config(dataset, num_train_steps=100)
  config.cvg.sampling_start, config.cvg.sampling_end = 0.1, 0.6
  config.cvg.sampling_max_prob = 0.8
  task = cvg_task.CVGTask(config, None)
  values = [float(task.sampling_probability(s)) for s in (0, 10, 35, 60, 100)]
  np.testing.assert_allclose(values, [0.0, 0.0, 0.4, 0.8, 0.8], atol=1e-6)


def test_one_training_step_on_debug_config(trained):
  workdir, result = trained
  assert set(result["cvg"]) == {"l1", "l2", "total", "sampling_prob"}
  assert all(np.isfinite(v) for v in result["cvg"].values())
  assert 0 < result["cvg"]["l1"] < 1
  assert tf.train.latest_checkpoint(os.path.join(workdir, "cvg", "checkpoints"))
  assert os.listdir(os.path.join(workdir, "cvg", "train"))  # TensorBoard events.


def test_evaluate_merges_khp_and_cvg_metrics(dataset, trained):
  workdir, _ = trained
  config = _config(dataset)
  result = evaluate_run.evaluate_run(config, workdir)
  with open(os.path.join(workdir, "metrics.json")) as f:
    assert json.load(f) == result
  assert result["khp_step"] == 1 and result["cvg_step"] == 1
  for key in ("kp_distance", "beat_align", "psnr", "ssim", "flicker", "psnr_mean_frame",
              "psnr_nn_frame", "psnr_knn_mean_frame", "psnr_rollout_first100",
              "psnr_rollout_last100"):
    assert np.isfinite(result[key]), key
  assert result["rollout_clips"] == 1 and result["frames"] == 330 and result["clips"] == 1
  assert os.path.getsize(os.path.join(workdir, "cvg", "eval_test", "preview.mp4")) > 0


def test_canvas_starts_at_the_mean_training_frame(dataset):
  config = _config(dataset)
  frames = [data.resize_frames(clip["frames"], config.resolution)
            for clip in data.read_clips(dataset, "train")]
  expected = np.concatenate(frames).astype(np.float64).mean(0) / 255
  got = cvg_task.mean_training_frame(config, num_frames=10**6)  # Stride 1: every frame.
  np.testing.assert_allclose(got, expected, atol=1e-5)
  # 660 train frames / 50 = stride 13: frames 0, 13, 26, ... of each clip.
  sparse = np.concatenate([f[::13] for f in frames]).astype(np.float64).mean(0) / 255
  np.testing.assert_allclose(cvg_task.mean_training_frame(config, num_frames=50), sparse,
                             atol=1e-5)


def test_flicker_known_value():
  real = np.zeros((3, 2, 2, 3), np.uint8)
  generated = real.copy()
  generated[1] = 51  # Up by 0.2 at t=1, back down at t=2: |0.2| + |-0.2| per value.
  total, count = metrics.flicker(generated, real)
  assert count == 2 * 12
  np.testing.assert_allclose(total / count, 0.2, rtol=1e-6)


def test_mismatched_sizes_and_bad_first_frame_are_input_errors(dataset):
  with pytest.raises(InputError, match="not the resolution 100"):
    coarse_video_generator.coarse_video_generator_from_config(debug.get_config().cvg, 100)
  config = _config(dataset)
  config.cvg.first_frame = ("train", 0, 10**6)
  with pytest.raises(InputError, match="no frame 1000000"):
    cvg_task.load_first_frame(config)
  config.cvg.first_frame = ("train", 5, 0)
  with pytest.raises(InputError, match="has 2 clips, no clip 5"):
    cvg_task.load_first_frame(config)


@pytest.mark.parametrize("size,target", [(128, 64), (256, 64), (64, 32), (96, 64)])
def test_antialiased_resize_equals_tf_image_resize(size, target):
  # Even integer factors use the depthwise-conv form (exportable to ONNX); 96 -> 64 falls back.
  frames = tf.random.stateless_uniform([2, size, size, 3], seed=[size, target])
  expected = tf.image.resize(frames, [target, target], method="bilinear", antialias=True)
  np.testing.assert_allclose(coarse_video_generator.antialiased_resize(frames, target),
                             expected, atol=1e-6)


def test_previous_frame_features_are_scaled_to_the_audio_maps_range():
  # Unscaled, VGG conv3_1 has a std of about 25 on frames in [0, 1], against about 0.15 for
  # the audio map beside it in the fusion conv, and the CVG learnt no motion
  # (experiments/results/cvg.md).
  frame = np.full((1, 128, 128, 3), 0.2, np.float32)
  frame[:, 30:90, 40:80] = (0.8, 0.5, 0.3)
  frame += np.random.default_rng(0).normal(0, 0.02, frame.shape).astype(np.float32)
  model = coarse_video_generator.coarse_video_generator_from_config(default.get_config().cvg,
                                                                    128)
  encoder = model.image_encoder
  raw = encoder.vgg(coarse_video_generator.antialiased_resize(frame, 64))["conv3_1"]
  assert float(tf.math.reduce_std(raw)) > 10
  scaled = float(tf.math.reduce_std(raw * encoder.feature_scale))
  assert 0.3 < scaled < 3
  assert encoder.get_config()["feature_scale"] == default.get_config().cvg.vgg_feature_scale


def _rollout_task(dataset, rollout_start):
  config = _config(dataset)
  config.cvg.rollout_start = rollout_start
  task = cvg_task.CVGTask(config, data.load_manifest(dataset))
  task.build(tf.keras.optimizers.Adam())
  kernel = task.model.image_decoder.out.kernel
  kernel.assign(0.1 * tf.random.normal(kernel.shape, seed=1))  # So frames depend on inputs.
  return task


@pytest.mark.parametrize("rollout_start", ["real", "first_frame"])
def test_rollout_start_sets_what_the_first_step_sees(dataset, rollout_start):
  task = _rollout_task(dataset, rollout_start)
  frames = tf.random.uniform([2, 4, 64, 64, 3], maxval=256, dtype=tf.int32, seed=5)
  batch = {"frames": tf.cast(frames, tf.uint8), "audio": tf.random.normal([2, 4, 84, 87])}
  other = dict(batch, frames=tf.concat([255 - batch["frames"][:, :1], batch["frames"][:, 1:]], 1))
  random = lambda: randomness.StepRandom(task.config.seed, 7, 2)
  # Every step fed the model's own previous frame: only the start can bring in frame 0.
  _, coarse = task.compute_losses(batch, 2, random(), feed_own_probability=1.0)
  _, coarse_other = task.compute_losses(other, 2, random(), feed_own_probability=1.0)
  if rollout_start == "first_frame":
    np.testing.assert_allclose(coarse, coarse_other, atol=1e-6)
    # ... and it is the inference rollout of the stored first frame over the same audio maps.
    h, c, first = task.model.initial_state(2)
    maps, _, _ = task.model.encode_audio(batch["audio"], h, c)
    noise = random().normal("cvg/z", 2, [3, task.cvg.z_dim])
    expected, _ = task.model.rollout(maps[:, 1:], first, noise)
    np.testing.assert_allclose(coarse, expected, atol=1e-5)
  else:
    assert np.abs(coarse[:, 0] - coarse_other[:, 0]).max() > 1e-3


def test_unknown_rollout_start_is_an_input_error(dataset):
  config = _config(dataset)
  config.cvg.rollout_start = "middle"
  with pytest.raises(InputError, match="rollout_start"):
    cvg_task.CVGTask(config, data.load_manifest(dataset))


def test_validation_score_is_minus_the_psnr_of_inference_rollouts(tmp_path):
  dataset = write_random_dataset(tmp_path / "data", splits=("train", "validation", "test"),
                                 seconds=3.0)
  config = _config(dataset)
  config.cvg.validation_frames = 40
  task = cvg_task.CVGTask(config, data.load_manifest(dataset))
  task.build(tf.keras.optimizers.Adam())
  clip = next(data.read_clips(dataset, "validation"))
  windows = data.clip_windows(clip, task.manifest)[:40]
  real = data.resize_frames(clip["frames"][:40], config.resolution)
  generated = streaming.generate_coarse(task.model, windows, config.eval.chunk_frames, seed=0)
  expected = -metrics.frame_scores(generated, real)[0].mean()
  assert task.validation_score() == pytest.approx(expected, abs=1e-4)
  config.cvg.validation_frames = 0
  assert cvg_task.CVGTask(config, task.manifest).validation_score() is None


def test_k_nearest_neighbours_match_a_full_sort():
  rng = np.random.default_rng(0)
  queries, references = rng.normal(size=(7, 5)), rng.normal(size=(40, 5))
  distance = ((queries[:, None] - references[None]) ** 2).sum(-1)
  np.testing.assert_array_equal(metrics.nearest_neighbour_indices(queries, references, 3, k=6),
                                np.argsort(distance, 1)[:, :6])
  np.testing.assert_array_equal(metrics.nearest_neighbour_indices(queries, references),
                                np.argmin(distance, 1))
  assert metrics.nearest_neighbour_indices(queries, references, k=40).shape == (7, 40)


def test_knn_mean_baseline_averages_the_nearest_training_frames(dataset):
  config = _config(dataset)
  manifest = data.load_manifest(dataset)
  ref_windows, ref_ids = cvg_eval._train_reference(config, manifest)  # pylint: disable=protected-access
  clip = next(data.read_clips(dataset, "test", with_frames=False))
  windows = data.clip_windows(clip, manifest)[:20]
  ids = ref_ids[metrics.nearest_neighbour_indices(windows.reshape(20, -1), ref_windows, k=4)]
  mean, nearest, knn = cvg_eval.train_frames(config, {"c": ids})
  train = [data.resize_frames(c["frames"], config.resolution)
           for c in data.read_clips(dataset, "train")]
  np.testing.assert_allclose(mean, np.concatenate(train).astype(np.float64).mean(0))
  picked = np.stack([[train[c][f] for c, f in row] for row in ids]).astype(np.float64)
  np.testing.assert_array_equal(nearest["c"], picked[:, 0])
  assert np.abs(knn["c"] - picked.mean(1)).max() <= 0.5 + 1e-3  # Rounded to uint8.
  assert np.abs(knn["c"].astype(float) - picked[:, 0]).max() > 10  # Not just the nearest.
