"""Tests of URMP and Sub-URMP discovery (apvg_tf.footage.layouts) on fake folder trees.

Videos and images are empty files (discovery never decodes them); Sub-URMP's audio chunks are
real stereo WAVs, since they are joined into one file per song.
"""

import os
import warnings

import numpy as np
import pytest
import soundfile as sf

from apvg_tf.errors import InputError
from apvg_tf.footage import layouts

RATE = 800          # Samples per second of the fake chunks: 0.5 s = 400 frames.
CHUNK = RATE // 2


def _touch(path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  open(path, "wb").close()


def _urmp_piece(root, folder, *, video=True, tracks=True):
  """A URMP piece folder named like 01_Jupiter_vn_vc with its video and AuSep tracks."""
  number, piece, *players = folder.split("_")
  piece_dir = os.path.join(root, folder)
  os.makedirs(piece_dir, exist_ok=True)
  if video:
    _touch(os.path.join(piece_dir, f"Vid_{folder}.mp4"))
  _touch(os.path.join(piece_dir, f"AuMix_{folder}.wav"))
  for k, player in enumerate(players, start=1):
    if tracks:
      _touch(os.path.join(piece_dir, f"AuSep_{k}_{player}_{number}_{piece}.wav"))
    _touch(os.path.join(piece_dir, f"Notes_{k}_{player}_{number}_{piece}.txt"))


@pytest.fixture
def urmp_root(tmp_path):
  root = tmp_path / "URMP"
  for folder in ("01_Jupiter_vn_vc", "02_Sonata_vn_vn", "03_Dance_fl_cl", "11_Maria_ob_vc",
                 "12_Spring_vn_vn_vc", "24_Pirates_vn_vn_va_vc", "40_Hark_vn_vc_vc",
                 "44_K515_vn_vn_va_va_vc"):
    _urmp_piece(str(root), folder)
  _touch(str(root / "README.txt"))
  return str(root)


def _write_chunk(path, data, rate=RATE, subtype="PCM_16"):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  sf.write(path, data, rate, subtype=subtype)


def _noise(rng, frames=CHUNK):
  """Stereo noise quantised to 16 bits, so it reads back exactly."""
  return np.round(rng.uniform(-0.5, 0.5, (frames, 2)) * 32768) / 32768


def _sub_urmp(root, split, instrument, song, steps, rng, *, images=True, chunks=True,
              separator="_"):
  """Writes Sub-URMP files of one song; returns {step: chunk samples} (float, [CHUNK, 2])."""
  written = {}
  for step in steps:
    stem = f"{instrument}{separator}{song}_{step:04d}"
    if images:
      _touch(os.path.join(root, "img", split, instrument, f"{stem}.jpg"))
    if chunks:
      written[step] = _noise(rng)
      _write_chunk(os.path.join(root, "chunk", split, instrument, f"{stem}.wav"),
                   written[step])
  return written


@pytest.fixture
def sub_urmp_root(tmp_path):
  """cello songs 01 (train, steps 0-4), 02 (train, 0-2), 03 (validation, 0-3); violin 01."""
  root = str(tmp_path / "Sub-URMP")
  rng = np.random.default_rng(0)
  audio = {
      ("train", "01"): _sub_urmp(root, "train", "cello", "01", range(5), rng),
      ("train", "02"): _sub_urmp(root, "train", "cello", "02", range(3), rng),
      ("validation", "03"): _sub_urmp(root, "validation", "cello", "03", range(4), rng),
  }
  _sub_urmp(root, "train", "violin", "01", range(2), rng)
  return root, audio


# ---------------------------------------------------------------------------------------------
# URMP.


def test_urmp_cello_clips_regions_and_tracks(urmp_root, tmp_path):
  clips = layouts.discover(urmp_root, "cello", str(tmp_path / "staging"))
  ids = [clip.source.clip_id for clip in clips]
  assert ids == ["urmp_01_Jupiter_p2_vc", "urmp_11_Maria_p2_vc", "urmp_12_Spring_p3_vc",
                 "urmp_24_Pirates_p4_vc", "urmp_40_Hark_p2_vc", "urmp_40_Hark_p3_vc",
                 "urmp_44_K515_p5_vc"]
  by_id = {clip.source.clip_id: clip for clip in clips}
  jupiter = by_id["urmp_01_Jupiter_p2_vc"]
  assert jupiter.source.video == os.path.join(urmp_root, "01_Jupiter_vn_vc",
                                              "Vid_01_Jupiter_vn_vc.mp4")
  assert jupiter.source.audio == os.path.join(urmp_root, "01_Jupiter_vn_vc",
                                              "AuSep_2_vc_01_Jupiter.wav")
  assert jupiter.source.images == () and jupiter.gaps == ()
  # Player k of n: x in [(k - 1) / n, k / n], full height.
  assert jupiter.region == (0.5, 0.0, 1.0, 1.0)
  assert by_id["urmp_12_Spring_p3_vc"].region == pytest.approx((2 / 3, 0.0, 1.0, 1.0))
  assert by_id["urmp_40_Hark_p2_vc"].region == pytest.approx((1 / 3, 0.0, 2 / 3, 1.0))
  assert by_id["urmp_44_K515_p5_vc"].region == pytest.approx((0.8, 0.0, 1.0, 1.0))
  assert not os.path.exists(tmp_path / "staging")  # URMP stages nothing.


def test_urmp_accepts_abbreviation_and_other_instruments(urmp_root, tmp_path):
  by_abbreviation = layouts.discover(urmp_root, "vc", str(tmp_path))
  assert by_abbreviation == layouts.discover(urmp_root, "cello", str(tmp_path))
  flutes = layouts.discover(urmp_root, "flute", str(tmp_path))
  assert [c.source.clip_id for c in flutes] == ["urmp_03_Dance_p1_fl"]
  assert flutes[0].region == (0.0, 0.0, 0.5, 1.0)
  violas = layouts.discover(urmp_root, "viola", str(tmp_path))
  assert [(c.source.clip_id, c.region[0]) for c in violas] == [
      ("urmp_24_Pirates_p3_va", 0.5), ("urmp_44_K515_p3_va", 0.4), ("urmp_44_K515_p4_va", 0.6)]


def test_urmp_splits_by_piece(urmp_root, tmp_path):
  clips = layouts.discover(urmp_root, "cello", str(tmp_path))
  split_of_piece = {}
  for clip in clips:
    piece = clip.source.clip_id.split("_p")[0]
    split_of_piece.setdefault(piece, set()).add(clip.source.split)
  assert all(len(splits) == 1 for splits in split_of_piece.values())  # Never straddles.
  # Cello pieces in number order 01 11 12 24 40 44: runs of five give train x3, validation,
  # test, and the sixth starts a new run (train).
  assert {piece: splits.pop() for piece, splits in split_of_piece.items()} == {
      "urmp_01_Jupiter": "train", "urmp_11_Maria": "train", "urmp_12_Spring": "train",
      "urmp_24_Pirates": "validation", "urmp_40_Hark": "test", "urmp_44_K515": "train"}


@pytest.mark.parametrize("count,expected", [
    (1, ["train"]),
    (2, ["train", "test"]),
    (3, ["train", "validation", "test"]),
    (4, ["train", "train", "validation", "test"]),
    (7, ["train"] * 3 + ["validation", "test", "train", "train"]),
    (10, (["train"] * 3 + ["validation", "test"]) * 2),
])
def test_urmp_piece_splits_rule(count, expected):
  numbers = [f"{n:02d}" for n in range(3, 3 + 2 * count, 2)]
  splits = layouts.urmp_piece_splits(reversed(numbers))  # Input order does not matter.
  assert [splits[n] for n in numbers] == expected


def test_urmp_output_is_deterministic(tmp_path):
  # The same pieces created in two different orders list the same clips in the same order.
  roots = []
  for k, order in enumerate(([0, 1, 2, 3], [3, 1, 0, 2])):
    root = str(tmp_path / f"urmp{k}")
    folders = ["31_Slavonic_vn_vc", "05_Entertainer_vc_vc", "19_Pavane_cl_vn_vc",
               "17_Nocturne_vn_fl_cl"]
    for i in order:
      _urmp_piece(root, folders[i])
    roots.append(root)
  first, second = (layouts.discover(root, "cello", str(tmp_path)) for root in roots)
  strip = lambda clips: [(c.source.clip_id, c.source.split, c.region) for c in clips]
  assert strip(first) == strip(second)
  assert [c.source.clip_id for c in first] == [
      "urmp_05_Entertainer_p1_vc", "urmp_05_Entertainer_p2_vc", "urmp_19_Pavane_p3_vc",
      "urmp_31_Slavonic_p2_vc"]


def test_urmp_missing_track_strict_and_lenient(tmp_path):
  root = str(tmp_path / "urmp")
  _urmp_piece(root, "01_Jupiter_vn_vc")
  _urmp_piece(root, "11_Maria_ob_vc", tracks=False)
  with pytest.raises(InputError, match="AuSep_2_vc_11_Maria.wav is missing"):
    layouts.discover(root, "cello", str(tmp_path))
  with pytest.warns(layouts.LayoutWarning, match="AuSep_2_vc_11_Maria.wav"):
    clips = layouts.discover(root, "cello", str(tmp_path), strict=False)
  assert [c.source.clip_id for c in clips] == ["urmp_01_Jupiter_p2_vc"]


def test_urmp_piece_without_video_is_skipped_with_warning(tmp_path):
  root = str(tmp_path / "urmp")
  _urmp_piece(root, "01_Jupiter_vn_vc")
  _urmp_piece(root, "11_Maria_ob_vc", video=False)
  with pytest.warns(layouts.LayoutWarning, match="11_Maria_ob_vc has no Vid"):
    clips = layouts.discover(root, "cello", str(tmp_path))
  assert [c.source.clip_id for c in clips] == ["urmp_01_Jupiter_p2_vc"]


def test_urmp_absent_instrument_lists_those_present(urmp_root, tmp_path):
  with pytest.raises(InputError, match=r"no trombone \(tbn\).*present: cello, clarinet, flute, "
                                       r"oboe, viola, violin"):
    layouts.discover(urmp_root, "trombone", str(tmp_path))


# ---------------------------------------------------------------------------------------------
# Sub-URMP.


def test_sub_urmp_clips_images_and_splits(sub_urmp_root, tmp_path):
  root, _ = sub_urmp_root
  staging = str(tmp_path / "staging")
  clips = layouts.discover(root, "cello", staging)
  assert [(c.source.clip_id, c.source.split) for c in clips] == [
      ("suburmp_train_cello_01", "train"), ("suburmp_train_cello_02", "train"),
      ("suburmp_validation_cello_03", "validation")]
  first = clips[0].source
  assert first.video is None and first.image_fps == 2.0
  assert first.images == tuple(os.path.join(root, "img", "train", "cello", f"cello_01_{s:04d}.jpg")
                               for s in range(5))
  assert first.audio == os.path.join(staging, "sub_urmp_audio", "suburmp_train_cello_01.wav")
  assert all(c.region is None and c.gaps == () for c in clips)
  as_test = layouts.discover(root, "cello", staging, validation_as="test")
  assert [c.source.split for c in as_test] == ["train", "train", "test"]


def test_sub_urmp_audio_is_the_chunks_in_order(sub_urmp_root, tmp_path):
  root, audio = sub_urmp_root
  clips = layouts.discover(root, "cello", str(tmp_path))
  for clip, key in zip(clips, [("train", "01"), ("train", "02"), ("validation", "03")]):
    expected = np.concatenate([audio[key][step] for step in sorted(audio[key])])
    joined, rate = sf.read(clip.source.audio, always_2d=True)
    assert rate == RATE and sf.info(clip.source.audio).subtype == "PCM_16"
    assert joined.shape == (len(audio[key]) * CHUNK, 2)
    np.testing.assert_array_equal(joined, expected)


def test_sub_urmp_steps_sort_numerically_and_staging_is_reused(tmp_path):
  root = str(tmp_path / "sub")
  rng = np.random.default_rng(1)
  # Unpadded steps: 9 must come before 10 (a string sort puts "10" first).
  written = {}
  for step in (10, 9, 11):
    written[step] = _noise(rng)
    _touch(os.path.join(root, "img", "train", "tuba", f"tuba_05_{step}.jpg"))
    _write_chunk(os.path.join(root, "chunk", "train", "tuba", f"tuba_05_{step}.wav"),
                 written[step])
  staging = str(tmp_path / "staging")
  clip, = layouts.discover(root, "tuba", staging)
  assert [os.path.basename(p) for p in clip.source.images] == [
      "tuba_05_9.jpg", "tuba_05_10.jpg", "tuba_05_11.jpg"]
  np.testing.assert_array_equal(sf.read(clip.source.audio)[0],
                                np.concatenate([written[9], written[10], written[11]]))
  # A second run keeps the joined file (same length), a file of the wrong length is redone.
  stamp = os.stat(clip.source.audio).st_mtime_ns
  os.utime(clip.source.audio, ns=(stamp - 10**9, stamp - 10**9))
  layouts.discover(root, "tuba", staging)
  assert os.stat(clip.source.audio).st_mtime_ns == stamp - 10**9
  sf.write(clip.source.audio, np.zeros((7, 2)), RATE)
  layouts.discover(root, "tuba", staging)
  assert sf.info(clip.source.audio).frames == 3 * CHUNK


def test_sub_urmp_gaps_are_reported(tmp_path):
  root = str(tmp_path / "sub")
  _sub_urmp(root, "train", "cello", "07", [0, 1, 2, 5, 6, 8], np.random.default_rng(2))
  with pytest.warns(layouts.LayoutWarning, match="lacks steps 3-4, 7"):
    clip, = layouts.discover(root, "cello", str(tmp_path / "staging"))
  assert clip.gaps == ((3, 4), (7, 7))
  assert len(clip.source.images) == 6
  assert sf.info(clip.source.audio).frames == 6 * CHUNK  # One chunk per remaining image.


def test_sub_urmp_without_gaps_does_not_warn(sub_urmp_root, tmp_path):
  root, _ = sub_urmp_root
  with warnings.catch_warnings():
    warnings.simplefilter("error", layouts.LayoutWarning)
    layouts.discover(root, "cello", str(tmp_path))


def test_sub_urmp_mismatched_stems(tmp_path):
  root = str(tmp_path / "sub")
  rng = np.random.default_rng(3)
  _sub_urmp(root, "train", "cello", "01", range(4), rng)
  _sub_urmp(root, "train", "cello", "01", [4, 6], rng, chunks=False)   # Images only.
  _sub_urmp(root, "train", "cello", "01", [5], rng, images=False)      # Audio only.
  with pytest.raises(InputError, match="cello_01_0004 has an image but no audio chunk"):
    layouts.discover(root, "cello", str(tmp_path / "staging"))
  with pytest.warns(layouts.LayoutWarning, match="3 unmatched file"):
    clip, = layouts.discover(root, "cello", str(tmp_path / "staging"), strict=False)
  assert [os.path.basename(p) for p in clip.source.images] == [
      f"cello_01_{s:04d}.jpg" for s in range(4)]
  assert sf.info(clip.source.audio).frames == 4 * CHUNK


def test_sub_urmp_first_mismatch_can_be_a_chunk(tmp_path):
  root = str(tmp_path / "sub")
  rng = np.random.default_rng(4)
  _sub_urmp(root, "train", "horn", "02", range(1, 4), rng)
  _sub_urmp(root, "train", "horn", "02", [0], rng, images=False)
  with pytest.raises(InputError, match="horn_02_0000 has an audio chunk but no image"):
    layouts.discover(root, "horn", str(tmp_path))


def test_sub_urmp_other_namings(tmp_path):
  # Instrument with an underscore, folder by abbreviation, stem without '_' before the song.
  root = str(tmp_path / "sub")
  rng = np.random.default_rng(5)
  _sub_urmp(root, "train", "double_bass", "01", range(2), rng)
  _sub_urmp(root, "train", "sax", "03", range(2), rng, separator="")
  basses = layouts.discover(root, "double_bass", str(tmp_path))
  assert [c.source.clip_id for c in basses] == ["suburmp_train_double_bass_01"]
  saxes = layouts.discover(root, "saxophone", str(tmp_path))
  assert [c.source.clip_id for c in saxes] == ["suburmp_train_saxophone_03"]
  assert [os.path.basename(p) for p in saxes[0].source.images] == ["sax03_0000.jpg",
                                                                     "sax03_0001.jpg"]


def test_sub_urmp_overlapping_chunks_are_joined_by_their_hop(tmp_path):
  # Chunks cut every 0.2 s from one recording, each 0.5 s long: the music must not repeat.
  root = str(tmp_path / "sub")
  hop = RATE // 5
  signal = _noise(np.random.default_rng(6), frames=hop * 9 + CHUNK)
  for step in range(10):
    _touch(os.path.join(root, "img", "train", "oboe", f"oboe_01_{step:04d}.jpg"))
    _write_chunk(os.path.join(root, "chunk", "train", "oboe", f"oboe_01_{step:04d}.wav"),
                 signal[step * hop:step * hop + CHUNK])
  clip, = layouts.discover(root, "oboe", str(tmp_path / "staging"))
  assert clip.source.image_fps == pytest.approx(5.0)
  np.testing.assert_array_equal(sf.read(clip.source.audio)[0], signal)


def test_sub_urmp_absent_instrument_lists_those_present(sub_urmp_root, tmp_path):
  root, _ = sub_urmp_root
  with pytest.raises(InputError, match="no trombone clips.*present: cello, violin"):
    layouts.discover(root, "trombone", str(tmp_path))


# ---------------------------------------------------------------------------------------------
# concatenate_chunks.


def test_concatenate_chunks_exact_and_refuses_mixed_rates(tmp_path):
  rng = np.random.default_rng(7)
  paths, parts = [], []
  for k, frames in enumerate((100, 37, 250)):
    data = np.round(rng.uniform(-0.9, 0.9, (frames, 2)) * 8388607) / 8388608
    paths.append(str(tmp_path / f"c{k}.wav"))
    _write_chunk(paths[-1], data, rate=48000, subtype="PCM_24")
    parts.append(sf.read(paths[-1], dtype="int32")[0])
  out = str(tmp_path / "joined.wav")
  assert layouts.concatenate_chunks(paths, out) == 387
  assert sf.info(out).samplerate == 48000 and sf.info(out).subtype == "PCM_24"
  np.testing.assert_array_equal(sf.read(out, dtype="int32")[0], np.concatenate(parts))
  assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]

  odd = str(tmp_path / "odd.wav")
  _write_chunk(odd, np.zeros((10, 2)), rate=44100)
  with pytest.raises(InputError, match="odd.wav is at 44100 Hz but .*c0.wav is at 48000 Hz"):
    layouts.concatenate_chunks(paths + [odd], str(tmp_path / "bad.wav"))
  assert not os.path.exists(tmp_path / "bad.wav")
  with pytest.raises(InputError, match="no audio chunks"):
    layouts.concatenate_chunks([], out)


# ---------------------------------------------------------------------------------------------
# Layout detection and argument errors.


def test_detect_layout(urmp_root, sub_urmp_root, tmp_path):
  assert layouts.detect_layout(urmp_root) == layouts.URMP
  assert layouts.detect_layout(sub_urmp_root[0]) == layouts.SUB_URMP


def test_unknown_layout_says_what_was_expected(tmp_path):
  (tmp_path / "random").mkdir()
  with pytest.raises(InputError, match="neither a URMP folder .* nor a Sub-URMP folder"):
    layouts.discover(str(tmp_path / "random"), "cello", str(tmp_path))
  with pytest.raises(InputError, match="does not exist"):
    layouts.discover(str(tmp_path / "nowhere"), "cello", str(tmp_path))


def test_unknown_layout_hints(tmp_path):
  audio_only = str(tmp_path / "audio_only")
  _urmp_piece(audio_only, "01_Jupiter_vn_vc", video=False)
  with pytest.raises(InputError, match="none holds a Vid_\\*.mp4"):
    layouts.detect_layout(audio_only)
  outer = tmp_path / "outer"
  _urmp_piece(str(outer / "Dataset"), "01_Jupiter_vn_vc")
  with pytest.raises(InputError, match="subfolder 'Dataset' has a known layout"):
    layouts.detect_layout(str(outer))


def test_unknown_instrument_lists_valid_names(urmp_root, sub_urmp_root, tmp_path):
  for root in (urmp_root, sub_urmp_root[0]):
    with pytest.raises(InputError, match="unknown instrument 'banjo'.*cello.*trombone"):
      layouts.discover(root, "banjo", str(tmp_path))


def test_sub_urmp_periodic_chunks_are_not_taken_for_overlap(tmp_path):
  # A steady tone whose period is a whole number of samples repeats inside each chunk; the
  # chunks follow each other, so they are joined whole.
  root = str(tmp_path / "sub")
  tone = 0.25 * np.sin(2 * np.pi * np.arange(4 * CHUNK) / 40)[:, None].repeat(2, axis=1)
  tone = np.round(tone * 32768) / 32768
  for step in range(4):
    _touch(os.path.join(root, "img", "train", "flute", f"flute_01_{step:04d}.jpg"))
    _write_chunk(os.path.join(root, "chunk", "train", "flute", f"flute_01_{step:04d}.wav"),
                 tone[step * CHUNK:(step + 1) * CHUNK])
  clip, = layouts.discover(root, "flute", str(tmp_path / "staging"))
  assert clip.source.image_fps == 2.0
  np.testing.assert_array_equal(sf.read(clip.source.audio)[0], tone)


def test_sub_urmp_song_in_two_splits_is_kept_and_reported(tmp_path):
  root = str(tmp_path / "sub")
  rng = np.random.default_rng(8)
  _sub_urmp(root, "train", "viola", "04", range(3), rng)
  _sub_urmp(root, "validation", "viola", "04", range(3, 5), rng)
  with pytest.warns(layouts.LayoutWarning, match="song 04 is in several splits"):
    clips = layouts.discover(root, "viola", str(tmp_path / "staging"))
  assert [(c.source.clip_id, c.source.split) for c in clips] == [
      ("suburmp_train_viola_04", "train"), ("suburmp_validation_viola_04", "validation")]
