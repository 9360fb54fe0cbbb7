"""APVG-TF: audio-driven performance video generation in TensorFlow.

Importing this package selects Keras 2 (`tf-keras`) for TensorFlow, which TF-GNN requires:
`TF_USE_LEGACY_KERAS=1` must be set before TensorFlow is first imported. If TensorFlow was
already imported with Keras 3, the import fails with a message that says what to do.

It also keeps TensorFlow's start quiet on a machine without a GPU: `TF_CPP_MIN_LOG_LEVEL=2`
hides C++ INFO and WARNING lines, and the first import of TensorFlow drops the three ERROR lines
that every import of the 2.17 wheel prints ("Unable to register cuDNN factory: Attempting to
register factory for plugin cuDNN when one has already been registered", and the same for
cuFFT and cuBLAS). The static initialisers of libtensorflow_cc.so.2 print them as they
register the CUDA plugins a second time, GPU or not; they say nothing about the machine or
the run. `TF_CPP_MIN_LOG_LEVEL=3` would hide them too, but TensorFlow reads the variable once,
at its first log line (during the import), so it would hide every C++ error of the whole run;
and absl's log level does not reach them (TensorFlow 2.17 logs through its own TSL logger).
Every other line of the import reaches stderr unchanged.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# What the CUDA plugins print when a second copy of them is registered (the computation placer
# line is the same duplicate in the absl-logging TensorFlow releases after 2.17).
_DUPLICATE_REGISTRATION = re.compile(
    rb"Unable to register cu[A-Za-z]+ factory: Attempting to register factory for plugin "
    rb"cu[A-Za-z]+ when one has already been registered"
    rb"|computation placer already registered")


@contextlib.contextmanager
def _without_duplicate_registration_lines():
  """Holds back what is written to file descriptor 2, and passes it on without those lines.

  The lines are written by C++ straight to the descriptor, so replacing `sys.stderr` would
  not catch them. The held-back text goes to a file, not a pipe: nothing can block while the
  import holds the interpreter lock.
  """
  if sys.stderr is not None:
    sys.stderr.flush()
  try:
    saved = os.dup(2)
  except OSError:  # No stderr to filter.
    yield
    return
  with tempfile.TemporaryFile() as held:
    os.dup2(held.fileno(), 2)
    try:
      yield
    finally:
      if sys.stderr is not None:
        sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      held.seek(0)
      with open(2, "wb", closefd=False) as stderr:
        stderr.writelines(line for line in held if not _DUPLICATE_REGISTRATION.search(line))


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
  """Runs the first import of `tensorflow` under `_without_duplicate_registration_lines`.

  A finder rather than `import tensorflow` here, so that importing apvg_tf stays cheap for the
  programs that never load TensorFlow (preprocess.py --help takes 0.2 s, not 5 s).
  """

  def find_spec(self, fullname, path=None, target=None):
    del path, target
    if fullname != "tensorflow":
      return None
    sys.meta_path.remove(self)  # Once, and not for the look-up just below.
    spec = importlib.util.find_spec(fullname)
    if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
      spec.loader = _QuietLoader(spec.loader)
    return spec


class _QuietLoader(importlib.abc.Loader):
  """TensorFlow's own loader, executing the package with the duplicate lines dropped."""

  def __init__(self, loader):
    self._loader = loader

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    # The module keeps TensorFlow's loader, as if this one had never been there.
    module.__loader__ = module.__spec__.loader = self._loader
    with _without_duplicate_registration_lines():
      self._loader.exec_module(module)


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
if "tensorflow" not in sys.modules:
  sys.meta_path.insert(0, _QuietTensorFlowImport())

__version__ = "0.1.0"
