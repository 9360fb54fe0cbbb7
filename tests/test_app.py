"""The web page (app.py) as a person meets it: a real server, driven by a real headless Chromium.

The server is `python app.py` in a subprocess on a free localhost port with the shipped demo
model; its stdout is the job log (`job N: started / finished / refused / cancelled`), which
tells the order in which jobs ran. The browser is Debian's `chromium` through Selenium and
`chromedriver` (`make setup` installs them as root); where they are missing the browser tests
skip with that reason. The rules behind the page (limits, models offered, cancelling) are
also tested in-process on `apvg_tf.web.jobs`, with a stand-in model where no real one is
needed.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
import soundfile
from gradio_client import Client, handle_file

from apvg_tf import generation, video_io
from apvg_tf.errors import InputError
from apvg_tf.web import jobs
import test_import_graph
from conftest import ROOT

try:
  from selenium import webdriver
  from selenium.webdriver.chrome.service import Service
  from selenium.webdriver.common.by import By
except ImportError:  # The browser tests skip, saying so.
  webdriver = None

DEMO = os.path.join(ROOT, "saved_models", "demo_cello")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _tone(path, seconds, hz=220.0):
  t = np.arange(int(seconds * 44100)) / 44100
  soundfile.write(str(path), (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 44100)
  return str(path)


@pytest.fixture(scope="module")
def music(tmp_path_factory):
  """The files a user uploads: 3 s of music, 12 s of music, and a text file named .wav."""
  folder = tmp_path_factory.mktemp("music")
  fake = folder / "fake.wav"
  fake.write_text("this is not audio, only text named .wav\n" * 20)
  return {"three": _tone(folder / "three.wav", 3.0),
          "queued": _tone(folder / "queued.wav", 3.0, hz=330.0),
          "twelve": _tone(folder / "twelve.wav", 12.0, hz=440.0),
          "fake": str(fake)}


class _Server:
  """app.py in a subprocess; `lines` is its stdout so far."""

  def __init__(self, log_folder):
    with socket.socket() as probe:  # A free port (the app binds it a moment later).
      probe.bind(("127.0.0.1", 0))
      port = probe.getsockname()[1]
    self.stderr_path = os.path.join(log_folder, "app_stderr.txt")
    with open(self.stderr_path, "w") as stderr:
      self.process = subprocess.Popen(
          [sys.executable, os.path.join(ROOT, "app.py"), f"--port={port}"], cwd=ROOT,
          stdout=subprocess.PIPE, stderr=stderr, text=True,
          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    self.lines = []
    threading.Thread(target=self._read, daemon=True).start()
    address = self.wait_for(r"^APVG-TF app: (http://\S+)", timeout=240)
    self.url = address.group(1)
    self.folder = self.wait_for(r"^uploads and results: (\S+)", timeout=1).group(1)

  def _read(self):
    for line in self.process.stdout:
      self.lines.append(line.rstrip("\n"))

  def wait_for(self, pattern, *, timeout):
    """The first match of `pattern` in a line of the log, waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      for line in list(self.lines):
        found = re.search(pattern, line)
        if found:
          return found
      if self.process.poll() is not None:
        break
      time.sleep(0.1)
    with open(self.stderr_path) as f:
      stderr = f.read()[-3000:]
    raise AssertionError(f"no line {pattern!r} in the app's log: {self.lines}\n{stderr}")

  def get(self, path):
    """(status, body) of GET path on the server."""
    try:
      with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=30) as response:
        return response.status, response.read()
    except urllib.error.HTTPError as e:
      return e.code, e.read()

  def stop(self):
    """SIGTERM, as a service manager stops it; returns its exit status."""
    if self.process.poll() is None:
      self.process.send_signal(signal.SIGTERM)
      try:
        self.process.wait(timeout=60)
      except subprocess.TimeoutExpired:
        self.process.kill()
        self.process.wait()
    return self.process.returncode


@pytest.fixture(scope="module")
def server(tmp_path_factory):
  running = _Server(str(tmp_path_factory.mktemp("app")))
  yield running
  running.stop()


@pytest.fixture(scope="module")
def browser():
  """Headless Chromium through Selenium, recording every network request it makes."""
  if webdriver is None:
    pytest.skip("selenium is not installed (requirements.txt has it: make setup)")
  if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("no chromium and chromedriver (make setup installs them as root: apt-get "
                "install chromium chromium-driver)")
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                   "--window-size=1280,860", "--autoplay-policy=no-user-gesture-required",
                   "--mute-audio"):
    options.add_argument(argument)
  options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
  driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
  driver.set_script_timeout(60)
  yield driver
  driver.quit()


def _wait(condition, timeout, what):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    value = condition()
    if value:
      return value
    time.sleep(0.1)
  raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _upload(driver, path):
  """Puts a file in the upload box, replacing the one there (the box hides its input then)."""
  clear = driver.find_elements(By.CSS_SELECTOR, "#apvg-upload button[aria-label='Clear']")
  if clear:
    clear[0].click()
  field = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#apvg-upload input[type=file]"),
                30, "the upload field")
  field[0].send_keys(path)
  name = os.path.basename(path)
  _wait(lambda: driver.find_elements(By.CSS_SELECTOR, f"#apvg-upload [aria-label='{name}']"),
        60, f"{name} to be uploaded")


def _body(driver):
  return driver.execute_script("return document.body.innerText")


_PLAY = """
const done = arguments[arguments.length - 1];
const video = document.querySelector("#apvg-video video");
const report = () => done({src: video.currentSrc, duration: video.duration,
                           readyState: video.readyState, time: video.currentTime,
                           error: video.error && video.error.code,
                           audioBytes: video.webkitAudioDecodedByteCount,
                           videoBytes: video.webkitVideoDecodedByteCount});
const play = () => video.play().then(() => setTimeout(report, 1500), report);
if (video.readyState >= 1) play(); else video.addEventListener("loadedmetadata", play);
"""


def _probe(path):
  return subprocess.run([video_io.ffmpeg_exe(), "-hide_banner", "-i", path],
                        capture_output=True, text=True, check=False).stderr


def _requested_urls(driver):
  urls = []
  for entry in driver.get_log("performance"):
    message = json.loads(entry["message"])["message"]
    if message["method"] == "Network.requestWillBeSent":
      urls.append(message["params"]["request"]["url"])
  return urls


def test_the_page_plays_a_generated_video_and_reports_a_bad_file(server, browser, music,
                                                                 tmp_path):
  browser.get(server.url)
  _upload(browser, music["three"])
  browser.find_element(By.ID, "apvg-generate").click()
  # The progress of the command line's bar, frames done of total, while it works.
  seen = _wait(lambda: re.findall(r"\b(\d+)/90 frames", _body(browser)), 120, "progress")
  assert int(seen[0]) <= 90
  _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#apvg-video video[src]"), 180,
        "the video")

  played = browser.execute_async_script(_PLAY)
  # Debian's Chromium decodes the H.264 and AAC that generate_video writes: it plays ~3 s with
  # sound in the page.
  assert played["error"] is None and played["readyState"] >= 2, played
  assert abs(played["duration"] - 3.0) < 0.15, played
  assert played["time"] > 0.2 and played["videoBytes"] > 0 and played["audioBytes"] > 0, played
  assert browser.find_elements(By.CSS_SELECTOR, "#apvg-skeleton video[src]")
  status = browser.find_element(By.ID, "apvg-status").text
  assert "three.wav: 90 frames, 3.0 s at 30 fps" in status, status
  screenshot = str(tmp_path / "app.png")
  browser.save_screenshot(screenshot)
  if os.environ.get("APP_SCREENSHOT"):  # The README's picture is taken this way.
    shutil.copy(screenshot, os.environ["APP_SCREENSHOT"])

  # The downloads: the mp4 (H.264 with the music as AAC) and the keypoint track.
  links = [a.get_attribute("href")
           for a in browser.find_elements(By.CSS_SELECTOR, "#apvg-downloads a[href]")]
  video_link = [l for l in links if l.endswith("/three.mp4")]
  track_link = [l for l in links if l.endswith("/three_keypoints.json")]
  assert video_link and track_link, links
  for link, name in ((video_link[0], "three.mp4"), (track_link[0], "track.json")):
    status_code, body = server.get(urllib.parse.urlsplit(link).path)
    assert status_code == 200
    (tmp_path / name).write_bytes(body)
  probe = _probe(str(tmp_path / "three.mp4"))
  assert "Video: h264" in probe and "Audio: aac" in probe, probe
  with open(tmp_path / "track.json") as f:
    assert np.asarray(json.load(f)["keypoints"]).shape == (90, 67, 2)

  # A text file named .wav: one message on the page; the result shown stays as it was.
  video_src = browser.find_element(By.CSS_SELECTOR, "#apvg-video video").get_attribute("src")
  _upload(browser, music["fake"])
  browser.find_element(By.ID, "apvg-generate").click()
  message = _wait(lambda: re.search(r"fake\.wav is not an audio file[^\n]*", _body(browser)),
                  60, "the error message").group(0)
  assert server.folder not in message and "Decoders said" not in message, message
  assert _body(browser).count("is not an audio file") == 1
  assert browser.find_element(By.CSS_SELECTOR,
                              "#apvg-video video").get_attribute("src") == video_src
  assert browser.find_element(By.ID, "apvg-status").text == status
  assert server.get("/")[0] == 200 and server.process.poll() is None
  assert server.wait_for(r"^job \d+: refused: fake\.wav is not an audio file", timeout=5)

  # Offline: every request the page made went to this server (or stayed in the page).
  outside = [u for u in _requested_urls(browser)
             if not u.startswith((server.url.rstrip("/"), "data:", "blob:"))]
  assert not outside, outside
  html = server.get("/")[1].decode()
  external = re.findall(r"<(?:script|link)\b[^>]*(?:src|href)=[\"']?(?:https?:)?//[^>]*>", html)
  assert not external, external


def _job_lines(server, pattern):
  """{job number: [its log lines]} of the jobs whose start line matches `pattern`."""
  numbers = {m.group(1) for l in server.lines for m in [re.match(r"job (\d+): started: (.*)", l)]
             if m and re.search(pattern, m.group(2))}
  return {n: [l for l in server.lines if l.startswith(f"job {n}: ")] for n in numbers}


def test_two_requests_at_once_run_one_after_the_other(server, music, tmp_path):
  clients = [Client(server.url, verbose=False, analytics_enabled=False,
                    download_files=str(tmp_path / f"client{i}")) for i in range(2)]
  submitted = [client.submit("cello_demo.ogg", handle_file(music["three"]), "demo_cello", seed,
                             api_name="/generate") for client, seed in zip(clients, (11, 12))]
  results = [job.result(timeout=300) for job in submitted]

  videos = [r[0]["video"] if isinstance(r[0], dict) else r[0] for r in results]
  assert videos[0] != videos[1]
  assert all(os.path.getsize(v) > 0 for v in videos)
  assert open(videos[0], "rb").read() != open(videos[1], "rb").read()  # Seeds 11 and 12.
  # One after the other: the log's lines of the two jobs do not interleave.
  order = [l for l in server.lines if re.match(r"job \d+: (started|finished).*", l) and
           any(l.startswith(f"job {n}: ") for n in _job_lines(server, r"seed 1[12]$"))]
  assert len(order) == 4, server.lines
  assert [l.split(":")[1].split()[0] for l in order] == ["started", "finished"] * 2, order
  assert order[0].split(":")[0] == order[1].split(":")[0] != order[2].split(":")[0]


def test_a_closed_tab_leaves_the_queue(server, browser, music):
  """A request waiting behind another shows its place; closing its tab removes it."""
  busy = Client(server.url, verbose=False, analytics_enabled=False,
                download_files=False).submit(
      "cello_demo.ogg", handle_file(music["twelve"]), "demo_cello", 0, api_name="/generate")
  server.wait_for(r"^job \d+: started: twelve\.wav", timeout=120)
  first = browser.current_window_handle
  browser.switch_to.new_window("tab")
  browser.get(server.url)
  _upload(browser, music["queued"])
  browser.find_element(By.ID, "apvg-generate").click()
  _wait(lambda: re.search(r"queue: 1/1", _body(browser)), 30, "the queue position")
  browser.close()
  browser.switch_to.window(first)

  busy.result(timeout=300)
  time.sleep(3)  # Time for the queued request to start, had it stayed.
  assert not _job_lines(server, r"^queued\.wav"), server.lines


def test_the_server_serves_no_file_outside_its_folder(server):
  for path in (os.path.join(ROOT, "README.md"), os.path.join(DEMO, "apvg_model.json"),
               "/etc/hostname", os.path.join(server.folder, "..", "..", "etc", "hostname")):
    status, _ = server.get("/gradio_api/file=" + urllib.parse.quote(path))
    assert status in (403, 404), (path, status)


@pytest.mark.parametrize("kind,message", [
    ("oversize", "over the limit of 50 MB"),
    ("too_long", "0.1 minutes long, over the limit of 0.05 minutes"),
    ("empty", "empty"),
    ("nan", "NaN"),
    ("text", "is not an audio file"),
    ("truncated", "truncated"),
])
def test_bad_music_is_one_input_error_naming_the_file_as_the_user_knows_it(tmp_path, kind,
                                                                           message):
  path = tmp_path / "upload.wav"
  limits = jobs.Limits()
  if kind == "oversize":
    with open(path, "wb") as f:  # Sparse: it costs no disk, and is refused before decoding.
      f.truncate(int(50.5 * 2**20))
  elif kind == "too_long":
    _tone(path, 4.0)
    limits = jobs.Limits(max_minutes=0.05)
  elif kind == "empty":
    path.write_bytes(b"")
  elif kind == "nan":
    samples = np.zeros(4410, np.float32)
    samples[100] = np.nan
    soundfile.write(str(path), samples, 44100, subtype="FLOAT")
  elif kind == "text":
    path.write_text("not audio\n" * 10)
  else:
    _tone(path, 1.0)
    os.truncate(path, 2000)
  with pytest.raises(InputError, match=message) as error:
    jobs.read_music(str(path), "My Song.wav", limits)
  assert "My Song.wav" in str(error.value) and str(tmp_path) not in str(error.value)


def test_models_offered_are_the_exports_by_name(tmp_path):
  os.symlink(DEMO, tmp_path / "cellist")
  (tmp_path / "notes").mkdir()
  (tmp_path / "notes" / "saved_model.pb").write_bytes(b"")  # No metadata: not an export.
  (tmp_path / "half").mkdir()
  shutil.copy(os.path.join(DEMO, "apvg_model.json"), tmp_path / "half")  # No SavedModel.
  (tmp_path / "readme.txt").write_text("models live here")
  assert jobs.list_models(str(tmp_path)) == {"cellist": str(tmp_path / "cellist")}
  models = jobs.Models(str(tmp_path))
  with pytest.raises(InputError, match="there is no model '../cellist'"):
    models.runner("../cellist")
  with pytest.raises(InputError, match="no exported model"):
    jobs.Models(str(tmp_path / "notes"))


class _StandIn:
  """A model that draws grey frames: what generate_video asks of a runner, nothing more."""

  metadata = {"fps": 30.0, "chunk_frames": 16, "resolution": 16, "z_dim": 4}

  def initial_state(self):
    return {}

  def step(self, windows, noise, state):
    frames = windows.shape[1]
    return ({"frames": np.full((1, frames, 16, 16, 3), 0.5, np.float32),
             "keypoints": np.full((1, frames, 67, 2), 0.5, np.float32)}, state)


class _StandInModels:
  names = ["stand_in"]

  def runner(self, name):
    del name
    return _StandIn()


def test_generate_video_reports_frames_done_of_total(tmp_path):
  calls = []
  waveform = np.zeros(44100 * 2, np.float32)  # 2 s: 60 frames in chunks of 16.
  generation.generate_video(_StandIn(), waveform, str(tmp_path / "out.mp4"), progress=False,
                            on_progress=lambda done, total: calls.append((done, total)))
  assert calls == [(0, 60), (16, 60), (32, 60), (48, 60), (60, 60)]


def test_a_closed_tab_stops_its_running_job_and_leaves_nothing(tmp_path):
  workspace = jobs.Workspace(str(tmp_path))
  music = _tone(tmp_path / "song.wav", 2.0)

  def close_midway(done, total):
    del total
    if done >= 32:
      workspace.close_session("tab")

  with pytest.raises(jobs.Cancelled):
    workspace.perform("tab", models=_StandInModels(), model="stand_in", music=music,
                      music_name="song.wav", seed=0, limits=jobs.Limits(),
                      on_progress=close_midway)
  assert os.listdir(tmp_path / "results") == []
  # A request of that tab still waiting in the queue does not start.
  with pytest.raises(jobs.Cancelled):
    workspace.perform("tab", models=_StandInModels(), model="stand_in", music=music,
                      music_name="song.wav", seed=0, limits=jobs.Limits())
  result = workspace.perform("other tab", models=_StandInModels(), model="stand_in",
                             music=music, music_name="My song!.wav", seed=0,
                             limits=jobs.Limits())
  assert os.path.basename(result.video) == "My_song.mp4" and result.frames == 60
  assert os.path.dirname(result.video) == os.path.dirname(result.keypoints)
  assert os.path.isfile(result.skeleton)


def test_nothing_in_the_package_imports_the_page():
  """The page is the top layer: it reaches generation (the one path), nothing reaches it."""
  importers = {module for module, imports in test_import_graph.GRAPH.items()
               if not module.startswith("apvg_tf.web")
               and any(name.startswith("apvg_tf.web") for name, _ in imports)}
  assert not importers
  reached = test_import_graph._reachable("apvg_tf.web.page")  # pylint: disable=protected-access
  assert "apvg_tf.generation" in reached


def test_stopping_the_server_removes_its_folder(server):
  assert os.path.isdir(server.folder)
  assert server.stop() == 0
  assert not os.path.exists(server.folder)
