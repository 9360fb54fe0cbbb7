"""Tests of the motion prior (Ren et al.): the sync evaluator, its losses and metrics."""

import math

import numpy as np
import pytest
import tensorflow as tf

from apvg_tf import losses, metrics, skeleton
from apvg_tf.errors import InputError
from apvg_tf.evaluation import evaluate_run
from apvg_tf.models import pose_encoder
from apvg_tf.training import stages, trainer
from conftest import debug_config, write_random_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  return write_random_dataset(tmp_path_factory.mktemp("prior_data"),
                              splits=("train", "train", "validation", "test", "test"),
                              seconds=3.0)


@pytest.fixture(scope="module")
def evaluator_dir(dataset, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("sync_run"))
  config = debug_config(dataset, stage="sync")
  config.sync.num_train_steps = 3
  result = trainer.train_and_evaluate(config, workdir)
  assert np.isfinite(result["sync"]["contrastive"])
  return workdir


def test_contrastive_loss_matches_a_hand_computed_example():
  audio = tf.constant([[1.0, 0.0], [0.0, 1.0]])
  motion = tf.constant([[1.0, 0.0], [0.6, 0.8]])
  # Similarities s[i, j] = <a_i, m_j> / 0.5: [[2, 1.2], [0, 1.6]].
  nll = lambda own, other: -math.log(math.exp(own) / (math.exp(own) + math.exp(other)))
  expected = [0.5 * (nll(2.0, 1.2) + nll(2.0, 0.0)),  # audio 0 -> motions; motion 0 -> audios
              0.5 * (nll(1.6, 0.0) + nll(1.6, 1.2))]
  np.testing.assert_allclose(losses.contrastive_loss(audio, motion, 0.5).numpy(), expected,
                             rtol=1e-6)


def test_motion_encoder_is_invariant_to_the_order_of_nodes_given_the_same_graph():
  rng = np.random.default_rng(0)
  keypoints = rng.random((2, 12, skeleton.NUM_KEYPOINTS, 3)).astype(np.float32)
  keypoints[:, :, 5, 2] = 0.0  # A missing point moves with its node.
  order = rng.permutation(skeleton.NUM_KEYPOINTS)  # New node i is old node order[i].
  where = np.argsort(order)
  encoder = pose_encoder.PoseSequenceEncoder(node_units=16, temporal_channels=(16, 16),
                                             temporal_strides=(1, 2), embedding=8)
  permuted = pose_encoder.PoseSequenceEncoder(
      node_units=16, temporal_channels=(16, 16), temporal_strides=(1, 2), embedding=8,
      bones=[(where[i], where[j]) for i, j in skeleton.BONES])
  embedding, features = encoder(keypoints)
  permuted(keypoints)
  permuted.set_weights(encoder.get_weights())
  embedding2, features2 = permuted(keypoints[:, :, order])
  np.testing.assert_allclose(embedding2.numpy(), embedding.numpy(), rtol=1e-5, atol=1e-4)
  for a, b in zip(features, features2):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-4)
  # ... but not to the graph: the same nodes with other bones give other features.
  rewired = pose_encoder.PoseSequenceEncoder(
      node_units=16, temporal_channels=(16, 16), temporal_strides=(1, 2), embedding=8,
      bones=[(i, (i + 7) % skeleton.NUM_KEYPOINTS) for i in range(skeleton.NUM_KEYPOINTS)])
  rewired(keypoints)
  rewired.set_weights(encoder.get_weights())
  assert np.abs(rewired(keypoints)[0].numpy() - embedding.numpy()).max() > 1e-4


def test_retrieval_metrics_perfect_and_chance():
  eye = np.eye(8, dtype=np.float32)
  sets = metrics.candidate_sets(8, 8)
  perfect = metrics.retrieval_metrics(eye, eye, sets)
  assert perfect["sync_score"] == 1.0 and perfect["sync_score_top5"] == 1.0
  np.testing.assert_allclose(perfect["sync_margin"], 1.0)
  # The same motion for every audio: a tie among all 8, chance in expectation.
  same = np.tile(np.full((1, 8), 8 ** -0.5, np.float32), (8, 1))
  chance = metrics.retrieval_metrics(eye, same, sets, suffix="_mean_pose")
  np.testing.assert_allclose(chance["sync_score_mean_pose"], 1 / 8)
  np.testing.assert_allclose(chance["sync_score_top5_mean_pose"], 5 / 8)
  np.testing.assert_allclose(chance["sync_margin_mean_pose"], 0.0, atol=1e-6)


def test_frechet_distance_of_gaussian_samples():
  rng = np.random.default_rng(0)
  a = rng.standard_normal((400, 3))
  # Whitened: the sample mean 0 and covariance I exactly, so the expected value is exact.
  a -= a.mean(0)
  values, vectors = np.linalg.eigh(np.cov(a, rowvar=False))
  a = a @ vectors / np.sqrt(values)
  assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
  # Shift by 2 along one axis and scale another by 3: |mu|^2 + (sigma - sigma')^2 = 4 + 4.
  b = a * np.array([1.0, 3.0, 1.0]) + np.array([2.0, 0.0, 0.0])
  assert metrics.frechet_distance(a, b) == pytest.approx(8.0, rel=1e-6)


def test_evaluator_scores_held_out_split_and_refuses_too_few_sequences(
    dataset, evaluator_dir):
  config = debug_config(dataset, stage="sync")
  metrics = evaluate_run.evaluate_run(config, evaluator_dir)
  for key in ("sync_score_real", "sync_score_top5_real", "sync_margin_real",
              "sync_score_mean_pose", "motion_fd_mean_pose"):
    assert np.isfinite(metrics[key]), key
  assert 0.0 <= metrics["sync_score_real"] <= 1.0
  config.sync.candidates = 64  # The test split holds 2 clips of 90 frames: 22 sequences.
  with pytest.raises(InputError, match="at least 64 sequences"):
    evaluate_run.evaluate_run(config, evaluator_dir)


def test_kp_trains_with_pose_perceptual_and_adversarial_losses_then_reports_sync(
    dataset, evaluator_dir, tmp_path):
  config = debug_config(dataset, stage="khp", num_train_steps=2)
  config.khp.pose_perceptual_weight = 0.01
  config.khp.adversarial_weight = 0.01
  with pytest.raises(InputError, match="evaluator_workdir"):
    trainer.train_and_evaluate(config, str(tmp_path / "no_evaluator"))
  config.sync.evaluator_workdir = evaluator_dir
  result = trainer.train_and_evaluate(config, str(tmp_path))["khp"]
  assert {"pose_perceptual", "adversarial", "d_total"} <= set(result)
  assert all(np.isfinite(v) for v in result.values())
  # The discriminators are checkpointed (and trained: their optimizer took 2 steps). The last
  # checkpoint, not the best validation one, which may be step 1's.
  config.eval.checkpoint = "latest"
  task, step = stages.restore(config, str(tmp_path), "khp", training_state=True)
  assert step == 2 and int(task.prior.d_optimizer.iterations.numpy()) == 2
  config.eval.checkpoint = "best"
  metrics = evaluate_run.evaluate_run(config, str(tmp_path))
  for key in ("sync_score", "sync_score_real", "sync_score_mean_pose", "sync_score_nn",
              "motion_fd", "motion_fd_nn"):
    assert np.isfinite(metrics[key]), key


def test_kp_with_the_motion_prior_trains_in_mixed_precision(dataset, evaluator_dir, tmp_path):
  config = debug_config(dataset, stage="khp", num_train_steps=2, eval_every_steps=0,
                        mixed_precision=True)
  config.khp.pose_perceptual_weight = 0.01
  config.khp.adversarial_weight = 0.01
  config.sync.evaluator_workdir = evaluator_dir
  result = trainer.train_and_evaluate(config, str(tmp_path))["khp"]
  assert {"pose_perceptual", "adversarial", "d_total"} <= set(result)
  assert all(np.isfinite(v) for v in result.values()), result
  saved = dict(tf.train.list_variables(str(tmp_path / "khp" / "checkpoints")))
  # Both optimizers (the KP's and the discriminators') were dynamic loss-scale optimizers.
  scales = [k for k in saved if "current_loss_scale" in k]
  assert len(scales) == 2, sorted(saved)
  assert tf.keras.mixed_precision.global_policy().name == "float32"
