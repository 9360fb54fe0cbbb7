"""The web page over `apvg_tf.web.jobs`, in Gradio: music in, performance video out.

Gradio reads GRADIO_TEMP_DIR when it is imported, so the program that serves (app.py) sets it
to its `jobs.Workspace` folder before importing this module: uploads, results and Gradio's
cache then all live in that one folder, and the page serves no file outside it
(`allowed_paths` stays empty).

The page works with no internet: the theme names system fonts only (Gradio's default loads
its own web fonts), analytics and the version check are off, and Gradio's scripts and styles
come from its wheel. Requests wait in Gradio's queue, one generation at a time (the model
already uses both cores of a small machine), each shown its place; a tab that is closed
leaves the queue, and its running job stops (`jobs.Workspace.close_session`).
"""

import html
import logging
import os
import re
import signal
import threading

import gradio as gr

from apvg_tf.errors import InputError
from apvg_tf.web import jobs

# The queue: requests beyond this many waiting are told that it is full.
MAX_WAITING = 16
# What a user reads in the "How it works" tab.
_PIPELINE = """
The model turns music into a performance in three stages, one video frame at a time
(30 frames per second), as in "Let's Play Music: Audio-driven Performance Video Generation"
(Zhu et al., ICPR 2020):

1. **Keypoints.** The music's constant-Q spectrum around each frame goes into a keypoint
   predictor (an LSTM), which decides where the performer's body, arms, hands and instrument
   are: the skeleton shown beside the video.
2. **Coarse video.** A second network draws a blurry frame from the music, the previous frame
   and some noise (the seed picks the noise: the same seed gives the same video).
3. **Final frame.** A UNet with a recurrent layer and a graph network over the skeleton
   sharpens the coarse frame along the skeleton's heatmaps.

The shipped demo model was trained on a virtual cellist: any music makes a video of that
cellist. Its body, cello and left hand follow the music; its bow arm is a blur (the open
problem of this project). The picture: generated frames (top) above the skeletons they were
drawn from (bottom).
"""
# Plays the skeleton video with the performance: both carry the music, so the skeleton is
# muted and follows the performance's play, pause, seek and speed.
_SYNC_SKELETON = """
() => {
  const follow = (event) => {
    const video = event.target;
    if (!(video instanceof HTMLVideoElement) || !video.closest("#apvg-video")) return;
    const skeleton = document.querySelector("#apvg-skeleton video");
    if (!skeleton) return;
    skeleton.muted = true;
    skeleton.playbackRate = video.playbackRate;
    if (Math.abs(skeleton.currentTime - video.currentTime) > 0.05) {
      skeleton.currentTime = video.currentTime;
    }
    if (event.type === "play") skeleton.play().catch(() => {});
    if (event.type === "pause") skeleton.pause();
  };
  for (const type of ["play", "pause", "seeked", "ratechange"]) {
    document.addEventListener(type, follow, true);  // Media events do not bubble.
  }
}
"""


def _escape_markdown(text):
  return re.sub(r"([\\`*_{}\[\]()#+.!<>|~-])", r"\\\1", text)


def page_message(error):
  """What the page says for an InputError: its message without the decoders' details."""
  return " ".join(str(error).split(" Decoders said:")[0].split())


def build(*, workspace, models, pieces, limits, picture=None):
  """The page.

  Args:
    workspace: `jobs.Workspace` whose folder is GRADIO_TEMP_DIR.
    models: `jobs.Models`.
    pieces: {name: path} of the bundled music (`jobs.list_pieces`).
    limits: `jobs.Limits`.
    picture: optional image for the "How it works" tab.

  Returns:
    gr.Blocks, queued one generation at a time.
  """

  def generate(piece, upload, model, seed, request: gr.Request, progress=gr.Progress()):
    # A refused request is one message and changes nothing else: a warning and gr.skip(),
    # since a raised gr.Error would also stamp "Error" over the result already shown.
    if upload:
      music, name = upload, os.path.basename(upload)
    elif piece in pieces:
      music, name = pieces[piece], piece
    else:
      gr.Warning("Pick a bundled piece or upload a music file first.")
      return gr.skip()
    try:
      result = workspace.perform(
          request.session_hash, models=models, model=model, music=music, music_name=name,
          seed=seed, limits=limits,
          on_progress=lambda done, total: progress((done, total), desc="generating",
                                                   unit="frames"))
    except InputError as e:
      # The toast renders HTML, and the message holds the file's name.
      gr.Warning(html.escape(page_message(e)), duration=None)
      return gr.skip()
    except jobs.Cancelled:  # Only a closed tab cancels: nobody is there to read it.
      return gr.skip()
    status = (f"**{_escape_markdown(name)}**: {result.frames} frames, {result.seconds:.1f} s "
              f"at {result.fps:g} fps, made in {result.elapsed:.1f} s with {model} "
              f"(seed {int(seed)}).")
    return result.video, result.skeleton, [result.video, result.keypoints], status

  def closed(request: gr.Request):
    workspace.close_session(request.session_hash)

  with gr.Blocks(title="APVG-TF: music in, performance out", analytics_enabled=False,
                 # Every 10 minutes, uploads and results older than an hour are removed.
                 delete_cache=(600, 3600)) as demo:
    gr.Markdown("# APVG-TF: music in, performance video out")
    with gr.Tab("Generate"):
      with gr.Row():
        with gr.Column(scale=1, min_width=280):
          piece = gr.Dropdown(list(pieces), value=next(iter(pieces), None),
                              label="A bundled piece", elem_id="apvg-piece")
          upload = gr.File(label="...or your own music (used instead of the piece)",
                           type="filepath", elem_id="apvg-upload")
          gr.Markdown(f"wav, flac, ogg, mp3, or a video with sound; at most "
                      f"{limits.max_megabytes:g} MB and {limits.max_minutes:g} minutes.")
          model = gr.Dropdown(models.names, value=models.names[0], label="Model",
                              elem_id="apvg-model")
          seed = gr.Number(0, label="Seed (the same seed gives the same video)",
                           precision=0, minimum=0, elem_id="apvg-seed")
          button = gr.Button("Generate", variant="primary", elem_id="apvg-generate")
        with gr.Column(scale=2):
          with gr.Row():
            video = gr.Video(label="Performance", interactive=False, elem_id="apvg-video")
            skeleton = gr.Video(label="The skeleton it was drawn from", interactive=False,
                                elem_id="apvg-skeleton")
          downloads = gr.File(label="Download: the video and the keypoints (JSON)",
                              file_count="multiple", interactive=False,
                              elem_id="apvg-downloads")
          status = gr.Markdown(elem_id="apvg-status")
    with gr.Tab("How it works"):
      gr.Markdown(_PIPELINE)
      if picture:
        gr.Image(picture, label="Generated frames above their skeletons", interactive=False,
                 buttons=[])
    # Progress and the place in the queue show over the video.
    button.click(generate, [piece, upload, model, seed], [video, skeleton, downloads, status],
                 api_name="generate", concurrency_limit=1, show_progress_on=video)
    demo.unload(closed)
  return demo.queue(default_concurrency_limit=1, max_size=MAX_WAITING)


def serve(demo, *, host, port, limits):
  """Serves the page until Ctrl-C or SIGTERM; prints its address.

  Raises:
    InputError: if the port cannot be used.
  """
  # Gradio checks its own address with httpx, whose INFO lines absl would print.
  logging.getLogger("httpx").setLevel(logging.WARNING)
  stop = threading.Event()
  previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
  theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                            font_mono=["ui-monospace", "monospace"])
  try:
    # No run history: its page offers to save runs to a remote bucket.
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                show_error=True, max_file_size=limits.max_bytes, ssr_mode=False,
                run_history=False, footer_links=["api", "gradio", "settings"],
                theme=theme, js=_SYNC_SKELETON)
  except OSError as e:
    reason = str(e).split(". ")[0]  # Gradio goes on to name its own settings.
    raise InputError(f"cannot serve on {host}:{port} ({reason}); pick another --port or "
                     "--host") from None
  try:
    print(f"APVG-TF app: {demo.local_url} (Ctrl-C to stop)", flush=True)
    while not stop.wait(0.5):
      pass
  except KeyboardInterrupt:
    pass
  finally:
    demo.close()
    signal.signal(signal.SIGTERM, previous)
