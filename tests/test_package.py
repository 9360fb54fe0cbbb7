"""Tests of the package import guard and of the CLI error convention."""

import os
import subprocess
import sys

from conftest import ROOT


def _run(code, env_update=None):
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  env.update(env_update or {})
  return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300)


def test_import_selects_keras_2():
  result = _run("import apvg_tf, tensorflow as tf; import tensorflow_gnn; "
                "print(tf.keras.layers.Dense.__module__)")
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().startswith("tf_keras"), result.stdout


def test_import_after_keras_3_explains_what_to_do():
  result = _run("import tensorflow as tf; tf.keras.layers.Dense; import apvg_tf")
  assert result.returncode != 0
  assert "import apvg_tf before tensorflow" in result.stderr
  assert "TF_USE_LEGACY_KERAS=1" in result.stderr


def test_cli_turns_input_error_into_one_line_and_exit_2():
  result = _run("from apvg_tf import cli\n"
                "from apvg_tf.errors import InputError\n"
                "def main(argv):\n"
                "  raise InputError('the file x.wav is missing;\\n check the path')\n"
                "cli.run(main)\n")
  assert result.returncode == 2
  assert result.stderr.strip() == "error: the file x.wav is missing; check the path"
  assert "Traceback" not in result.stderr
