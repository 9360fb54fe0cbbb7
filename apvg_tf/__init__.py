"""APVG-TF: audio-driven performance video generation in TensorFlow.

Importing this package selects Keras 2 (`tf-keras`) for TensorFlow, which TF-GNN requires:
`TF_USE_LEGACY_KERAS=1` must be set before TensorFlow is first imported. If TensorFlow was
already imported with Keras 3, the import fails with a message that says what to do.
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _check_keras_version():
  """Raises ImportError if TensorFlow is already bound to Keras 3."""
  if os.environ.get("TF_USE_LEGACY_KERAS") not in ("1", "true", "True"):
    raise ImportError(
        "APVG-TF needs Keras 2 (tf-keras) because TF-GNN does: set the environment variable "
        "TF_USE_LEGACY_KERAS=1 (it is currently "
        f"{os.environ.get('TF_USE_LEGACY_KERAS')!r}), or unset it and import apvg_tf first.")
  if "tensorflow" not in sys.modules:
    return
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  version = getattr(tf.keras, "__version__", None) or getattr(
      getattr(tf.keras, "src", None), "__version__", "")
  if str(version).startswith("3"):
    raise ImportError(
        "TensorFlow was imported with Keras 3 before apvg_tf. APVG-TF needs Keras 2 (tf-keras) "
        "because TF-GNN does: import apvg_tf before tensorflow, or start Python with "
        "TF_USE_LEGACY_KERAS=1 in the environment.")


_check_keras_version()

__version__ = "0.1.0"
