# APVG-TF: `make demo` (set up, then music in -> performance video out), `make app` (the same
# in a web page) and `make test`. Each creates the virtual environment .venv/ first if missing.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
# Any Python 3.11 will do; PYTHON=/path/to/python3.11 make setup picks one.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
OUT ?= outputs
# The web page's address: 127.0.0.1 serves this machine only; HOST=0.0.0.0 exposes it.
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: setup system-deps test demo app synth-demo benchmarks clean

setup: $(STAMP) system-deps

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || \
	  { echo "error: APVG-TF needs Python 3.11 (TensorFlow 2.17's stack); found $$($(PYTHON) --version 2>&1). Set PYTHON=/path/to/python3.11." >&2; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# FluidSynth and the General MIDI soundfont give the virtual performer realistic instrument
# audio; without them a built-in synthesizer is used, so their absence is not an error.
system-deps:
	@if command -v fluidsynth >/dev/null && [ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing fluidsynth and fluid-soundfont-gm with apt-get"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fluidsynth fluid-soundfont-gm) >/dev/null 2>&1 \
	    || echo "note: could not install fluidsynth; the built-in synthesizer will make the audio"; \
	else echo "note: fluidsynth is not installed (needs root: apt-get install fluidsynth fluid-soundfont-gm); the built-in synthesizer will make the audio"; fi
# Headless Chromium and its driver: tests/test_app.py drives the web page with them; without
# them that test skips, saying why.
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium and chromium-driver with apt-get"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
	    || echo "note: could not install chromium; the web page's browser test will skip"; \
	else echo "note: chromium is not installed (needs root: apt-get install chromium chromium-driver); the web page's browser test will skip"; fi

test: setup
	$(PY) -m pytest -q -n 2 --dist=loadfile tests

# The main job on the built-in default: music in (a held-out piece of the virtual cellist,
# assets/cello_demo.ogg) -> performance video out, with the shipped demo model.
demo: setup
	@mkdir -p $(OUT)
	$(PY) generate.py --audio=assets/cello_demo.ogg --out=$(OUT)/demo_cello.mp4
	@echo "wrote $(OUT)/demo_cello.mp4"

# The web page: pick a bundled piece or upload music, watch the performance, download it
# (docs/app.md). Prints its address; Ctrl-C stops it.
app: setup
	$(PY) app.py --host=$(HOST) --port=$(PORT)

# The virtual performer itself: generated music, rendered performer, true keypoints drawn.
synth-demo: setup
	@mkdir -p $(OUT)
	$(PY) preprocess.py synth --instrument=cello --minutes=0.5 --resolution=128 \
	  --out=$(OUT)/synth_cello_data --preview=$(OUT)/synth_cello.mp4
	@echo "wrote $(OUT)/synth_cello.mp4"

benchmarks: setup
	$(PY) benchmarks/data_pipeline.py --out=$(OUT)/benchmarks
	$(PY) benchmarks/khp.py --out=$(OUT)/benchmarks
	$(PY) benchmarks/cvg.py --out=$(OUT)/benchmarks
	$(PY) benchmarks/stu.py --out=$(OUT)/benchmarks
	$(PY) benchmarks/generate.py --out=$(OUT)/benchmarks
	$(PY) benchmarks/preprocess_footage.py --out=$(OUT)/benchmarks

clean:
	rm -rf $(OUT) .pytest_cache
