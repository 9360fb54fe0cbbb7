"""Tests of the STU stage: model, discriminator, GAN losses, the chained pipeline, training."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from apvg_tf import data, heatmap, losses, streaming
from apvg_tf.errors import InputError
from apvg_tf.evaluation import evaluate_run
from apvg_tf.models import coarse_video_generator, discriminator, keypoint_predictor
from apvg_tf.models import performance_generator, structured_temporal_unet
from apvg_tf.training import randomness, stu_task, stages, trainer
from configs import debug
from conftest import debug_config, write_random_dataset

RES = 64


def _stu(seed=0, **switches):
  tf.keras.utils.set_random_seed(seed)
  config = debug.get_config().stu
  for key, value in switches.items():
    config[key] = value
  return structured_temporal_unet.structured_temporal_unet_from_config(config, RES, 3)


def _inputs(batch=2, steps=3, seed=0):
  rng = np.random.default_rng(seed)
  keypoints = rng.uniform(0.1, 0.9, (batch, steps, 67, 3)).astype(np.float32)
  keypoints[..., 2] = 1.0
  return {"coarse": rng.random((batch, steps, RES, RES, 3)).astype(np.float32),
          "heatmaps": rng.random((batch, steps, RES, RES, 3)).astype(np.float32),
          "keypoints": keypoints,
          "audio": rng.standard_normal((batch, steps, 84, 87)).astype(np.float32)}


def test_untrained_stu_returns_the_coarse_frame():
  # The last conv starts at zero: V_hq = sigmoid(0 + logit(V_coarse)) = V_coarse (clipped).
  inputs = _inputs()
  frames = _stu()(inputs).numpy()
  np.testing.assert_allclose(frames, np.clip(inputs["coarse"], 1 / 255, 1 - 1 / 255),
                             atol=1e-5)


@pytest.mark.parametrize("initializer", ["zeros", "glorot_uniform"])
def test_gcn_output_initializer_zeros_starts_the_block_as_the_identity(initializer):
  # stu.gcn_output_initializer="zeros": the block starts as the identity on the bottleneck;
  # with random weights (the default) it adds noise at the skeleton's cells.
  model = _stu(gcn_output_initializer=initializer)
  model(_inputs())
  gcn = model.get_layer("keypoint_gcn")
  feature_map = tf.random.stateless_uniform([2, model.map_size, model.map_size,
                                             model.gru_filters], seed=(0, 1))
  keypoints = tf.constant(_inputs()["keypoints"][:, 0])
  added = np.abs((gcn(feature_map, keypoints[..., :2], keypoints[..., 2]) -
                  feature_map).numpy()).max()
  assert (added == 0) == (initializer == "zeros")
  assert model.get_config()["gcn_output_initializer"] == initializer


@pytest.mark.parametrize("switches", [
    {}, {"use_gru": False}, {"use_gcn": False}, {"use_gru": False, "use_gcn": False},
    {"use_coarse": False}, {"use_heatmap": False},
    {"use_coarse": False, "use_gru": False, "use_gcn": False, "use_audio": False}])
def test_every_ablation_builds_and_generates(switches):
  model = _stu(**switches)
  frames, state = model(_inputs(), return_state=True)
  assert frames.shape == (2, 3, RES, RES, 3)
  assert np.all(np.isfinite(frames.numpy()))
  assert state.shape == (2, model.map_size, model.map_size, model.gru_filters)
  names = {layer.name for layer in model.layers}
  assert ("conv_gru" in names) == model.use_gru
  assert ("keypoint_gcn" in names) == model.use_gcn
  assert ("audio_encoder" in names) == model.use_audio


def test_stu_without_any_image_input_is_an_input_error():
  with pytest.raises(InputError, match="no image input"):
    _stu(use_coarse=False, use_heatmap=False)


def test_stu_streams_chunk_by_chunk():
  """Two chunks with the state carried equal one pass (the ConvGRU is the only state)."""
  model = _stu()
  model(_inputs(batch=1, steps=1))  # Build, then move the zero-initialised last conv.
  model.out.set_weights([np.random.default_rng(1).normal(0, 0.05, w.shape)
                         for w in model.out.get_weights()])
  inputs = _inputs(batch=1, steps=4)
  whole = model(inputs).numpy()
  first, state = model({k: v[:, :2] for k, v in inputs.items()}, return_state=True)
  second = model({k: v[:, 2:] for k, v in inputs.items()}, initial_state=state)
  np.testing.assert_allclose(np.concatenate([first, second], 1), whole, atol=1e-5)
  # And the state matters: restarting the second chunk from zeros changes it.
  restarted = model({k: v[:, 2:] for k, v in inputs.items()}).numpy()
  assert np.abs(restarted - whole[:, 2:]).max() > 1e-4


def test_stu_and_discriminator_survive_a_savedmodel_round_trip(tmp_path):
  stu = _stu()
  stu(_inputs(batch=1, steps=1))
  stu.out.set_weights([np.random.default_rng(2).normal(0, 0.05, w.shape)
                       for w in stu.out.get_weights()])
  config = debug.get_config().stu
  config.disc_scales = 2
  disc = discriminator.frame_discriminator_from_config(config, condition_channels=3)
  inputs = _inputs(batch=1, steps=2)
  frames = tf.constant(inputs["coarse"][:, 0])
  audio = tf.constant(inputs["audio"][:, 0])
  maps = tf.constant(inputs["heatmaps"][:, 0])
  module = tf.Module()
  module.stu, module.disc = stu, disc
  specs = {k: tf.TensorSpec([None, None] + list(v.shape[2:]), tf.float32)
           for k, v in inputs.items()}
  module.generate = tf.function(lambda x: stu(x), input_signature=[specs])
  module.score = tf.function(lambda f, a, m: [logits for logits, _ in disc(f, a, m)],
                             input_signature=[tf.TensorSpec([None, RES, RES, 3]),
                                              tf.TensorSpec([None, 84, 87]),
                                              tf.TensorSpec([None, RES, RES, 3])])
  expected = (module.generate(inputs).numpy(),
              [x.numpy() for x in module.score(frames, audio, maps)])
  tf.saved_model.save(module, str(tmp_path / "saved"))
  loaded = tf.saved_model.load(str(tmp_path / "saved"))
  np.testing.assert_array_equal(loaded.generate(inputs).numpy(), expected[0])
  for got, want in zip(loaded.score(frames, audio, maps), expected[1]):
    np.testing.assert_array_equal(got.numpy(), want)


def test_discriminators_score_patches_at_every_scale():
  config = debug.get_config().stu
  config.disc_scales = 3
  scores = discriminator.frame_discriminator_from_config(config)(
      tf.zeros([3, RES, RES, 3]), tf.zeros([3, 84, 87]))
  # Two stride-2 convs in the debug config, on frames pooled to 64, 32 and 16 pixels; the
  # features: each conv's output and the joint conv's.
  assert [logits.shape for logits, _ in scores] == [(3, 16, 16, 1), (3, 8, 8, 1), (3, 4, 4, 1)]
  assert [[f.shape[1] for f in features] for _, features in scores] == [
      [32, 16, 16], [16, 8, 8], [8, 4, 4]]
  local = discriminator.local_discriminator_from_config(config, condition_channels=3)
  logits = local(tf.zeros([5, 16, 16, 3]), condition=tf.zeros([5, 16, 16, 3]))
  assert logits.shape == (5, 4, 4, 1) and "audio_encoder" not in {l.name for l in local.layers}
  with pytest.raises(ValueError, match="without a condition"):
    local(tf.zeros([5, 16, 16, 3]))


def test_adversarial_losses_known_values():
  zero, one = tf.zeros([1, 2, 2, 1]), tf.ones([1, 2, 2, 1])
  log2 = np.log(2.0)
  # BCE at logit 0: -log(1/2) = log 2 for each of the three terms; D: log2 + (log2 + log2)/2.
  np.testing.assert_allclose(losses.generator_adversarial_loss(zero, "bce"), [log2], rtol=1e-6)
  np.testing.assert_allclose(losses.discriminator_adversarial_loss(zero, zero, zero, "bce"),
                             [2 * log2], rtol=1e-6)
  # LSGAN: G (1 - 1)^2 = 0 at logit 1; D real (1-1)^2 = 0, fakes 1^2 = 1 -> 0 + (1 + 1)/2.
  np.testing.assert_allclose(losses.generator_adversarial_loss(one, "lsgan"), [0.0])
  np.testing.assert_allclose(losses.discriminator_adversarial_loss(one, one, one, "lsgan"),
                             [1.0])
  # Hinge: D real relu(1 - 1) = 0, fakes relu(1 + 1) = 2 -> 0 + (2 + 2)/2; G -1.
  np.testing.assert_allclose(losses.discriminator_adversarial_loss(one, one, one, "hinge"),
                             [2.0])
  np.testing.assert_allclose(losses.generator_adversarial_loss(one, "hinge"), [-1.0])
  with pytest.raises(ValueError, match="unknown adversarial loss"):
    losses.generator_adversarial_loss(zero, "wgan")


def test_perceptual_loss_is_zero_for_equal_frames_and_grows_with_difference():
  from apvg_tf.models import vgg  # pylint: disable=g-import-not-at-top
  net = vgg.VGGFeatures(output_layers=("conv1_2", "conv2_2"))
  rng = np.random.default_rng(0)
  real = tf.constant(rng.random((2, 32, 32, 3)), tf.float32)
  np.testing.assert_allclose(losses.perceptual_loss(net, real, real), [0.0, 0.0])
  small = losses.perceptual_loss(net, real + 0.01, real).numpy()
  large = losses.perceptual_loss(net, real + 0.1, real).numpy()
  assert np.all(small > 0) and np.all(large > 5 * small)


def _pipeline(seed=0, lookahead=0):
  config = debug.get_config()
  config.khp.lookahead_frames = lookahead
  tf.keras.utils.set_random_seed(seed)
  kp = keypoint_predictor.keypoint_predictor_from_config(config.khp, np.full((67, 2), 0.5))
  kp(tf.zeros([1, 1, 84, 87]))
  # The head starts at zero (every pose the mean): a random one makes the poses hear the music.
  kp.head.kernel.assign(0.05 * tf.random.normal(kp.head.kernel.shape))
  cvg = coarse_video_generator.coarse_video_generator_from_config(config.cvg, RES)
  return performance_generator.PerformanceGenerator(
      stu=_stu(seed), keypoint_predictor=kp, coarse_video_generator=cvg,
      heatmap_radius=config.stu.heatmap_radius, heatmap_parts=config.stu.heatmap_parts)


@pytest.mark.parametrize("lookahead", [0, 2])
def test_pipeline_streams_with_its_state(lookahead):
  """Two chunks give the outputs of one; with a KP lookahead of D frames the outputs lag the
  positions by D (the step keeps what it needs in its state), and the keypoints are the KP's
  single pass over the clip (`streaming.predict_keypoints`, what KHP evaluation scores)."""
  generator = _pipeline(lookahead=lookahead)
  audio = np.random.default_rng(3).standard_normal((6, 84, 87)).astype(np.float32)
  heard = np.concatenate([audio, np.zeros((lookahead, 84, 87), np.float32)])[None]
  positions = 6 + lookahead
  noise = np.random.default_rng(4).standard_normal(
      (1, positions, generator.z_dim)).astype(np.float32)
  whole, _ = generator.step(heard, generator.initial_state(1), noise)
  first, state = generator.step(heard[:, :4], generator.initial_state(1), noise[:, :4])
  second, _ = generator.step(heard[:, 4:], state, noise[:, 4:])
  for key in ("frames", "coarse", "keypoints"):
    np.testing.assert_allclose(np.concatenate([first[key], second[key]], 1)[:, lookahead:],
                               whole[key][:, lookahead:], atol=1e-5)
  assert whole["frames"].shape == (1, positions, RES, RES, 3)
  np.testing.assert_allclose(whole["keypoints"][0, lookahead:],
                             streaming.predict_keypoints(generator.kp, heard[0], chunk_frames=4),
                             atol=1e-5)
  if lookahead:  # The pose of frame t hears the windows up to t + D, and none after.
    changed = heard.copy()
    changed[:, 3 + lookahead] += 1.0
    later, _ = generator.step(changed, generator.initial_state(1), noise)
    np.testing.assert_array_equal(later["keypoints"][:, lookahead:lookahead + 3],
                                  whole["keypoints"][:, lookahead:lookahead + 3])
    assert not np.allclose(later["keypoints"][:, lookahead + 3],
                           whole["keypoints"][:, lookahead + 3])


def test_pipeline_draws_from_given_keypoints_without_running_the_kp():
  """The oracle of the STU ablations (`eval.stu_keypoints="real"`): given poses replace the
  KP's, the KP keeps its state, the CVG is untouched, and the STU draws from their heatmaps
  weighted by confidence, as in training on real keypoints."""
  generator = _pipeline()
  rng = np.random.default_rng(3)
  audio = rng.standard_normal((1, 4, 84, 87)).astype(np.float32)
  noise = np.zeros((1, 4, generator.z_dim), np.float32)
  generator.step(audio, generator.initial_state(1), noise)  # Builds the layers.
  out = generator.stu.out  # Untrained, the STU returns the coarse frame whatever the pose.
  out.kernel.assign(0.05 * tf.random.normal(out.kernel.shape))
  poses = rng.uniform(0.2, 0.8, (1, 4, 67, 3)).astype(np.float32)
  poses[..., 2] = 1.0
  poses[:, :, 30:, 2] = 0.0  # Left out, as a missing keypoint is in the dataset.
  state = generator.initial_state(1)
  state["kp_h"] = tf.ones_like(state["kp_h"])
  given, given_state = generator.step(audio, state, noise, keypoints=poses)
  own, own_state = generator.step(audio, state, noise)
  np.testing.assert_array_equal(given["keypoints"], poses[..., :2])
  np.testing.assert_array_equal(given_state["kp_h"], state["kp_h"])
  assert not np.allclose(own_state["kp_h"], state["kp_h"])
  np.testing.assert_array_equal(given["coarse"], own["coarse"])
  heatmaps = heatmap.render_heatmaps(poses[..., :2], RES, RES, weights=poses[..., 2],
                                     radius=generator.heatmap_radius,
                                     parts=generator.heatmap_parts)
  expected = generator.stu({"audio": audio, "keypoints": poses, "heatmaps": heatmaps,
                            "coarse": own["coarse"]}, initial_state=state["stu_g"])
  np.testing.assert_allclose(given["frames"], expected, atol=1e-6)
  assert not np.allclose(given["frames"], own["frames"], atol=1e-3)


def test_pipeline_needs_the_stages_its_stu_uses():
  with pytest.raises(ValueError, match="keypoint predictor"):
    performance_generator.PerformanceGenerator(stu=_stu())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  return write_random_dataset(tmp_path_factory.mktemp("stu_data"), seconds=3.0, resolution=RES)


@pytest.fixture(scope="module")
def trained_all(trained_pipeline):
  return trained_pipeline


def test_stage_all_trains_the_three_stages_end_to_end(trained_all):
  workdir, config, result = trained_all
  assert set(result) == {"khp", "cvg", "stu"}
  assert set(result["stu"]) == {"l1", "l2", "perceptual", "adversarial", "total", "d_total"}
  assert all(np.isfinite(v) for v in result["stu"].values())
  for stage in ("khp", "cvg", "stu"):
    assert tf.train.latest_checkpoint(os.path.join(workdir, stage, "checkpoints"))
  # Run again: every stage is done and skipped, nothing retrains.
  assert trainer.train_and_evaluate(config, workdir) == {"khp": {}, "cvg": {}, "stu": {}}


def test_evaluate_reports_the_final_video(trained_all):
  workdir, config, _ = trained_all
  result = evaluate_run.evaluate_run(config, workdir)
  with open(os.path.join(workdir, "metrics.json")) as f:
    assert json.load(f) == result
  assert result["stu_step"] == 1
  assert result["psnr"] == result["stages"]["stu"]["psnr"]
  assert result["stages"]["stu"]["psnr_coarse"] == pytest.approx(result["stages"]["cvg"]["psnr"])
  assert 0 < result["flicker"] < 1
  stages = result["stages"]
  assert stages["stu"]["flicker_coarse"] == pytest.approx(stages["cvg"]["flicker"])
  assert os.path.getsize(os.path.join(workdir, "stu", "eval_test", "preview.mp4")) > 0


def test_evaluate_with_the_real_keypoints_oracle(trained_all):
  workdir, config, _ = trained_all
  config = config.copy_and_resolve_references()
  config.eval.max_clips = 1
  predicted = evaluate_run.evaluate_run(config, workdir, stages=["stu"])["stages"]["stu"]
  config.eval.stu_keypoints = "real"
  real = evaluate_run.evaluate_run(config, workdir, stages=["stu"])["stages"]["stu"]
  assert real["psnr_coarse"] == predicted["psnr_coarse"]  # The same coarse video.
  assert real["psnr"] != predicted["psnr"]
  config.eval.stu_keypoints = "perfect"
  with pytest.raises(InputError, match="stu_keypoints"):
    evaluate_run.evaluate_run(config, workdir, stages=["stu"])


def test_evaluate_only_the_stages_asked_for(trained_all):
  # The ablation scripts share one KHP and CVG: they evaluate the STU alone.
  workdir, config, _ = trained_all
  result = evaluate_run.evaluate_run(config, workdir, stages=["stu"])
  assert set(result["stages"]) == {"stu"} and "khp_step" not in result
  with pytest.raises(InputError, match="no nonexistent checkpoint"):
    evaluate_run.evaluate_run(config, workdir, stages=["nonexistent"])


def test_restore_ignores_the_gcn_initializer_but_not_the_settings(trained_all):
  # The initializer only sets weights that the checkpoint replaces: a run restores under
  # either value, whether its model.json records one (this version) or none (earlier ones).
  workdir, config, _ = trained_all
  config = config.copy_and_resolve_references()
  path = os.path.join(workdir, "stu", stages.MODEL_SETTINGS)
  with open(path) as f:
    original = f.read()
  try:
    for initializer, recorded in (("glorot_uniform", None), ("zeros", "glorot_uniform")):
      saved = {k: v for k, v in json.loads(original).items() if k != "gcn_output_initializer"}
      if recorded:
        saved["gcn_output_initializer"] = recorded
      with open(path, "w") as f:
        json.dump(saved, f)
      config.stu.gcn_output_initializer = initializer
      task, _ = stages.restore(config, workdir, "stu")
      assert task.model.get_config()["gcn_output_initializer"] == initializer
    config.stu.gru_kernel += 2  # A setting: still one clear error.
    with pytest.raises(InputError, match=r"gru_kernel=\d \(this config: \d\)"):
      stages.restore(config, workdir, "stu")
  finally:
    with open(path, "w") as f:
      f.write(original)


def test_stu_without_earlier_stages_says_what_to_train(dataset, tmp_path):
  config = debug_config(dataset, stage="stu", num_train_steps=1)
  with pytest.raises(InputError, match="has no khp checkpoint"):
    trainer.train_and_evaluate(config, str(tmp_path))


def test_unknown_training_keypoints_is_an_input_error(dataset, tmp_path):
  config = debug_config(dataset, stage="stu", num_train_steps=1)
  config.stu.train_keypoints = "guessed"
  with pytest.raises(InputError, match="train_keypoints"):
    trainer.train_and_evaluate(config, str(tmp_path))


def _stage_task(dataset, **stu):
  """An STUTask on the test dataset over untrained frozen KP and CVG."""
  config = debug_config(dataset, stage="stu")
  config.resolution = RES
  for key, value in stu.items():
    config.stu[key] = value
  tf.keras.utils.set_random_seed(0)
  frozen = {"khp": keypoint_predictor.keypoint_predictor_from_config(config.khp,
                                                                      np.full((67, 2), 0.5)),
            "cvg": coarse_video_generator.coarse_video_generator_from_config(config.cvg, RES)}
  task = stu_task.STUTask(config, data.load_manifest(dataset), frozen=frozen)
  task.build(tf.keras.optimizers.Adam(1e-3))
  # An untrained CVG's last layer is zero (it returns its canvas whatever it is fed): give it
  # weights so that its frames depend on the previous frame.
  task.cvg(tf.zeros([1, 2, 84, 87]))  # Creates its weights.
  out = task.cvg.image_decoder.out.kernel
  out.assign(0.1 * np.random.default_rng(1).standard_normal(out.shape).astype(np.float32))
  return task


def _window(seed, steps=8):
  rng = np.random.default_rng(seed)
  return {"frames": rng.integers(0, 256, (2, steps, RES, RES, 3), np.uint8),
          "audio": np.random.default_rng(0).standard_normal((2, steps, 84, 87)).astype(
              np.float32),
          "keypoints": rng.random((2, steps, 67, 3)).astype(np.float32)}


def test_training_coarse_video_is_the_inference_rollout(dataset):
  # coarse_start="first_frame": the CVG rolls out from its stored first frame over the whole
  # window, as at inference; the real frames do not reach the coarse video.
  task = _stage_task(dataset)
  random = lambda: randomness.StepRandom(0, 5, 2)
  inputs, real, _ = task.stage_inputs(_window(1), random())
  other, other_real, _ = task.stage_inputs(_window(2), random())
  assert not np.allclose(real, other_real)
  np.testing.assert_allclose(inputs["coarse"], other["coarse"], atol=1e-6)
  assert np.std(inputs["coarse"]) > 1e-3  # Not a constant canvas.
  length = task.stu.rollout_frames
  start = int(random().integer("stu/crop", 1, 8 - length + 1))
  noise = random().normal("stu/z", 2, [8, task.cvg.z_dim])
  inference = task.cvg(_window(1)["audio"], noise=noise).numpy()
  np.testing.assert_allclose(inputs["coarse"], inference[:, start:start + length], atol=1e-5)
  assert inputs["coarse"].shape == real.shape == (2, length, RES, RES, 3)


def test_training_coarse_video_from_the_real_frame_depends_on_it(dataset):
  task = _stage_task(dataset, coarse_start="real")
  inputs, _, _ = task.stage_inputs(_window(1), randomness.StepRandom(0, 5, 2))
  other, _, _ = task.stage_inputs(_window(2), randomness.StepRandom(0, 5, 2))
  assert np.abs(inputs["coarse"] - other["coarse"]).max() > 1e-3


def test_unknown_coarse_start_is_an_input_error(dataset):
  config = debug_config(dataset, stage="stu")
  config.stu.coarse_start = "middle"
  with pytest.raises(InputError, match="coarse_start"):
    stu_task.STUTask(config, data.load_manifest(dataset))


def test_generator_loss_weights_each_pixel_term(dataset):
  task = _stage_task(dataset, l1_weight=0.0, l2_weight=10.0, perceptual_weight=0.0,
                     adversarial_weight=0.0)
  inputs, real, keypoints = task.stage_inputs(_window(1), randomness.StepRandom(0, 5, 2))
  out, fake = task.compute_losses(inputs, real, keypoints, global_batch_size=2)
  l2 = np.mean(np.square(fake.numpy() - real.numpy()))
  np.testing.assert_allclose(out["l2"], l2, rtol=1e-4)
  np.testing.assert_allclose(out["total"], 10 * l2, rtol=1e-4)
