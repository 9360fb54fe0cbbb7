"""Tests of the virtual performer (apvg_tf.synth), its dataset and `preprocess.py synth`.

The central one, `test_audio_onsets_meet_motion_events`, checks that the music causes the
motion: librosa's onset detector, run on the rendered waveform, finds an onset within one
video frame of the motion event of at least 90 % of the notes (bow change, left-hand
shift or finger, slide move or tongued accent), for both audio back-ends and for a MIDI file
written here. The events themselves are checked in the keypoints, and a control with the
events displaced by a few frames must fail the same criterion.
"""

import json
import os
import subprocess
import sys

import apvg_tf  # pylint: disable=unused-import  (before TensorFlow)
import librosa
import numpy as np
import pretty_midi
import pytest

from apvg_tf import skeleton
from apvg_tf.audio import framing, params
from apvg_tf.errors import InputError
from apvg_tf.synth import music, performer, render, sound
from apvg_tf.synth.dataset import build_synth_dataset, recorded_notes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FPS = 30.0
BACKENDS = [
    "harmonic",
    pytest.param("fluidsynth", marks=pytest.mark.skipif(
        not sound.fluidsynth_available(),
        reason="FluidSynth or the GM soundfont (Debian fluidsynth, fluid-soundfont-gm) is not "
               "installed")),
]


def _tiny_build(out_dir, **kwargs):
  args = dict(instrument="cello", minutes=0.2, resolution=64, fps=FPS, seed=3,
              audio_backend="harmonic", workers=0, progress=False, command="test")
  args.update(kwargs)
  return build_synth_dataset(out_dir, **args)


def _onset_agreement(waveform, events, fps=FPS, latency=sound.ONSET_LATENCY):
  """Fraction of events with a detected audio onset within one frame of event + latency."""
  onsets = librosa.onset.onset_detect(y=waveform, sr=44100, units="time")
  if len(onsets) == 0 or len(events) == 0:
    return 0.0
  distance = np.abs(onsets[None, :] - (np.asarray(events)[:, None] + latency))
  return float(np.mean(distance.min(1) <= 1.0 / fps))


def _events_in_keypoints(perf, fps=FPS):
  """Fraction of the reported motion events that the keypoints really show."""
  kp = perf.keypoints[..., :2]
  last = len(kp) - 1
  if perf.instrument == "cello":
    # How far the bow hand is from where the bow meets the string: it grows on a down-bow
    # and shrinks on an up-bow, whatever the string crossings do to the whole arm.
    reach = np.linalg.norm(kp[:, 4] - perf.props["contact"], axis=-1)
  ok = []
  for time, kind in zip(perf.events, perf.event_kinds):
    f = int(np.floor(time * fps))  # Frames f and f + 1 straddle the event.
    if not 3 <= f <= last - 4:
      continue
    if kind == "bow_change":  # The bow reverses, or starts from rest.
      before = reach[f] - reach[f - 2]
      after = reach[f + 3] - reach[f + 1]
      ok.append(abs(after) > 1e-4 and (before * after < 0 or abs(before) < 0.2 * abs(after)))
    elif kind in ("shift", "finger", "string"):  # Left hand moves, arriving at the onset.
      ok.append(np.abs(kp[f + 1, skeleton.LEFT_HAND] - kp[f - 2, skeleton.LEFT_HAND]).max()
                > 0.002)
    elif kind == "slide":  # The slide hand travels to the new position.
      ok.append(np.linalg.norm(kp[f + 1, 4] - kp[f - 8, 4]) > 0.01)
    else:  # Articulation: the head and bell dip from the onset.
      ok.append(np.linalg.norm(kp[f + 4, 0] - kp[f, 0]) > 1e-4)
  return float(np.mean(ok))


# --------------------------------------------------------------------------- the music


@pytest.mark.parametrize("instrument", ["cello", "trombone"])
def test_generated_music_is_in_range_varied_and_deterministic(instrument):
  spec = music.instrument_spec(instrument)
  pieces = music.generate_pieces(instrument, 2.0, seed=5)
  notes = [n for p in pieces for n in p.notes]
  assert all(spec.lowest <= n.pitch <= spec.highest for n in notes)
  assert all(n.end > n.start for n in notes)
  assert any(n.slur for n in notes) and any(not n.slur for n in notes)
  assert max(n.velocity for n in notes) - min(n.velocity for n in notes) > 50  # pp to ff.
  assert any(music.after_rest(p.notes, k) for p in pieces for k in range(1, len(p.notes)))
  assert all(abs(p.duration - pieces[0].duration) < 1e-9 for p in pieces)
  assert 20 <= pieces[0].duration <= 40
  again = music.generate_pieces(instrument, 2.0, seed=5)
  assert [p.notes for p in again] == [p.notes for p in pieces]
  assert music.generate_pieces(instrument, 2.0, seed=6)[0].notes != pieces[0].notes


def test_splits_are_by_piece_with_one_piece_at_least_in_each():
  for minutes in (0.2, 1.0, 10.0):
    pieces = music.generate_pieces("cello", minutes, seed=0)
    splits = music.assign_splits(pieces, seed=0)
    counts = {s: sum(v == s for v in splits.values()) for s in music.SPLITS}
    assert min(counts.values()) >= 1 and sum(counts.values()) == len(pieces)
  assert counts["train"] >= 0.75 * len(pieces)


# --------------------------------------------------------------------------- the motion


@pytest.mark.parametrize("instrument", ["cello", "trombone"])
def test_bones_keep_their_length_and_the_body_stays_in_frame(instrument):
  for piece in music.generate_pieces(instrument, 1.5, seed=1):
    num_frames = framing.num_video_frames(int(round(piece.duration * 44100)), FPS)
    perf = performer.perform(piece, instrument, FPS, num_frames, seed=1)
    kp = perf.keypoints
    assert kp.shape == (num_frames, skeleton.NUM_KEYPOINTS, 3) and kp.dtype == np.float32
    assert np.all(kp[..., 2] == 1.0)
    assert kp[..., :2].min() > 0.0 and kp[..., :2].max() < 1.0
    for i, j in skeleton.BONES:
      length = np.linalg.norm(kp[:, i, :2] - kp[:, j, :2], axis=-1)
      if length.mean() < 1e-6:  # Wrist to hand root: the same point in both parts.
        assert length.max() < 1e-5
        continue
      assert (length.max() - length.min()) / length.mean() < 0.02, (i, j)
    # No teleporting: no keypoint moves faster than 3 frame widths (~5 m) per second.
    speed = np.linalg.norm(np.diff(kp[..., :2], axis=0), axis=-1) * FPS
    assert speed.max() < 3.0
    assert _events_in_keypoints(perf) >= 0.95


def test_cello_bowing_follows_the_conventions():
  piece = music.generate_pieces("cello", 1.0, seed=2)[0]
  notes = piece.notes
  lo, hi = music.BOW_RANGE
  plan = music.bowing(notes)
  assert [(p["first"], p["last"], p["direction"]) for p in plan] == music.bow_strokes(notes)
  set_at_frog = 0
  for stroke in plan:
    first = stroke["first"]
    if music.after_rest(notes, first) or notes[first].downbeat:
      assert stroke["direction"] == 1  # Down-bow after rests and on the first beat of a bar.
    assert lo - 1e-9 <= min(stroke["from"], stroke["to"]) <= max(stroke["from"], stroke["to"]) \
        <= hi + 1e-9
    assert np.sign(stroke["to"] - stroke["from"]) in (0, stroke["direction"])
    if first and notes[first].start - notes[first - 1].end >= 0.4:
      set_at_frog += 1
      assert stroke["from"] == pytest.approx(lo)  # A long rest gives time to set the bow.
  assert set_at_frog >= 1
  perf = performer.perform(piece, "cello", FPS, int(piece.duration * FPS), seed=0)
  kinds = set(perf.event_kinds)
  assert "bow_change" in kinds and kinds & {"shift", "finger", "string"}


@pytest.mark.parametrize("backend", ["harmonic", "fluidsynth"])
def test_cello_sound_follows_the_bow(backend):
  """A down-bow fades and an up-bow swells: the level follows the bow, louder at the frog."""
  if backend == "fluidsynth" and not sound.fluidsynth_available():
    pytest.skip("fluidsynth or the GM soundfont is not installed")
  # Two long notes, a down-bow then (alternating) an up-bow, each using most of the bow.
  notes = (music.Note(0.6, 2.6, 50, 90), music.Note(2.6, 4.6, 50, 90))
  piece = music.Piece("bow_test", notes, 5.4, np.arange(0.6, 5.4, 0.5), np.array([0.6]), (),
                      "test")
  spans = music.note_bow_positions(notes)
  assert spans[0, 1] > spans[0, 0] + 0.3 and spans[1, 1] < spans[1, 0] - 0.3
  wave = sound.render_audio(piece, "cello", backend, seed=0)
  sr = params.SAMPLE_RATE

  def level(t0, t1):
    return float(np.sqrt(np.mean(wave[int(t0 * sr):int(t1 * sr)].astype(np.float64) ** 2)))

  # Late in each note (after the attack's accent has settled), compare its early and late parts.
  assert level(2.1, 2.5) < 0.9 * level(1.0, 1.4)  # Down-bow: toward the tip, softer.
  assert level(4.1, 4.5) > 1.1 * level(3.0, 3.4)  # Up-bow: toward the frog, louder.


def test_trombone_slide_follows_pitch():
  notes = [music.Note(0.5 + k, 1.3 + k, pitch, 80) for k, pitch in enumerate((46, 45, 44, 43,
                                                                              42, 41, 40))]
  assert performer.trombone_positions(notes) == [1, 2, 3, 4, 5, 6, 7]
  piece = music.Piece("p", tuple(notes), 8.5, np.arange(0.5, 8, 1.0), np.arange(0.5, 8, 4.0),
                      ((0.5, 7.3),), "test")
  perf = performer.perform(piece, "trombone", FPS, int(8.5 * FPS))
  reach = np.linalg.norm(perf.keypoints[:, 4, :2] - perf.keypoints[:, 0, :2], axis=-1)
  held = [reach[int((n.start + 0.5) * FPS)] for n in notes]
  assert np.all(np.diff(held) > 0.02)  # The hand reaches further in each lower position.


# --------------------------------------------------------------------------- causality


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("instrument", ["cello", "trombone"])
def test_audio_onsets_meet_motion_events(instrument, backend):
  rng = np.random.default_rng(0)
  agree, control, counted = [], [], 0
  for piece in music.generate_pieces(instrument, 0.75, seed=11):
    waveform = sound.render_audio(piece, instrument, backend, seed=11)
    perf = performer.perform(piece, instrument, FPS,
                             framing.num_video_frames(len(waveform), FPS), seed=11)
    agree.append(_onset_agreement(waveform, perf.events) * len(perf.events))
    # Control: the same events displaced by 3-5 frames must not pass.
    moved = perf.events + rng.uniform(0.1, 0.16, len(perf.events))
    control.append(_onset_agreement(waveform, moved) * len(perf.events))
    counted += len(perf.events)
  assert counted > 60
  assert sum(agree) / counted >= 0.9
  assert sum(control) / counted < 0.5


def _write_midi(path, *, with_cello=True, with_notes=True, seconds=30.0):
  midi = pretty_midi.PrettyMIDI(initial_tempo=100)
  if with_notes:
    piano = pretty_midi.Instrument(program=0, name="piano")
    piano.notes.append(pretty_midi.Note(70, 60, 0.0, seconds))
    midi.instruments.append(piano)
  if with_cello:
    cello = pretty_midi.Instrument(program=42, name="Cello")
    if with_notes:
      rng = np.random.default_rng(4)
      t, pitch = 0.5, 48
      while t < seconds - 1:
        length = float(rng.choice((0.25, 0.3, 0.45, 0.6, 1.2)))
        pitch = int(np.clip(pitch + rng.choice((-3, -2, -1, 1, 2, 4)), 36, 72))
        legato = rng.random() < 0.25  # Overlap: MIDI's legato, played as a slur.
        cello.notes.append(pretty_midi.Note(int(rng.integers(40, 120)), pitch, t,
                                            t + length + (0.04 if legato else -0.05)))
        t += length + (0.6 if rng.random() < 0.1 else 0.0)
    midi.instruments.append(cello)
  midi.write(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_midi_file_drives_the_motion(tmp_path, backend):
  path = str(tmp_path / "tune.mid")
  _write_midi(path)
  pieces = music.read_midi_pieces([path], "cello")
  assert len(pieces) >= 3
  assert any(n.slur for p in pieces for n in p.notes)
  agree, counted = 0.0, 0
  for piece in pieces:
    waveform = sound.render_audio(piece, "cello", backend)
    perf = performer.perform(piece, "cello", FPS, framing.num_video_frames(len(waveform), FPS))
    assert _events_in_keypoints(perf) >= 0.95
    agree += _onset_agreement(waveform, perf.events) * len(perf.events)
    counted += len(perf.events)
  assert agree / counted >= 0.9


def test_midi_errors_are_input_errors(tmp_path):
  empty, piano, missing = (str(tmp_path / n) for n in ("empty.mid", "piano.mid", "no.mid"))
  _write_midi(empty, with_notes=False)
  _write_midi(piano, with_cello=False)
  with pytest.raises(InputError, match="no notes"):
    music.read_midi_pieces([empty], "cello")
  with pytest.raises(InputError, match="no cello track"):
    music.read_midi_pieces([piano], "cello")
  with pytest.raises(InputError, match="no trombone track"):
    music.read_midi_pieces([piano], "trombone")
  with pytest.raises(InputError, match="--track=5 does not exist"):
    music.read_midi_pieces([piano], "cello", track=5)
  with pytest.raises(InputError, match="does not exist"):
    music.read_midi_pieces([missing], "cello")
  with pytest.raises(InputError, match="--track picks"):
    build_synth_dataset(str(tmp_path / "out"), instrument="cello", track=1)


# --------------------------------------------------------------------------- the dataset


def test_same_seed_gives_identical_bytes(tmp_path):
  first, second = str(tmp_path / "a"), str(tmp_path / "b")
  _tiny_build(first, instrument="trombone", minutes=0.15, workers=2)
  _tiny_build(second, instrument="trombone", minutes=0.15, workers=0)

  def files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, names in os.walk(root) for f in names)

  assert files(first) == files(second) and "manifest.json" in files(first)
  for name in files(first):
    with open(os.path.join(first, name), "rb") as a, open(os.path.join(second, name), "rb") as b:
      assert a.read() == b.read(), name


def test_dataset_reads_back_with_disjoint_splits(tmp_path):
  from apvg_tf.data import load_manifest, read_clips  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "cello")
  summary = _tiny_build(out)
  manifest = load_manifest(out)
  assert manifest["metadata"]["audio_backend"] == "harmonic"
  ids = {s: [c["clip_id"] for c in manifest["splits"][s]] for s in music.SPLITS}
  assert all(ids.values())
  assert len(set().union(*ids.values())) == sum(len(v) for v in ids.values())
  assert sorted(sum(ids.values(), [])) == summary["pieces"]
  for split in music.SPLITS:
    for clip in read_clips(out, split):
      frames, kp, wave = clip["frames"], clip["keypoints"], clip["waveform"]
      assert len(frames) == len(kp) == framing.num_video_frames(len(wave), clip["fps"])
      assert frames.shape[1:] == (64, 64, 3) and frames.dtype == np.uint8
      assert kp[..., :2].min() > 0 and kp[..., :2].max() < 1 and np.all(kp[..., 2] == 1)
      assert np.abs(np.diff(frames.astype(np.int16), axis=0)).mean() > 0.1  # It moves.
  record = manifest["metadata"]["pieces"][0]
  assert len(record["notes"][0]) == len(record["note_fields"])
  # The recorded notes are the generated ones (bar the downbeats, which are not recorded).
  generated = {p.piece_id: p.notes for p in music.generate_pieces("cello", 0.2, seed=3)}
  recorded = recorded_notes(manifest)
  assert sorted(recorded) == summary["pieces"]
  for clip_id, notes in recorded.items():
    assert [(n.pitch, n.velocity, n.slur) for n in notes] == [
        (n.pitch, n.velocity, n.slur) for n in generated[clip_id]]
    np.testing.assert_allclose([(n.start, n.end) for n in notes],
                               [(n.start, n.end) for n in generated[clip_id]], atol=1e-4)
  with pytest.raises(InputError, match="records no notes"):
    recorded_notes({**manifest, "metadata": {}})


def test_strokes_since_rest_counts_from_each_rest():
  notes = [music.Note(0.0, 0.5, 48, 80), music.Note(0.5, 1.0, 50, 80, slur=True),
           music.Note(1.0, 1.5, 52, 80),  # A new stroke; then a rest of 0.5 s.
           music.Note(2.0, 2.5, 53, 80),  # After the rest: counted from 0 again.
           music.Note(2.6, 3.0, 55, 80)]  # A 0.1 s gap is not a rest: the next stroke.
  count = music.strokes_since_rest(notes, np.arange(32) / 10.0)
  expected = [0] * 10 + [1] * 5 + [-1] * 5 + [0] * 5 + [-1] + [1] * 4 + [-1] * 2
  np.testing.assert_array_equal(count, expected)


@pytest.mark.parametrize("resolution", [64, 512])
def test_frames_at_the_extreme_resolutions(resolution):
  piece = music.generate_pieces("trombone", 0.15, seed=0)[0]
  perf = performer.perform(piece, "trombone", FPS, 40, seed=0)
  frames = render.render_frames(perf, resolution, performer=2, start=30, stop=32)
  assert frames.shape == (2, resolution, resolution, 3) and frames.dtype == np.uint8
  assert frames.std() > 20  # A figure on a lit background, not a blank frame.


# --------------------------------------------------------------------------- the program


def _run(*args):
  return subprocess.run([sys.executable, os.path.join(REPO, "preprocess.py"), *args],
                        capture_output=True, text=True, cwd=REPO, check=False)


def test_preprocess_synth_writes_a_dataset_and_a_preview(tmp_path):
  out, preview = str(tmp_path / "ds"), str(tmp_path / "preview.mp4")
  result = _run("synth", "--instrument=trombone", f"--out={out}", "--minutes=0.15",
                "--resolution=64", "--audio_backend=harmonic", f"--preview={preview}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert os.path.isfile(os.path.join(out, "manifest.json")) and os.path.getsize(preview) > 0
  probe = subprocess.run([_ffmpeg(), "-hide_banner", "-i", preview], capture_output=True,
                         text=True, check=False).stderr
  assert "h264" in probe and "aac" in probe


def test_preprocess_user_errors_exit_2_with_one_line(tmp_path):
  empty = str(tmp_path / "empty.mid")
  _write_midi(empty, with_notes=False)
  for args, message in ((("urmp",), "urmp needs --root"),
                        (("synth", "--instrument=cello", f"--out={tmp_path}/x",
                          f"--midi={empty}"), "no notes")):
    result = _run(*args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr


def _ffmpeg():
  from apvg_tf import video_io  # pylint: disable=g-import-not-at-top
  return video_io.ffmpeg_exe()


def test_write_video_muxes_audio_and_checks_the_folder(tmp_path):
  from apvg_tf import video_io  # pylint: disable=g-import-not-at-top
  frames = np.random.default_rng(0).integers(0, 255, (15, 33, 47, 3), dtype=np.uint8)
  path = str(tmp_path / "v.mp4")
  video_io.write_video(path, frames, 30, audio=np.zeros(22050, np.float32))
  probe = subprocess.run([_ffmpeg(), "-hide_banner", "-i", path], capture_output=True,
                         text=True, check=False).stderr
  assert "h264" in probe and "aac" in probe and "48x34" in probe  # Padded to even.
  assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # No temporary left.
  with pytest.raises(InputError, match="does not exist"):
    video_io.write_video(str(tmp_path / "missing" / "v.mp4"), frames, 30)


def test_bow_strokes_experiment_scores_predictions_by_stroke(tmp_path):
  from apvg_tf.data import load_manifest, read_clips  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "cello")
  _tiny_build(out)
  real = {c["clip_id"]: c["keypoints"] for c in read_clips(out, "test", with_frames=False)}
  run = tmp_path / "run"
  os.makedirs(run / "khp" / "eval_test")
  # A KP that draws the real pose everywhere but 0.1 to the right in rests.
  shifted = {}
  notes = recorded_notes(load_manifest(out))
  for clip_id, kp in real.items():
    pred = kp[..., :2].copy()
    count = music.strokes_since_rest(notes[clip_id], np.arange(len(kp)) / FPS)
    pred[count < 0, :, 0] += 0.1
    shifted[f"{clip_id}/pred"], shifted[f"{clip_id}/real"] = pred, kp
  np.savez(run / "khp" / "eval_test" / "predictions.npz", **shifted)
  script = os.path.join(REPO, "experiments", "khp_bow_strokes.py")
  result = subprocess.run([sys.executable, script, f"--dataset_dir={out}", f"--runs={run}",
                           f"--out={tmp_path / 'table.json'}"],
                          capture_output=True, text=True, cwd=REPO, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  groups = json.load(open(tmp_path / "table.json"))["groups"]
  assert groups["rests"]["points"] > 0 and groups["1st stroke after a rest"]["points"] > 0
  np.testing.assert_allclose(groups["rests"]["kp_distance"], 0.1, atol=1e-5)
  assert groups["1st stroke after a rest"]["kp_distance"] == 0.0
  assert groups["1st stroke after a rest"]["kp_distance_mean_pose"] > 0.01
  # A run evaluated on another dataset, or not at all: one line, exit 2.
  other = tmp_path / "other"
  os.makedirs(other / "khp" / "eval_test")
  np.savez(other / "khp" / "eval_test" / "predictions.npz",
           **{"piece_9999/pred": pred, "piece_9999/real": kp})
  for bad, message in ((other, "not in every run's predictions"),
                       (tmp_path / "none", "evaluate.py")):
    result = subprocess.run([sys.executable, script, f"--dataset_dir={out}",
                             f"--runs={run},{bad}"],
                            capture_output=True, text=True, cwd=REPO, check=False)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and last.startswith("error:") and message in last, last


@pytest.mark.parametrize("instrument", ["cello", "trombone"])
def test_a_transposition_moves_only_the_arms_that_follow_the_pitch(instrument):
  """The premise of pitch-shift augmentation (audio/augment.py): the virtual performer playing
  a piece 2 semitones higher moves the arms of `augment.pitch_arms` and barely anything else."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from apvg_tf.audio import augment  # pylint: disable=g-import-not-at-top
  arm = np.zeros(skeleton.NUM_KEYPOINTS, bool)
  arm[augment.pitch_arms(instrument)] = True
  moved = []
  for piece in music.generate_pieces(instrument, 2, 0)[:3]:
    frames = int(piece.duration * 30)
    higher = dataclasses.replace(piece, notes=tuple(
        dataclasses.replace(n, pitch=n.pitch + 2) for n in piece.notes))
    a, b = (performer.perform(p, instrument, 30, frames).keypoints for p in (piece, higher))
    moved.append(np.linalg.norm(a[..., :2] - b[..., :2], axis=-1))  # [T, 67]
  moved = np.concatenate(moved).mean(0)
  assert moved[arm].mean() > 0.02, moved[arm].mean()  # The arms that follow the pitch move...
  # ...and every other point moves less than a tenth of the KP's bow-hand error (about 0.08).
  assert moved[~arm].max() < 0.008, (skeleton.KEYPOINT_NAMES[np.argmax(moved * ~arm)],
                                      moved[~arm].max())
