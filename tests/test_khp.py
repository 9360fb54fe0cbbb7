"""Tests of the KHP stage: KP model, losses, one-step training, resume, evaluation."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from apvg_tf import losses, skeleton
from apvg_tf.errors import InputError
from apvg_tf.evaluation import evaluate_run, khp_eval
from apvg_tf import metrics
from apvg_tf.models import keypoint_predictor
from apvg_tf.synth import music, performer
from apvg_tf.training import khp_task, stages, trainer
from configs import debug
from conftest import debug_config, write_random_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  return write_random_dataset(tmp_path_factory.mktemp("khp_data"))


_config = debug_config


def test_masked_keypoints_contribute_nothing_to_either_loss():
  rng = np.random.default_rng(0)
  pred = tf.constant(rng.random((2, 3, 67, 2)), tf.float32)
  real = rng.random((2, 3, 67, 2)).astype(np.float32)
  confidence = np.ones((2, 3, 67), np.float32)
  confidence[:, :, 30:40] = 0.0
  moved = real.copy()
  moved[:, :, 30:40] = rng.random((2, 3, 10, 2))  # Change only the masked targets.
  for loss in (losses.keypoint_coordinate_loss,
               lambda p, r, c: losses.keypoint_heatmap_loss(p, r, c, size=16)):
    np.testing.assert_allclose(loss(pred, real, confidence).numpy(),
                               loss(pred, moved, confidence).numpy(), rtol=1e-6)
    with tf.GradientTape() as tape:
      tape.watch(pred)
      value = tf.reduce_sum(loss(pred, real, confidence))
    grad = tape.gradient(value, pred).numpy()
    np.testing.assert_array_equal(grad[:, :, 30:40], 0)
    assert np.abs(grad[:, :, :30]).max() > 0


def test_coordinate_loss_known_value():
  pred = tf.zeros([1, 1, 67, 2])
  real = tf.concat([tf.fill([1, 1, 1, 2], 0.3), tf.zeros([1, 1, 66, 2])], 2)
  # One point off by (0.3, 0.3): squared distance 0.18, averaged over 67 points.
  np.testing.assert_allclose(
      losses.keypoint_coordinate_loss(pred, real, tf.ones([1, 1, 67])).numpy(), [0.18 / 67],
      rtol=1e-6)


def test_predictor_streams_in_chunks_exactly():
  model = keypoint_predictor.KeypointPredictor(mean_pose=np.random.rand(67, 3),
                                               encoder_channels=(8, 8, 8), audio_embedding=16,
                                               pose_embedding=8, lstm_units=16)
  audio = tf.random.normal([2, 12, 84, 87], seed=1)
  model(audio)
  model.head.kernel.assign(tf.random.normal(model.head.kernel.shape, seed=2))
  whole = model(audio).numpy()
  first, state = model(audio[:, :5], return_state=True)
  second = model(audio[:, 5:], initial_state=state)
  np.testing.assert_allclose(np.concatenate([first, second], 1), whole, atol=1e-6)
  assert whole.shape == (2, 12, 67, 2)
  # Without the condition the mean pose is neither input nor anchor: the paper's baseline.
  baseline = keypoint_predictor.KeypointPredictor(mean_pose_condition=False,
                                                  encoder_channels=(8, 8, 8),
                                                  audio_embedding=16, lstm_units=16)
  assert np.abs(baseline(audio).numpy()).max() == 0  # Zero-initialised head, no anchor.
  assert baseline.count_params() < model.count_params()


def test_arm_path_predicts_its_points_from_its_own_music_and_streams_exactly():
  """arm_units > 0: the arm's points come from the arm path only, which hears `arm_audio`;
  the others from the main path; one concatenated state streams exactly and the model
  survives get_config."""
  from apvg_tf.audio import augment  # pylint: disable=g-import-not-at-top
  arm = [6, 7] + list(range(25, 46))
  model = keypoint_predictor.KeypointPredictor(mean_pose=np.random.rand(67, 3),
                                               encoder_channels=(8, 8, 8), audio_embedding=16,
                                               pose_embedding=8, lstm_units=16, arm_points=arm,
                                               arm_units=12)
  audio = tf.random.normal([2, 12, 84, 87], seed=1)
  other = tf.random.normal([2, 12, 84, 87], seed=4)
  model(audio)
  model.head.kernel.assign(tf.random.normal(model.head.kernel.shape, seed=2))
  model.arm_head.kernel.assign(tf.random.normal(model.arm_head.kernel.shape, seed=3))
  whole = model(audio).numpy()
  rest = np.setdiff1d(np.arange(67), arm)
  heard = model(audio, arm_audio=other).numpy()  # Only the arm hears the other music.
  np.testing.assert_array_equal(heard[:, :, rest], whole[:, :, rest])
  np.testing.assert_allclose(heard[:, :, arm], model(other).numpy()[:, :, arm], atol=1e-6)
  assert np.abs(heard[:, :, arm] - whole[:, :, arm]).min() > 0
  main_only = model.head(model._path(  # pylint: disable=protected-access
      audio, model.motion_encoder, 16, model.pose_dense, model.lstm,
      [s[:, :16] for s in model.zero_state(2)], lambda name, x: x)[0]).numpy()
  np.testing.assert_allclose(whole[:, :, rest] - model.mean_pose.numpy()[rest],
                             main_only.reshape(2, 12, 67, 2)[:, :, rest], atol=1e-5)
  first, state = model(audio[:, :5], return_state=True)
  assert [s.shape for s in state] == [(2, 28), (2, 28)]
  second = model(audio[:, 5:], initial_state=state)
  np.testing.assert_allclose(np.concatenate([first, second], 1), whole, atol=1e-6)
  copy = keypoint_predictor.KeypointPredictor.from_config(model.get_config())
  copy(audio[:, :1])
  copy.set_weights(model.get_weights())
  np.testing.assert_allclose(copy(audio).numpy(), whole, atol=1e-6)
  with pytest.raises(ValueError, match="arm_points"):
    keypoint_predictor.KeypointPredictor(arm_units=8)
  khp = debug.get_config().khp
  khp.pitch_arm_units = 8
  with pytest.raises(ValueError, match="needs the instrument"):
    keypoint_predictor.keypoint_predictor_from_config(khp, np.full((67, 2), 0.5))
  trombone = keypoint_predictor.keypoint_predictor_from_config(khp, np.full((67, 2), 0.5),
                                                               "trombone")
  assert trombone.arm_points == tuple(augment.pitch_arms("trombone"))


def test_lookahead_scores_output_t_plus_d_against_frame_t():
  """With khp.lookahead_frames = D the KP's output t + D is the pose of frame t: the losses
  pair them, and the first D outputs and last D frames of a window go unscored."""
  config = debug.get_config()
  config.khp.lookahead_frames = 2
  task = khp_task.KHPTask(config, {"mean_pose": np.full((67, 3), 0.5).tolist(),
                                   "splits": {}}, None)
  task.build(tf.keras.optimizers.Adam())
  task.model.head.kernel.assign(0.05 * tf.random.normal(task.model.head.kernel.shape, seed=3))
  rng = np.random.default_rng(0)
  batch = {"audio": tf.constant(rng.standard_normal((2, 8, 84, 87)), tf.float32),
           "keypoints": tf.constant(np.concatenate([rng.random((2, 8, 67, 2)),
                                                    np.ones((2, 8, 67, 1))], -1), tf.float32)}
  out, pred = task.compute_losses(batch, global_batch_size=2, training=False)
  outputs = task.model(batch["audio"])
  np.testing.assert_array_equal(pred, outputs[:, 2:])
  expected = losses.keypoint_coordinate_loss(outputs[:, 2:], batch["keypoints"][:, :6, :, :2],
                                             batch["keypoints"][:, :6, :, 2])
  np.testing.assert_allclose(out["coord"], tf.reduce_mean(expected), rtol=1e-6)
  assert task.model.get_config()["lookahead_frames"] == 2
  config.khp.lookahead_frames = config.window_frames  # Nothing left to score: one clear error.
  with pytest.raises(InputError, match="lookahead_frames"):
    khp_task.KHPTask(config, {"mean_pose": np.full((67, 3), 0.5).tolist(), "splits": {}}, None)


def _shifting_cello_task(rng, **khp):
  """A built debug KP task on a cellist's manifest that transposes every window (no dropout).

  Returns:
    (task, manifest).
  """
  config = debug.get_config()
  config.khp.dropout = 0.0
  config.khp.pitch_shift = 3
  config.khp.pitch_shift_probability = 1.0
  config.khp.update(khp)
  manifest = {"mean_pose": np.full((67, 3), 0.5).tolist(), "splits": {}, "instrument": "cello",
              "cqt_mean": rng.normal(-3, 1, 84).tolist(), "cqt_std": rng.uniform(1, 2, 84).tolist()}
  task = khp_task.KHPTask(config, manifest, None)
  task.build(tf.keras.optimizers.Adam())
  return task, manifest


def test_pitch_shift_transposes_the_music_and_masks_the_stopping_arm():
  """khp.pitch_shift: a train step's losses and the motion prior's discriminator see the
  shifted windows; the cellist's left arm's targets of shifted examples reach neither loss;
  evaluation (no `random`) is untouched."""
  from apvg_tf.audio import augment  # pylint: disable=g-import-not-at-top
  from apvg_tf.training import randomness  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  task, manifest = _shifting_cello_task(rng, adversarial_weight=0.001)
  task.model.head.kernel.assign(0.05 * tf.random.normal(task.model.head.kernel.shape, seed=3))
  keypoints = np.concatenate([rng.random((2, 8, 67, 2)), np.ones((2, 8, 67, 1))], -1)
  batch = {"audio": tf.constant(rng.standard_normal((2, 8, 84, 87)), tf.float32),
           "keypoints": tf.constant(keypoints, tf.float32)}
  random = randomness.StepRandom(0, 5, 2)
  shifted = task.augmented(batch, random)
  for i in range(2):  # Probability 1: every example moves by 1 to 3 semitones.
    semitones = [k for k in range(-3, 4) if np.allclose(augment.pitch_shift(
        batch["audio"][i:i + 1], [k], manifest["cqt_mean"], manifest["cqt_std"]),
                                                         shifted["audio"][i:i + 1])]
    assert len(semitones) == 1 and semitones[0] != 0
  arm = augment.pitch_arms("cello")
  assert np.all(shifted["keypoints"].numpy()[:, :, arm, 2] == 0)
  out, _ = task.compute_losses(shifted, global_batch_size=2, random=random)
  moved = shifted["keypoints"].numpy()
  moved[:, :, arm, :2] = rng.random((2, 8, len(arm), 2))
  out_moved, _ = task.compute_losses(dict(shifted, keypoints=tf.constant(moved)),
                                     global_batch_size=2, random=random)
  for name in ("coord", "heatmap"):
    np.testing.assert_allclose(out[name], out_moved[name], rtol=1e-6)
  moved[:, :, skeleton.RIGHT_HAND, :2] += 0.1  # The bow hand still counts.
  out_bow, _ = task.compute_losses(dict(shifted, keypoints=tf.constant(moved)),
                                   global_batch_size=2, random=random)
  assert out_bow["coord"] > out["coord"] * 1.01
  _, unshifted = task.compute_losses(batch, global_batch_size=2, training=False)
  np.testing.assert_allclose(unshifted, task.model(batch["audio"]), atol=1e-6)
  # A train step: the KP's losses and the discriminator get the same shifted batch.
  seen = {}
  compute, discriminate = task.compute_losses, task.prior.discriminator_loss
  task.compute_losses = lambda b, *a, **k: seen.setdefault("kp", b) and compute(b, *a, **k)
  task.prior.discriminator_loss = lambda p, k, a: seen.setdefault("d", (k, a)) and \
      discriminate(p, k, a)
  task.train_step(batch, 2, random)
  np.testing.assert_array_equal(seen["kp"]["audio"], shifted["audio"])
  np.testing.assert_array_equal(seen["d"][0], shifted["keypoints"])
  np.testing.assert_array_equal(seen["d"][1], shifted["audio"])


def test_pitch_shift_with_an_arm_path_gives_it_the_unshifted_music_unmasked():
  """khp.pitch_arm_units: the main path hears the transposed windows, the arm path and the
  motion prior's discriminator the originals; the arm is scored on every window at weight
  1."""
  from apvg_tf.audio import augment  # pylint: disable=g-import-not-at-top
  from apvg_tf.training import randomness  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(2)
  task, _ = _shifting_cello_task(rng, pitch_arm_units=8, adversarial_weight=0.001)
  arm = augment.pitch_arms("cello")
  assert task.model.arm_points == tuple(arm) and task.model.arm_units == 8
  keypoints = np.concatenate([rng.random((2, 8, 67, 2)), np.ones((2, 8, 67, 1))], -1)
  batch = {"audio": tf.constant(rng.standard_normal((2, 8, 84, 87)), tf.float32),
           "keypoints": tf.constant(keypoints, tf.float32)}
  random = randomness.StepRandom(0, 5, 2)
  shifted = task.augmented(batch, random)
  np.testing.assert_array_equal(shifted["arm_audio"], batch["audio"])
  np.testing.assert_array_equal(shifted["keypoints"], batch["keypoints"])  # Not masked.
  assert not np.allclose(shifted["audio"], batch["audio"])
  seen = {}
  call, discriminate = task.train_model.call, task.prior.discriminator_loss
  task.train_model.call = lambda audio, **k: seen.update(audio=audio, **k) or call(audio, **k)
  task.prior.discriminator_loss = lambda p, k, a: seen.update(d_audio=a) or discriminate(p, k, a)
  task.train_step(batch, 2, random)
  np.testing.assert_array_equal(seen["audio"], shifted["audio"])
  np.testing.assert_array_equal(seen["arm_audio"], batch["audio"])
  # The real motion is judged with the music it was played to.
  np.testing.assert_array_equal(seen["d_audio"], batch["audio"])


@pytest.mark.parametrize("key,value,message", [
    ("pitch_shift", 13, "from 0 .off. to 12"), ("pitch_shift", -1, "whole number"),
    ("time_stretch", 1.5, "below 1"), ("pitch_shift_probability", 0.0, r"in \(0, 1\]"),
    ("pitch_arm_units", -1, "0 .off.")])
def test_bad_augmentation_settings_are_input_errors(key, value, message):
  config = debug.get_config()
  config.khp[key] = value
  with pytest.raises(InputError, match=message):
    khp_task.KHPTask(config, {"mean_pose": np.full((67, 3), 0.5).tolist(), "splits": {}}, None)


@pytest.mark.parametrize("pitch_shift,time_stretch,arm_units", [(0, 0.0, 0), (2, 0.25, 0),
                                                                  (2, 0.0, 8)])
def test_one_training_step_on_debug_config(dataset, tmp_path, pitch_shift, time_stretch,
                                           arm_units):
  config = _config(dataset, num_train_steps=1)
  config.khp.pitch_shift = pitch_shift
  config.khp.pitch_arm_units = arm_units
  config.khp.time_stretch = time_stretch
  config.khp.pitch_shift_probability = config.khp.time_stretch_probability = 1.0
  result = trainer.train_and_evaluate(config, str(tmp_path))
  assert set(result["khp"]) == {"coord", "heatmap", "total"}
  assert all(np.isfinite(v) for v in result["khp"].values())
  assert tf.train.latest_checkpoint(os.path.join(tmp_path, "khp", "checkpoints"))
  assert os.listdir(os.path.join(tmp_path, "khp", "train"))  # TensorBoard events.
  if arm_units:  # Restored with a config that builds another model: one clear error.
    task, _ = stages.restore(config, str(tmp_path), "khp")
    assert task.model.arm_units == arm_units
    config.khp.pitch_arm_units = 0
    with pytest.raises(InputError, match=r"arm_units=8 \(this config: 0\).*model.json"):
      stages.restore(config, str(tmp_path), "khp")
    os.remove(os.path.join(tmp_path, "khp", "model.json"))  # As a run of an earlier version.
    for units, message in ((0, "the checkpoint has 15 variables the config's model lacks"),
                           (arm_units + 1, "differ in shape")):
      config.khp.pitch_arm_units = units
      with pytest.raises(InputError, match=f"{message}.*config.json"):
        stages.restore(config, str(tmp_path), "khp")
  elif not pitch_shift:
    config.khp.lookahead_frames = 3  # No variable holds it: the stage's model.json does.
    with pytest.raises(InputError, match=r"lookahead_frames=0 \(this config: 3\).*model.json"):
      stages.restore(config, str(tmp_path), "khp")
    with pytest.raises(InputError, match="lookahead_frames=0"):  # Resuming, too.
      trainer.train_and_evaluate(config, str(tmp_path))
    os.remove(os.path.join(tmp_path, "khp", "model.json"))  # As a run of an earlier version.
    config.khp.pitch_arm_units = 8
    with pytest.raises(InputError, match="the config's model has 15 variables the checkpoint"):
      stages.restore(config, str(tmp_path), "khp")
    with pytest.raises(InputError, match="the config's model has 15 variables"):  # Resuming.
      trainer.train_and_evaluate(config, str(tmp_path))
    config.khp.pitch_arm_units, config.khp.lookahead_frames = 0, 0
    trainer.train_and_evaluate(config, str(tmp_path))  # Already trained: skipped.
    assert not os.path.exists(os.path.join(tmp_path, "khp", "model.json"))  # Not made up.


def test_best_validation_checkpoint_is_kept_and_used(tmp_path):
  dataset_dir = write_random_dataset(tmp_path / "d", splits=("train", "validation", "test"))
  config = _config(dataset_dir, num_train_steps=3)
  trainer.train_and_evaluate(config, str(tmp_path / "run"))
  with open(tmp_path / "run" / "khp" / "best" / "best.json") as f:
    best = json.load(f)
  assert 1 <= best["step"] <= 3 and np.isfinite(best["score"])
  _, step = stages.restore(config, str(tmp_path / "run"), "khp")
  assert step == best["step"]
  config.eval.checkpoint = "latest"
  assert stages.restore(config, str(tmp_path / "run"), "khp")[1] == 3


def test_restart_continues_from_checkpoint_with_same_optimizer_state(dataset, tmp_path):
  config = _config(dataset, num_train_steps=2)
  trainer.train_and_evaluate(config, str(tmp_path))
  task, step = stages.restore(config, str(tmp_path), "khp", training_state=True)
  assert step == 2 and int(task.optimizer.iterations.numpy()) == 2
  velocity = {v.name: v.numpy() for v in task.optimizer.variables if v.name.startswith("v/")}
  weights = [w.numpy() for w in task.model.weights]
  config.num_train_steps = 3
  trainer.train_and_evaluate(config, str(tmp_path))
  task, step = stages.restore(config, str(tmp_path), "khp", training_state=True)
  # The restarted run took exactly one more step, from the restored optimizer: Adam's
  # velocity is v3 = beta2 * v2 + (1 - beta2) * g3^2 >= beta2 * v2 everywhere. A reset
  # optimizer would hold only (1 - beta2) * g3^2, a thousand times smaller.
  assert step == 3 and int(task.optimizer.iterations.numpy()) == 3
  for v in task.optimizer.variables:
    if v.name.startswith("v/"):
      assert np.all(v.numpy() >= 0.999 * velocity[v.name] * (1 - 1e-5)), v.name
  assert any(not np.array_equal(a, b.numpy()) for a, b in zip(weights, task.model.weights))


def test_ema_weights_average_the_trained_ones_and_survive_a_restart(dataset, tmp_path):
  config = _config(dataset, num_train_steps=2)
  config.khp.ema_decay = 0.75
  trainer.train_and_evaluate(config, str(tmp_path))
  task, step = stages.restore(config, str(tmp_path), "khp", training_state=True)
  assert step == 2 and task.model is not task.train_model
  before = [w.numpy() for w in task.train_model.trainable_variables]
  averages = [w.numpy() for w in task.model.trainable_variables]
  # After two steps from a common start w0, ema = d^2 w0 + d(1-d) w1 + (1-d) w2: it differs
  # from the trained weights, and lies between w0's and w2's where they differ.
  assert any(not np.allclose(a, b) for a, b in zip(averages, before))
  config.num_train_steps = 3
  trainer.train_and_evaluate(config, str(tmp_path))  # Resumes: restores both models.
  task, step = stages.restore(config, str(tmp_path), "khp", training_state=True)
  after = [w.numpy() for w in task.train_model.trainable_variables]
  for average, old, new, trained in zip(task.model.trainable_variables, averages, before,
                                        after):
    del new
    np.testing.assert_allclose(average.numpy(), 0.75 * old + 0.25 * trained, atol=1e-6)
  # The evaluated model is the average: what `model` predicts comes from its weights.
  audio = tf.random.normal([1, 3, 84, 87], seed=3)
  assert not np.allclose(task.model(audio).numpy(), task.train_model(audio).numpy())


def test_evaluate_writes_metrics_json(dataset, tmp_path):
  config = _config(dataset, num_train_steps=1)
  trainer.train_and_evaluate(config, str(tmp_path))
  config.eval.video = True
  result = evaluate_run.evaluate_run(config, str(tmp_path))
  with open(os.path.join(tmp_path, "metrics.json")) as f:
    assert json.load(f) == result
  for key in ("kp_distance", "kp_distance_mean_pose", "kp_distance_nn", "beat_align", "frames",
              "clips", "kp_distance_left_hand"):
    assert key in result
  # The motion metrics of the prediction and the baselines; one 60-frame clip is one segment
  # of motion_metrics, too few for the FIDs' covariances, which are left out.
  for key in ("stroke_f1", "stroke_precision", "stroke_recall", "travel_ratio",
              "travel_ratio_mean_pose", "travel_ratio_nn", "stroke_f1_nn"):
    assert 0 <= result[key] < 1e3, key
  assert result["travel_ratio_mean_pose"] == 0  # A still hand travels nowhere.
  assert "fid_k" not in result and "fid_g_nn" not in result
  assert result["frames"] == 60 and result["clips"] == 1
  assert os.path.exists(os.path.join(tmp_path, "khp", "eval_test", "pca_fig4.png"))
  assert os.path.getsize(os.path.join(tmp_path, "khp", "eval_test", "skeletons.mp4")) > 1000


def test_evaluation_without_test_clips_is_an_input_error(tmp_path):
  dataset_dir = write_random_dataset(tmp_path / "d", splits=("train",))
  config = _config(dataset_dir, num_train_steps=1)
  trainer.train_and_evaluate(config, str(tmp_path / "run"))
  with pytest.raises(InputError, match="has no clips"):
    evaluate_run.evaluate_run(config, str(tmp_path / "run"))
  with pytest.raises(InputError, match="no checkpoint of any stage"):
    evaluate_run.evaluate_run(config, str(tmp_path / "empty_run"))


def test_beat_align_score_known_values():
  assert metrics.beat_align_score([1.0, 2.0], [1.0, 2.0]) == 1.0
  # One beat 0.05 s (one sigma) from the nearest onset: exp(-1/2).
  np.testing.assert_allclose(metrics.beat_align_score([1.05], [1.0, 3.0]), np.exp(-0.5))
  assert metrics.beat_align_score([], [1.0]) == 0.0
  # Motion x = sin(2 pi (t - 0.5) / 40) turns at t = 10.5 and 30.5: the speed between
  # frames 10 and 11 (and 30 and 31) is the smallest, so the beats are frames 11 and 31.
  t = np.arange(41)
  kp = np.zeros((41, 67, 3))
  kp[..., 0] = 0.5 + 0.1 * np.sin(2 * np.pi * (t[:, None] - 0.5) / 40)
  kp[..., 2] = 1
  np.testing.assert_array_equal(metrics.motion_beats(kp, fps=60, smoothing_seconds=1 / 60),
                                [11, 31])


def test_stage_blocks_override_shared_loop_settings():
  config = debug.get_config()
  config.num_train_steps, config.batch_size = 7, 2
  config.cvg.num_train_steps = 3
  assert stages.stage_config(config, "cvg").num_train_steps == 3
  assert stages.stage_config(config, "cvg").batch_size == 2
  assert stages.stage_config(config, "khp").num_train_steps == 7
  config.khp.window_frames = 16  # The KP's longer windows; the CVG keeps the shared ones.
  assert stages.stage_config(config, "khp").window_frames == 16
  assert stages.stage_config(config, "cvg").window_frames == config.window_frames == 8
  assert config.num_train_steps == 7  # The caller's config is left alone.


def test_motion_scores_of_the_prediction_and_the_baselines():
  rng = np.random.default_rng(0)
  piece = music.generate_piece("cello", 2.0, 0, 0)
  base = performer.perform(piece, "cello", 30.0, 1).keypoints[0, :, :2]  # A seated pose.
  t = np.arange(240)[:, None]
  real = []
  for clip in range(2):
    track = np.repeat(base[None], 240, 0)
    # A bow hand that goes back and forth every 15 frames, the rest of the body breathing.
    track[:, skeleton.INDEX["right_wrist"], 0] += 0.08 * np.cos(np.pi * t[:, 0] / 15 + clip)
    track[..., :2] += 0.004 * rng.standard_normal(track[..., :2].shape).cumsum(0) / 10
    real.append(track)
  onsets = [np.arange(0.0, 8.0, 0.5)] * 2
  tracks = {"pred": real, "real": real, "mean": [np.repeat(base[None], 240, 0)] * 2,
            "nn": [real[0], real[0]]}  # Right for the first clip, 5 frames off in the second.
  result = khp_eval._motion_scores(tracks, onsets, 30.0, "cello")
  assert result["fid_k"] == pytest.approx(0, abs=1e-6) and result["stroke_f1"] == 1
  assert result["travel_ratio"] == 1 and result["travel_ratio_mean_pose"] == 0
  assert result["fid_k_mean_pose"] > 10 * max(result["fid_k_real"], 0.1)
  assert result["stroke_f1_mean_pose"] == 0 and result["stroke_f1_nn"] == pytest.approx(0.5, abs=0.1)
  assert {"fid_g", "div_k", "div_g", "div_k_real", "onset_hit", "onset_hit_real",
          "fid_g_nn", "div_k_mean_pose"} <= set(result)
