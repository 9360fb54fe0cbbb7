"""The web page: upload music (or pick a bundled piece), watch the performance, download it.

  python app.py [--host=127.0.0.1 --port=7860 --models=saved_models --pieces=assets
      --max_megabytes=50 --max_minutes=10]

Serves on 127.0.0.1 (this machine only) unless --host says otherwise, and prints the address.
One generation runs at a time; the others wait in a queue. Uploads and results live in a
temporary folder that is removed at exit. See docs/app.md.
"""

import atexit
import os
import shutil
import tempfile

import apvg_tf  # noqa: F401  pylint: disable=unused-import  (selects Keras 2 first)
from apvg_tf.web import jobs

# The server's temporary folder (uploads, results, Gradio's cache), made before Gradio is
# imported: Gradio reads GRADIO_TEMP_DIR then.
WORKSPACE = jobs.Workspace(tempfile.mkdtemp(prefix="apvg-app-"))
atexit.register(shutil.rmtree, WORKSPACE.root, ignore_errors=True)
os.environ["GRADIO_TEMP_DIR"] = WORKSPACE.root

# pylint: disable=wrong-import-position
from absl import flags  # noqa: E402

from apvg_tf import cli  # noqa: E402
from apvg_tf.web import page  # noqa: E402

ROOT = os.path.dirname(os.path.abspath(__file__))
_HOST = flags.DEFINE_string("host", "127.0.0.1",
                            "Address to serve on; 0.0.0.0 exposes the page to the network.")
_PORT = flags.DEFINE_integer("port", 7860, "Port to serve on.")
_MODELS = flags.DEFINE_string("models", os.path.join(ROOT, "saved_models"),
                              "Folder of exported models; the page offers each by name.")
_PIECES = flags.DEFINE_string("pieces", os.path.join(ROOT, "assets"),
                              "Folder of bundled music the page offers.")
_MAX_MB = flags.DEFINE_float("max_megabytes", jobs.Limits.max_megabytes,
                             "Largest music file accepted, in MB.")
_MAX_MINUTES = flags.DEFINE_float("max_minutes", jobs.Limits.max_minutes,
                                  "Longest music accepted, in minutes.")


def main(argv):
  del argv
  limits = jobs.Limits(max_megabytes=_MAX_MB.value, max_minutes=_MAX_MINUTES.value)
  models = jobs.Models(_MODELS.value)
  models.runner(models.names[0])  # Loaded now, so the first request does not wait for it.
  demo = page.build(workspace=WORKSPACE, models=models, pieces=jobs.list_pieces(_PIECES.value),
                    limits=limits,
                    picture=os.path.join(ROOT, "docs", "images", "demo_strip.png"))
  print(f"uploads and results: {WORKSPACE.root} (removed at exit)", flush=True)
  page.serve(demo, host=_HOST.value, port=_PORT.value, limits=limits)


if __name__ == "__main__":
  cli.run(main)
