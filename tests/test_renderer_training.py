"""Tests of the renderer setting of the STU's training: real keypoints with pose augmentation,
multi-scale pose-conditioned discriminators, feature matching, and the local discriminator
of the arm and hand crops."""

import numpy as np
import pytest
import tensorflow as tf

from apvg_tf import data, heatmap, local_crops, losses, skeleton
from apvg_tf.errors import InputError
from apvg_tf.models import coarse_video_generator, keypoint_predictor
from apvg_tf.training import pose_augment, randomness, stages, stu_task
from conftest import debug_config, write_random_dataset

RES = 64
RENDERER = dict(train_keypoints="real", keypoint_jitter=0.01, keypoint_drift=0.01,
                keypoint_drop=0.1, predicted_fraction=0.5, disc_scales=3,
                disc_pose_condition=True, feature_matching_weight=10.0, local_disc_weight=1.0,
                limb_maps=True, limb_loss_weight=4.0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  return write_random_dataset(tmp_path_factory.mktemp("renderer_data"), splits=("train",),
                              seconds=1.0, resolution=RES)


def _config(dataset, **stu):
  config = debug_config(dataset, stage="stu")
  config.stu.update(stu)
  return config


def _task(dataset, **stu):
  """An STUTask with every renderer switch on (and `stu` overrides), over untrained KP and CVG."""
  config = _config(dataset, **{**RENDERER, **stu})
  tf.keras.utils.set_random_seed(0)
  frozen = {"khp": keypoint_predictor.keypoint_predictor_from_config(config.khp,
                                                                      np.full((67, 2), 0.5)),
            "cvg": coarse_video_generator.coarse_video_generator_from_config(config.cvg, RES)}
  task = stu_task.STUTask(config, data.load_manifest(dataset), frozen=frozen)
  return task, task.build(tf.keras.optimizers.Adam(1e-3))


def _window(seed=1, steps=8):
  rng = np.random.default_rng(seed)
  keypoints = rng.uniform(0.2, 0.8, (2, steps, 67, 3)).astype(np.float32)
  keypoints[..., 2] = 1.0
  return {"frames": rng.integers(0, 256, (2, steps, RES, RES, 3), np.uint8),
          "audio": rng.standard_normal((2, steps, 84, 87)).astype(np.float32),
          "keypoints": keypoints}


# ---------------------------------------------------------------------------- training


def test_one_step_with_every_switch_on_trains_and_checkpoints_every_discriminator(
    dataset, tmp_path):
  task, items = _task(dataset)
  assert {"discriminator", "discriminator_scale1", "discriminator_scale2",
          "local_discriminator", "d_optimizer"} <= set(items)
  before = [v.numpy() for v in task.local_discriminator.trainable_variables]
  step = tf.function(lambda batch, number: task.train_step(
      batch, 2, randomness.StepRandom(0, number, 2)))
  out = {k: float(v) for k, v in step(_window(), tf.constant(1, tf.int64)).items()}
  assert {"feature_matching", "local_adversarial", "local_feature_matching", "d_local",
          "adversarial", "total", "d_total"} <= set(out)
  assert all(np.isfinite(v) for v in out.values()), out
  assert out["feature_matching"] > 0 and out["local_feature_matching"] > 0
  after = task.local_discriminator.trainable_variables
  assert all(np.abs(a.numpy() - b).max() > 0 for a, b in zip(after, before))
  # One Adam for every discriminator: its slots cover the local and the coarser scales' too.
  slots = {v.ref() for v in task.d_optimizer.variables}
  assert len(slots) == 1 + 2 * len(task._discriminator_variables())  # + iterations.

  # Exact resume: a fresh task restored from the checkpoint holds the same discriminators
  # and optimizer slots.
  path = tf.train.Checkpoint(**items).write(str(tmp_path / "ckpt"))
  other, other_items = _task(dataset)
  tf.train.Checkpoint(**other_items).read(path).assert_existing_objects_matched()
  for name in ("discriminator_scale2", "local_discriminator", "d_optimizer"):
    got = other_items[name].variables
    want = items[name].variables
    assert len(got) == len(want) > 0
    for a, b in zip(got, want):
      np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_evaluation_reads_the_stu_under_other_discriminator_settings(dataset, tmp_path):
  # A run trained with the renderer's discriminators is evaluated and exported with a config
  # whose discriminators differ (or the reverse): only the step and the STU are read.
  task, items = _task(dataset)
  step = tf.Variable(7, dtype=tf.int64)
  path = tf.train.Checkpoint(step=step, **items).write(str(tmp_path / "ckpt"))
  paper = dict(disc_scales=1, disc_pose_condition=False, feature_matching_weight=0.0,
               local_disc_weight=0.0)
  other, other_items = _task(dataset, **paper)
  with pytest.raises(ValueError):  # All of it: the pose-conditioned D's kernels do not fit.
    tf.train.Checkpoint(**other_items).read(path)
  other, other_items = _task(dataset, **paper)
  restored = tf.Variable(0, dtype=tf.int64)
  stages.inference_checkpoint(restored, other_items).read(path).expect_partial()
  assert int(restored.numpy()) == 7
  for a, b in zip(other.model.variables, task.model.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_without_heatmaps_the_discriminators_are_unconditioned_and_crops_follow_real_poses(
    dataset):
  task, _ = _task(dataset, use_heatmap=False, use_gcn=False)
  assert not task.pose_condition
  assert task.discriminator.condition_channels == 0
  assert task.local_discriminator.condition_channels == 0
  window = _window()
  inputs, real, keypoints = task.stage_inputs(window, randomness.StepRandom(0, 3, 2))
  assert "heatmaps" not in inputs
  start = int(randomness.StepRandom(0, 3, 2).integer("stu/crop", 1, 8 - 4 + 1))
  np.testing.assert_array_equal(keypoints, window["keypoints"][:, start:start + 4])
  out, _ = task.compute_losses(inputs, real, keypoints, global_batch_size=2)
  assert np.isfinite(float(out["local_adversarial"]))


def test_paper_defaults_log_only_the_paper_losses(dataset):
  task, items = _task(dataset, train_keypoints="predicted", keypoint_jitter=0.0,
                      keypoint_drift=0.0, keypoint_drop=0.0, predicted_fraction=0.0,
                      disc_scales=1, disc_pose_condition=False, feature_matching_weight=0.0,
                      local_disc_weight=0.0)
  assert task.local_discriminator is None
  assert set(items) == {"model", "discriminator", "optimizer", "d_optimizer"}
  inputs, real, keypoints = task.stage_inputs(_window(), randomness.StepRandom(0, 3, 2))
  out, _ = task.compute_losses(inputs, real, keypoints, global_batch_size=2)
  assert set(out) == {"l1", "l2", "perceptual", "adversarial", "total", "d_total"}


# ------------------------------------------------------------------------ feature matching


def test_feature_matching_known_values():
  real = [[tf.zeros([2, 4, 4, 3]), tf.zeros([2, 2, 2, 5])], [tf.zeros([2, 2, 2, 3])]]
  np.testing.assert_array_equal(losses.feature_matching_loss(real, real), [0.0, 0.0])
  # Scale 0: layers differ by 1 and 3 everywhere -> (1 + 3) / 2 = 2; scale 1 by 0.5; the
  # mean over scales (2 + 0.5) / 2 = 1.25. Example 1 is equal to the real one in scale 0.
  fake = [[tf.ones([2, 4, 4, 3]) * [[[[1.0]]], [[[0.0]]]],
           tf.fill([2, 2, 2, 5], 3.0) * [[[[1.0]]], [[[0.0]]]]],
          [tf.fill([2, 2, 2, 3], -0.5)]]
  np.testing.assert_allclose(losses.feature_matching_loss(real, fake), [1.25, 0.25])
  # The real features are constants: the gradient reaches the fake ones only.
  with tf.GradientTape() as tape:
    variable = tf.Variable(tf.zeros([1, 2, 2, 1]))
    loss = losses.feature_matching_loss([[variable]], [[tf.ones([1, 2, 2, 1])]])
  assert tape.gradient(loss, variable) is None


# ----------------------------------------------------------------------------- local crops


def test_local_crops_follow_the_bow_hand():
  groups = local_crops.crop_groups("cello")
  hand = skeleton.RIGHT_HAND
  assert groups[0] == tuple(skeleton.arm_points(["right"]))  # The bow arm, then both hands.
  assert groups[1:] == (tuple(range(25, 46)), tuple(range(hand.start, hand.stop)))
  assert local_crops.crop_groups("trombone")[0] == groups[0]  # The slide arm.
  frames = np.zeros((2, RES, RES, 3), np.float32)
  keypoints = np.zeros((2, 67, 3), np.float32)
  keypoints[:, :, :2] = 0.5
  keypoints[:, :, 2] = 1.0
  # Frame 0: the right hand spread over pixels 40-46 and a white square around pixel
  # (x 44, y 12); frame 1: at the right edge (pixels 58-63, 50-55), its square there.
  rng = np.random.default_rng(0)
  for n, (x0, y0) in enumerate([(40, 9), (58, 50)]):
    pixels = rng.uniform([x0, y0], [x0 + 6, y0 + 6], (21, 2))
    keypoints[n, hand, :2] = (pixels + 0.5) / RES
    frames[n, y0 + 2:y0 + 5, x0 + 2:x0 + 5] = 1.0
  keypoints[1, 25:46, 2] = 0.0  # Frame 1 has no left hand.
  boxes, valid = local_crops.crop_boxes(tf.constant(keypoints), groups, RES, 16)
  np.testing.assert_array_equal(valid, [[1, 1, 1], [1, 0, 1]])
  crops = local_crops.crop(tf.constant(frames), boxes, 16).numpy().reshape(2, 3, 16, 16, 3)
  assert crops[0, 2].sum() == pytest.approx(27.0) and crops[1, 2].sum() == pytest.approx(27.0)
  assert crops[0, 1].max() == 0  # The left hand's crop (at the centre) holds no square.
  # Copied pixel for pixel: a 16-pixel box of whole pixels, inside the frame at the edge.
  box = boxes.numpy()[1, 2] * (RES - 1)
  np.testing.assert_allclose(box[2:] - box[:2], [15, 15], atol=1e-4)
  assert box.min() >= 0 and box.max() <= RES - 1


@pytest.mark.parametrize("crop_size", [1, 5, 16])
def test_crops_equal_crop_and_resize_and_compile_with_xla(crop_size):
  rng = np.random.default_rng(1)
  images = tf.constant(rng.random((3, RES, RES, 2)), tf.float32)
  keypoints = tf.constant(rng.uniform(0, 1, (3, 67, 3)), tf.float32)
  groups = local_crops.crop_groups("trombone")
  boxes, _ = local_crops.crop_boxes(keypoints, groups, RES, 24)  # Sides 24 and more.
  expected = tf.image.crop_and_resize(images, tf.reshape(boxes, [-1, 4]),
                                      tf.repeat(tf.range(3), len(groups)), [crop_size] * 2)
  np.testing.assert_allclose(local_crops.crop(images, boxes, crop_size), expected, atol=1e-5)
  compiled = tf.function(lambda x, b: local_crops.crop(x, b, crop_size), jit_compile=True)
  np.testing.assert_allclose(compiled(images, boxes), expected, atol=1e-5)


def test_a_long_arm_is_shrunk_into_its_crop():
  keypoints = np.zeros((1, 67, 3), np.float32)
  arm = list(local_crops.crop_groups("cello")[0])
  keypoints[0, arm, :2] = np.linspace(0.1, 0.6, len(arm))[:, None]  # Spans 32 pixels.
  keypoints[0, arm, 2] = 1.0
  boxes, _ = local_crops.crop_boxes(tf.constant(keypoints), [arm], RES, 16)
  # Side max(16, 32 + 16 / 2) = 40 pixels (39 between the first and last pixel centres).
  np.testing.assert_allclose((boxes[0, 0, 2:] - boxes[0, 0, :2]) * (RES - 1), [39, 39],
                             atol=1e-4)


# ---------------------------------------------------------------------------- augmentation


def _augmented(step=1, seed=0, **amounts):
  keypoints = np.full((8, 30, 67, 3), 0.5, np.float32)
  keypoints[..., 2] = 1.0
  random = randomness.StepRandom(seed, step, 8)
  return keypoints, pose_augment.augment_keypoints(keypoints, random, fps=30.0,
                                                   **amounts).numpy()


def test_augmentation_moves_the_points_by_the_configured_amounts():
  real, jittered = _augmented(jitter=0.02)
  offset = jittered[..., :2] - real[..., :2]
  assert np.std(offset) == pytest.approx(0.02, rel=0.05) and abs(np.mean(offset)) < 1e-3
  np.testing.assert_array_equal(jittered[..., 2], 1.0)
  _, drifted = _augmented(drift=0.02)
  offset = drifted[..., :2] - real[..., :2]
  assert np.std(offset) == pytest.approx(0.02, rel=0.1)
  # Smooth: over a frame the offset turns by (pi / 2) / 30 rad, a change of about 5% of it.
  assert np.std(np.diff(offset, axis=1)) < 0.1 * 0.02
  _, dropped = _augmented(drop=0.2)
  assert np.mean(dropped[..., 2] == 0) == pytest.approx(0.2, abs=0.02)
  np.testing.assert_array_equal(dropped[..., :2], real[..., :2])


def test_augmentation_is_a_function_of_seed_and_step():
  amounts = dict(jitter=0.01, drift=0.01, drop=0.1)
  np.testing.assert_array_equal(_augmented(**amounts)[1], _augmented(**amounts)[1])
  assert not np.allclose(_augmented(step=2, **amounts)[1], _augmented(**amounts)[1])
  assert not np.allclose(_augmented(seed=1, **amounts)[1], _augmented(**amounts)[1])
  real, same = _augmented()
  np.testing.assert_array_equal(same, real)


def test_stage_inputs_draw_from_the_augmented_or_predicted_pose(dataset):
  task, _ = _task(dataset, predicted_fraction=0.0)
  window = _window()
  random = lambda: randomness.StepRandom(0, 3, 2)
  inputs, real, keypoints = task.stage_inputs(window, random())
  start = int(random().integer("stu/crop", 1, 8 - 4 + 1))
  np.testing.assert_array_equal(real * 255, window["frames"][:, start:start + 4])  # Targets.
  np.testing.assert_array_equal(inputs["keypoints"], keypoints)
  assert 0 < np.mean(keypoints[..., 2] == 0) < 0.3  # keypoint_drop 0.1.
  assert np.abs(keypoints[..., :2] - window["keypoints"][:, start:start + 4, :, :2]).max() > 0
  np.testing.assert_allclose(inputs["heatmaps"], heatmap.pose_heatmaps(
      keypoints, RES, radius=task.stu.heatmap_radius, parts=task.stu.heatmap_parts,
      limbs=True, line_width=task.stu.limb_width), atol=1e-6)
  assert inputs["heatmaps"].shape[-1] == 8  # 3 heatmaps and 5 limb maps.
  # predicted_fraction 1: every example draws the KP's K^pred (confidence 1), unaugmented.
  task.stu.predicted_fraction = 1.0
  _, _, predicted = task.stage_inputs(window, random())
  expected = task.kp(window["audio"])[:, start:start + 4].numpy()
  np.testing.assert_allclose(predicted[..., :2], expected, atol=1e-6)
  np.testing.assert_array_equal(predicted[..., 2], 1.0)


def test_the_pixel_loss_weighs_the_arms_and_hands_of_the_pose_drawn(dataset):
  task, _ = _task(dataset, limb_loss_weight=4.0, limb_loss_width=2.0)
  keypoints = np.zeros((1, 1, 67, 3), np.float32)
  elbow, wrist = skeleton.INDEX["right_elbow"], skeleton.INDEX["right_wrist"]
  keypoints[0, 0, elbow] = [10.5 / RES, 30.5 / RES, 1]  # Pixels (10, 30) to (40, 30).
  keypoints[0, 0, wrist] = [40.5 / RES, 30.5 / RES, 1]
  weights = task._pixel_weights(tf.constant(keypoints)).numpy()[0, 0, ..., 0]
  assert weights.shape == (RES, RES)
  np.testing.assert_allclose(weights[30, 12:39], 5.0, atol=0.5)  # 1 + 4 on the forearm.
  assert weights[29, 20] == pytest.approx(3.0, abs=0.3)  # Half way across the 2-px line.
  np.testing.assert_array_equal(weights[:27], 1.0)  # Off it, and the missing points: 1.
  task.stu.limb_loss_weight = 0.0
  assert task._pixel_weights(tf.constant(keypoints)) == 1.0


def test_mix_predicted_takes_the_fraction_of_examples():
  real, predicted = tf.zeros([400, 1, 67, 3]), tf.ones([400, 1, 67, 3])
  mixed = pose_augment.mix_predicted(real, predicted, randomness.StepRandom(0, 1, 400), 0.3)
  per_example = mixed.numpy().mean(axis=(1, 2, 3))
  assert set(np.unique(per_example)) == {0.0, 1.0}
  assert per_example.mean() == pytest.approx(0.3, abs=0.07)


# ---------------------------------------------------------------------------- bad values


@pytest.mark.parametrize("key, value, message", [
    ("keypoint_jitter", -0.01, "keypoint_jitter is -0.01; it must be 0 or more"),
    ("feature_matching_weight", -1.0, "feature_matching_weight"),
    ("local_disc_weight", float("nan"), "local_disc_weight"),
    ("keypoint_drop", 1.5, r"keypoint_drop is 1.5; it is a probability, in \[0, 1\]"),
    ("predicted_fraction", -0.1, "predicted_fraction"),
    ("local_crop_size", RES + 1, "local_crop_size is 65; expected a whole number"),
    ("disc_scales", 0, "disc_scales is 0"),
    ("disc_scales", 6, "pools the 64-pixel frames to 2 pixels"),
    ("adversarial_loss", "wgan", "adversarial_loss is 'wgan'"),
    ("train_keypoints", "guessed", "train_keypoints"),
    ("limb_width", 0.0, "limb_width is 0.0; it is a width in pixels, above 0"),
    ("limb_loss_width", -1.0, "limb_loss_width"),
    ("limb_loss_weight", -2.0, "limb_loss_weight is -2.0; it must be 0 or more"),
])
def test_bad_values_are_input_errors_at_construction(dataset, key, value, message):
  config = _config(dataset, **{key: value})
  with pytest.raises(InputError, match=message):
    stu_task.STUTask(config, data.load_manifest(dataset))


def test_a_crop_too_small_for_the_local_discriminator_is_an_input_error(dataset):
  config = _config(dataset, local_disc_weight=1.0, local_crop_size=2)
  with pytest.raises(InputError, match="local_crop_size is 2 pixels, fewer than the 4"):
    stu_task.STUTask(config, data.load_manifest(dataset))
