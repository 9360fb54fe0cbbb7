"""Discovery of the URMP and Sub-URMP folder layouts as lists of clips (`LayoutClip`).

`discover(root, instrument, staging_dir)` tells the two layouts apart and returns the clips of
one instrument, each a `ClipSource` (what `process_clip` reads) plus the horizontal region of
the frame that shows the performer. Nothing is decoded here except Sub-URMP's audio chunks,
which are joined into one file per song.

URMP (Li et al., IEEE TMM 2018), one folder per piece:

  01_Jupiter_vn_vc/
    Vid_01_Jupiter_vn_vc.mp4          the ensemble in one video, players left to right in the
                                      order of the folder name
    AuSep_1_vn_01_Jupiter.wav         player 1's own track (1-based index, instrument, piece)
    AuSep_2_vc_01_Jupiter.wav
    AuMix_..., Sco_..., F0s_..., Notes_...   (not used)

  Every player of the instrument becomes one clip: the piece's video with that player's
  separated track, id `urmp_<number>_<piece>_p<player>_<abbreviation>`
  (`urmp_01_Jupiter_p2_vc`). The players are taken to be equally spaced: player k of n gets the
  region x in [(k - 1) / n, k / n] of the frame, full height (`player_region`). URMP has no
  official split, so pieces are split here, whole (`urmp_piece_splits`): the pieces that have
  the instrument, in piece-number order, are dealt in runs of five, three to train, the fourth
  to validation and the fifth to test; with fewer than five pieces the last one is test (from
  two pieces on) and the one before it validation (from three on). The split depends only on
  the piece numbers present, never on file contents, so reruns agree.

Sub-URMP (Chen et al., "Deep Cross-Modal Audio-Visual Generation", 2017), the paper's data:

  img/<split>/<instrument>/<instrument>_<song>_<step>.jpg     one frame per audio chunk
  chunk/<split>/<instrument>/<instrument>_<song>_<step>.wav   a 0.5 s stereo chunk

  with <split> in train / validation. Stems written `<instrument><song>_<step>` (no
  underscore before the song) and instrument folders named by URMP abbreviation (`sax`) are
  accepted too. The jpg and wav of a step share the stem. Each (split, song) becomes one clip
  `suburmp_<split>_<instrument>_<song>`: its images in step order, and its chunks joined in
  the same order into `<staging_dir>/sub_urmp_audio/<clip id>.wav` (`concatenate_chunks`; an
  existing file of the right length is kept). The image rate is one image per chunk hop:
  sample_rate / chunk_frames = 2.0 fps for 0.5 s chunks. If consecutive chunks turn out to
  overlap (the samples at the start of one chunk repeat the end of the previous one), the hop
  is the measured offset: each chunk then contributes only its first hop of samples and the
  image rate is sample_rate / hop, so images and music stay in step either way.

  Sub-URMP's own split is kept: its train songs are train and its validation songs are
  validation, so that results stay comparable with papers that use it. Evaluation reads the
  "test" split by default; pass `validation_as="test"` to evaluate on Sub-URMP's held-out
  songs (then there is no validation split). A `test` folder, if a copy has one, is test.

  Steps missing between a song's first and last step (gaps) are reported: as a LayoutWarning
  and in `LayoutClip.gaps`. The clip keeps one image per remaining chunk, so pictures and
  music stay paired across a gap; the motion jumps there. A song whose jpg and wav stems do
  not match one to one is an InputError naming the first unmatched stem, or with
  `strict=False` the unmatched files are dropped with a LayoutWarning.

Instrument names are those of `apvg_tf.instruments` (which also owns the table of URMP
abbreviations); abbreviations are accepted wherever a name is.
"""

import collections
import dataclasses
import math
import os
import re
import warnings
from typing import Optional, Tuple

import numpy as np
import soundfile as sf

from apvg_tf import instruments
from apvg_tf.errors import InputError
from apvg_tf.footage.process import ClipSource

URMP = "urmp"
SUB_URMP = "sub_urmp"
LAYOUTS = (URMP, SUB_URMP)
SPLITS = ("train", "validation", "test")

# Runs of pieces dealt to splits in URMP (3 train, 1 validation, 1 test per five pieces).
_URMP_RUN = ("train", "train", "train", "validation", "test")
_URMP_PIECE = re.compile(r"^(\d\d)_(.+)$")
# Instrument name -> URMP abbreviation (the inverse of the table apvg_tf.instruments owns).
_URMP_ABBREVIATION = {full: short for short, full in instruments.URMP_ABBREVIATIONS.items()}
# <instrument>[_]<song>_<step>: the lazy prefix lets the instrument itself contain '_'
# (double_bass_01_0023) and the optional '_' accepts the unseparated form (trumpet00_500).
_SUB_URMP_STEM = re.compile(r"^(.*?)_?(\d+)_(\d+)$")
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")
# Consecutive chunk pairs tried when measuring the chunk hop, and the loudness (RMS, full
# scale 1) a shared stretch needs to count: silence matches at every offset.
_HOP_PAIRS_TRIED = 8
_HOP_PAIRS_READ = 64  # At most this many pairs are read at all (a long silent intro).
_HOP_MIN_RMS = 1e-3
# Read dtype per WAV subtype that copies samples exactly: integer samples are read as integers
# (32-bit PCM does not fit in float32, and no float scaling convention is relied on).
_EXACT_DTYPE = {"PCM_S8": "int16", "PCM_U8": "int16", "PCM_16": "int16", "PCM_24": "int32",
                "PCM_32": "int32", "FLOAT": "float32", "DOUBLE": "float64"}


class LayoutWarning(UserWarning):
  """Something in a dataset folder was skipped or is irregular (gaps, unmatched files)."""


@dataclasses.dataclass(frozen=True)
class LayoutClip:
  """One clip of a dataset layout.

  Attributes:
    source: what `process_clip` reads (video or images, audio file, split, region).
    region: (x0, y0, x1, y1), fractions of the frame's width and height, of the part of the
      frame that shows this performer (URMP's ensemble videos); None = the whole frame. The
      same as `source.region`, which `process_clip` cuts the frames to.
    gaps: (first, last) step numbers, inclusive, of the runs of Sub-URMP steps missing
      inside the song, in order; empty when the song is complete.
  """
  source: ClipSource
  region: Optional[Tuple[float, float, float, float]] = None
  gaps: Tuple[Tuple[int, int], ...] = ()


def player_region(player_index, num_players):
  """The region of player `player_index` (1-based) of `num_players` side by side.

  Returns:
    (x0, y0, x1, y1) = ((k - 1) / n, 0, k / n, 1).

  Raises:
    ValueError: if the index is not in 1..num_players.
  """
  if not 1 <= player_index <= num_players:
    raise ValueError(f"player {player_index} of {num_players} does not exist")
  return ((player_index - 1) / num_players, 0.0, player_index / num_players, 1.0)


def urmp_piece_splits(piece_numbers):
  """The split of each URMP piece (see the module docstring for the rule).

  Args:
    piece_numbers: the pieces' numbers (int or str like "01"), in any order.

  Returns:
    dict piece number (as given) -> "train" / "validation" / "test".
  """
  ordered = sorted(set(piece_numbers), key=int)
  splits = [_URMP_RUN[i % len(_URMP_RUN)] for i in range(len(ordered))]
  # Small sets never reach the fourth and fifth place of a run: take them from the end, so
  # that two pieces still give a test piece and three a validation piece as well.
  if len(splits) >= 2 and "test" not in splits:
    splits[-1] = "test"
  if len(splits) >= 3 and "validation" not in splits:
    splits[-2] = "validation"
  return dict(zip(ordered, splits))


def detect_layout(root):
  """Which layout a dataset folder has.

  Args:
    root: the folder.

  Returns:
    URMP ("urmp") if it holds piece folders `NN_*` with a `Vid_*.mp4`, SUB_URMP ("sub_urmp")
    if it holds `img/` and `chunk/` folders.

  Raises:
    InputError: if the folder is missing, is neither layout, or looks like both.
  """
  root = os.fspath(root)
  if not os.path.isdir(root):
    raise InputError(f"dataset folder {root!r} does not exist; pass the URMP folder (one "
                     "folder per piece, e.g. 01_Jupiter_vn_vc/) or the Sub-URMP folder (with "
                     "img/ and chunk/)")
  found = _layouts_in(root)
  if len(found) == 1:
    return found[0]
  if len(found) == 2:
    raise InputError(f"{root!r} holds both URMP piece folders and Sub-URMP's img/ and chunk/; "
                     "pass the layout explicitly (layout='urmp' or 'sub_urmp')")
  hint = ""
  pieces = [name for name in _subdirs(root) if _URMP_PIECE.match(name)]
  if pieces:
    hint = (f" It has {len(pieces)} piece folder(s) like {pieces[0]!r} but none holds a "
            "Vid_*.mp4: the URMP videos may not have been downloaded or unpacked.")
  else:
    nested = [name for name in _subdirs(root) if _layouts_in(os.path.join(root, name))]
    if nested:
      hint = f" Its subfolder {nested[0]!r} has a known layout: pass that folder instead."
  raise InputError(f"{root!r} is neither a URMP folder (piece folders named like "
                   "01_Jupiter_vn_vc holding Vid_01_Jupiter_vn_vc.mp4 and AuSep_*.wav) nor a "
                   f"Sub-URMP folder (img/<split>/<instrument>/*.jpg and "
                   f"chunk/<split>/<instrument>/*.wav).{hint}")


def discover(root, instrument, staging_dir, *, strict=True, validation_as="validation",
             layout=None):
  """The clips of one instrument in a URMP or Sub-URMP folder.

  Args:
    root: the dataset folder (its layout is detected, see `detect_layout`).
    instrument: an instrument name of `apvg_tf.instruments` ("cello") or a URMP
      abbreviation ("vc").
    staging_dir: folder for files made here (Sub-URMP's joined audio); created if missing.
      Not used for URMP.
    strict: whether irregular data (a player without its track, unmatched Sub-URMP files) is
      an error (True) or is skipped with a LayoutWarning (False).
    validation_as: "validation" or "test": the split that Sub-URMP's validation songs get.
    layout: URMP or SUB_URMP to skip detection; None detects.

  Returns:
    list of LayoutClip in a fixed order (URMP: piece number, then player; Sub-URMP: split,
    then song).

  Raises:
    InputError: if the folder is neither layout, the instrument is unknown (the message lists
      the known ones), no clip of the instrument exists (the message lists those present), or
      the data are irregular and `strict` is True.
  """
  if layout is None:
    layout = detect_layout(root)
  elif layout not in LAYOUTS:
    raise InputError(f"unknown layout {layout!r}; expected one of: {', '.join(LAYOUTS)}")
  if layout == URMP:
    return discover_urmp(root, instrument, strict=strict)
  return discover_sub_urmp(root, instrument, staging_dir, strict=strict,
                           validation_as=validation_as)


# ---------------------------------------------------------------------------------------------
# URMP.


def discover_urmp(root, instrument, *, strict=True):
  """The clips of one instrument in a URMP folder (see the module docstring).

  Args:
    root: the URMP folder (one subfolder per piece).
    instrument: instrument name or URMP abbreviation.
    strict: whether a player of the instrument without its AuSep track is an error (True) or
      is skipped with a LayoutWarning (False).

  Returns:
    list of LayoutClip, by piece number then player, each with its player's region and a
    split by piece.

  Raises:
    InputError: unknown instrument, a piece folder that cannot be parsed or has several
      videos, a missing track (if strict), or no clip of the instrument.
  """
  root = os.fspath(root)
  name = instruments.check(instrument)
  abbreviation = _URMP_ABBREVIATION[name]
  present = set()
  found = []  # (piece number, ClipSource without split, region)
  for folder in sorted(_subdirs(root)):
    match = _URMP_PIECE.match(folder)
    if not match:
      continue
    piece_dir = os.path.join(root, folder)
    videos = sorted(f for f in os.listdir(piece_dir)
                    if f.startswith("Vid_") and f.lower().endswith(".mp4"))
    parsed = _parse_urmp_piece(folder)
    if parsed is None:
      if videos:  # Only a folder with a video claims to be a piece.
        message = (f"URMP piece folder {folder!r} does not end in instrument abbreviations "
                   "(expected NN_Piece_ab_ab..., abbreviations "
                   f"{', '.join(instruments.URMP_ABBREVIATIONS)})")
        if strict:
          raise InputError(message + "; rename it or remove it")
        warnings.warn(message + "; skipped", LayoutWarning)
      continue
    number, piece, players = parsed
    if not videos:
      # Audio-only downloads of URMP exist; such a piece has nothing to learn motion from.
      if abbreviation in players:
        warnings.warn(f"URMP piece {folder} has no Vid_*.mp4; its {name} skipped",
                      LayoutWarning)
      continue
    present.update(players)
    if abbreviation not in players:
      continue
    video = f"Vid_{folder}.mp4"
    if video not in videos:
      if len(videos) > 1:
        raise InputError(f"URMP piece folder {piece_dir!r} has several videos "
                         f"({', '.join(videos)}) and none named {video}; keep only the "
                         "ensemble video")
      video = videos[0]
    for index, player in enumerate(players, start=1):
      if player != abbreviation:
        continue
      track = _urmp_track(piece_dir, index, player, number, piece, strict)
      if track is None:
        continue
      clip_id = _SAFE.sub("_", f"urmp_{number}_{piece}_p{index}_{player}")
      source = ClipSource(clip_id=clip_id, video=os.path.join(piece_dir, video), audio=track)
      found.append((number, source, player_region(index, len(players))))
  if not found:
    listed = ", ".join(sorted(instruments.URMP_ABBREVIATIONS[a] for a in present)) or "none"
    raise InputError(f"no {name} ({abbreviation}) player with a video in the URMP folder "
                     f"{root!r}; instruments present: {listed}")
  splits = urmp_piece_splits(number for number, _, _ in found)
  return [LayoutClip(source=dataclasses.replace(source, split=splits[number], region=region),
                     region=region)
          for number, source, region in found]


def _parse_urmp_piece(folder):
  """(number, piece name, player abbreviations) of a folder name like 01_Jupiter_vn_vc.

  The trailing tokens that are URMP abbreviations are the players; the tokens between the
  number and them are the piece's name. None if the name does not parse.
  """
  number, rest = _URMP_PIECE.match(folder).groups()
  tokens = rest.split("_")
  first_player = len(tokens)
  while first_player > 1 and tokens[first_player - 1] in instruments.URMP_ABBREVIATIONS:
    first_player -= 1
  if first_player == len(tokens):
    return None
  return number, "_".join(tokens[:first_player]), tuple(tokens[first_player:])


def _urmp_track(piece_dir, index, player, number, piece, strict):
  """Path of player `index`'s AuSep track, or None (after a warning) if missing, not strict."""
  expected = f"AuSep_{index}_{player}_{number}_{piece}.wav"
  if os.path.isfile(os.path.join(piece_dir, expected)):
    return os.path.join(piece_dir, expected)
  # Tolerate a piece name spelt differently in the track names than in the folder name.
  others = sorted(f for f in os.listdir(piece_dir)
                  if f.startswith(f"AuSep_{index}_{player}_") and f.lower().endswith(".wav"))
  if len(others) == 1:
    return os.path.join(piece_dir, others[0])
  message = f"URMP piece {os.path.basename(piece_dir)}: player {index}'s track {expected} "
  message += "is missing" if not others else f"is ambiguous ({', '.join(others)})"
  if strict:
    raise InputError(message + "; restore it, or pass strict=False to skip the player")
  warnings.warn(message + "; player skipped", LayoutWarning)
  return None


# ---------------------------------------------------------------------------------------------
# Sub-URMP.


def discover_sub_urmp(root, instrument, staging_dir, *, strict=True,
                      validation_as="validation"):
  """The clips (one per split and song) of one instrument in a Sub-URMP folder.

  Args:
    root: the Sub-URMP folder (with img/ and chunk/).
    instrument: instrument name or URMP abbreviation.
    staging_dir: the joined audio of each song goes to `<staging_dir>/sub_urmp_audio/`.
    strict: whether unmatched jpg/wav stems and badly named files are an error (True) or are
      dropped with a LayoutWarning (False).
    validation_as: "validation" or "test": the split of Sub-URMP's validation songs.

  Returns:
    list of LayoutClip (region None, gaps filled in), by split (train, validation, test) then
    song.

  Raises:
    InputError: unknown instrument, unmatched stems (if strict), chunks that differ in sample
      rate or channels, unreadable chunks, or no clip of the instrument.
  """
  root = os.fspath(root)
  name = instruments.check(instrument)
  if validation_as not in ("validation", "test"):
    raise InputError(f"validation_as must be 'validation' or 'test', got {validation_as!r}")
  split_map = {"train": "train", "validation": validation_as, "test": "test"}
  present = set()
  audio_dir = os.path.join(os.fspath(staging_dir), "sub_urmp_audio")
  songs = []  # (split folder, song, [(step, stem, jpg, wav)])
  split_folders = sorted(set(_subdirs(os.path.join(root, "img")))
                         | set(_subdirs(os.path.join(root, "chunk"))),
                         key=lambda s: (SPLITS.index(s) if s in SPLITS else len(SPLITS), s))
  for split_folder in split_folders:
    if split_folder not in SPLITS:
      warnings.warn(f"Sub-URMP folder {split_folder!r} is not a split ({', '.join(SPLITS)}); "
                    "skipped", LayoutWarning)
      continue
    images = _sub_urmp_files(root, "img", split_folder, name, _IMAGE_EXTENSIONS, present)
    chunks = _sub_urmp_files(root, "chunk", split_folder, name, (".wav",), present)
    images_by_song = _group_by_song(images, strict)
    chunks_by_song = _group_by_song(chunks, strict)
    for song in sorted(set(images_by_song) | set(chunks_by_song), key=_natural_key):
      pairs = _pair_song(images_by_song.get(song, {}), chunks_by_song.get(song, {}),
                         f"{name} song {song} ({split_folder})", strict)
      if pairs:
        songs.append((split_folder, song, pairs))
  if not songs:
    listed = ", ".join(sorted(present)) or "none"
    raise InputError(f"no {name} clips in the Sub-URMP folder {root!r} (looked for "
                     f"img/<split>/{name}/ and chunk/<split>/{name}/); instruments present: "
                     f"{listed}")
  by_song = collections.defaultdict(list)
  for split_folder, song, _ in songs:
    by_song[song].append(split_folder)
  for song, folders in sorted(by_song.items()):
    if len(folders) > 1:
      # The published split is kept (results stay comparable with papers that use it), but
      # a split that shares a piece between train and evaluation is worth knowing about.
      warnings.warn(f"Sub-URMP {name} song {song} is in several splits ({', '.join(folders)}); "
                    "its published split is kept, so those splits share a piece",
                    LayoutWarning)

  hops = {}
  infos = {}
  for split_folder, song, pairs in songs:
    infos[split_folder, song] = _chunk_infos([wav for _, _, _, wav in pairs])
    hops[split_folder, song] = _measure_hop(pairs)
  measured = [hop for hop in hops.values() if hop is not None]
  # A song too quiet to measure (or with no consecutive chunks) takes the others' hop.
  common_hop = collections.Counter(measured).most_common(1)[0][0] if measured else None

  clips = []
  for split_folder, song, pairs in songs:
    wavs = [wav for _, _, _, wav in pairs]
    chunk_infos = infos[split_folder, song]
    lengths = [info.frames for info in chunk_infos]
    nominal = collections.Counter(lengths).most_common(1)[0][0]
    hop = hops[split_folder, song] or common_hop or nominal
    hop = min(hop, nominal)
    if any(n != nominal for n in lengths[:-1]) or lengths[-1] > nominal:
      odd = next(w for w, n in zip(wavs, lengths) if n != nominal)
      warnings.warn(f"Sub-URMP chunks of {name} song {song} ({split_folder}) differ in length "
                    f"(e.g. {os.path.basename(odd)}); images are placed every {hop} samples and "
                    "drift against the music where chunks are longer or shorter", LayoutWarning)
    clip_id = _SAFE.sub("_", f"suburmp_{split_folder}_{name}_{song}")
    out_path = os.path.join(audio_dir, f"{clip_id}.wav")
    if not _staged_audio_matches(out_path, chunk_infos, hop):
      os.makedirs(audio_dir, exist_ok=True)
      concatenate_chunks(wavs, out_path, hop_frames=None if hop == nominal else hop)
    steps = [step for step, _, _, _ in pairs]
    gaps = _gaps(steps)
    if gaps:
      listed = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in gaps)
      warnings.warn(f"Sub-URMP {name} song {song} ({split_folder}) lacks steps {listed}; the "
                    "clip skips them (the motion jumps there)", LayoutWarning)
    source = ClipSource(clip_id=clip_id, images=tuple(jpg for _, _, jpg, _ in pairs),
                        image_fps=chunk_infos[0].samplerate / hop, audio=out_path,
                        split=split_map[split_folder])
    clips.append(LayoutClip(source=source, region=None, gaps=gaps))
  return clips


def concatenate_chunks(wav_paths, out_path, *, hop_frames=None):
  """Joins audio chunks in order into one WAV file, sample for sample.

  The output keeps the chunks' sample rate, channels and sample format (if the chunks'
  formats differ, 32-bit float). It is written to a temporary name and renamed, so a file at
  `out_path` is always complete.

  Args:
    wav_paths: the chunk files, in time order (any format libsndfile reads).
    out_path: the WAV file to write (its folder must exist).
    hop_frames: None joins the whole chunks; an int takes only the first `hop_frames` frames
      of every chunk but the last (chunks that overlap by their length minus the hop).

  Returns:
    The number of frames written.

  Raises:
    InputError: if there are no chunks, a chunk cannot be read, the chunks differ in sample
      rate or channel count, or a chunk is shorter than `hop_frames`.
  """
  wav_paths = [os.fspath(p) for p in wav_paths]
  out_path = os.fspath(out_path)
  if not wav_paths:
    raise InputError(f"no audio chunks to join into {out_path}")
  infos = _chunk_infos(wav_paths)
  subtypes = {info.subtype for info in infos}
  subtype = subtypes.pop() if len(subtypes) == 1 else "FLOAT"
  if subtype not in _EXACT_DTYPE:  # A compressed or exotic format: keep it as float.
    subtype = "FLOAT"
  dtype = _EXACT_DTYPE[subtype]
  tmp = f"{out_path}.tmp{os.getpid()}"
  written = 0
  try:
    with sf.SoundFile(tmp, "w", samplerate=infos[0].samplerate, channels=infos[0].channels,
                      subtype=subtype, format="WAV") as out:
      last = len(wav_paths) - 1
      for k, (path, info) in enumerate(zip(wav_paths, infos)):
        frames = info.frames if hop_frames is None or k == last else hop_frames
        if frames > info.frames:
          raise InputError(f"audio chunk {path} has {info.frames} samples, fewer than the hop "
                           f"of {hop_frames}")
        data, _ = sf.read(path, frames=frames, dtype=dtype, always_2d=True)
        out.write(data)
        written += len(data)
    os.replace(tmp, out_path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return written


def _chunk_infos(wav_paths):
  """sf.info of each chunk, checked to share sample rate and channel count."""
  infos = []
  for path in wav_paths:
    try:
      info = sf.info(path)
    except (RuntimeError, OSError) as e:  # soundfile's LibsndfileError is a RuntimeError.
      raise InputError(f"cannot read audio chunk {path}: {e}") from None
    if infos and info.samplerate != infos[0].samplerate:
      raise InputError(f"audio chunk {path} is at {info.samplerate} Hz but {wav_paths[0]} is at "
                       f"{infos[0].samplerate} Hz; the chunks of one song must share a sample "
                       "rate")
    if infos and info.channels != infos[0].channels:
      raise InputError(f"audio chunk {path} has {info.channels} channel(s) but {wav_paths[0]} "
                       f"has {infos[0].channels}; the chunks of one song must agree")
    infos.append(info)
  return infos


def _staged_audio_matches(out_path, chunk_infos, hop):
  """Whether a joined file from an earlier run has this song's rate, channels and length."""
  if not os.path.isfile(out_path):
    return False
  expected = sum(min(hop, info.frames) for info in chunk_infos[:-1]) + chunk_infos[-1].frames
  try:
    info = sf.info(out_path)
  except (RuntimeError, OSError):
    return False
  return (info.frames == expected and info.samplerate == chunk_infos[0].samplerate
          and info.channels == chunk_infos[0].channels)


def _sub_urmp_files(root, kind, split_folder, name, extensions, present):
  """{stem: path} of one split's files of the instrument; adds every instrument to `present`."""
  split_dir = os.path.join(root, kind, split_folder)
  files = {}
  for folder in sorted(_subdirs(split_dir)):
    canonical = _canonical(folder)
    present.add(canonical or folder)
    if canonical != name:
      continue
    folder_dir = os.path.join(split_dir, folder)
    for entry in sorted(os.listdir(folder_dir)):
      stem, extension = os.path.splitext(entry)
      if extension.lower() in extensions:
        files[stem] = os.path.join(folder_dir, entry)
  return files


def _group_by_song(files, strict):
  """{song: {stem: (step, path)}} from {stem: path}; badly named files raise or warn."""
  songs = collections.defaultdict(dict)
  for stem, path in files.items():
    match = _SUB_URMP_STEM.match(stem)
    if not match:
      message = (f"Sub-URMP file {path} is not named <instrument>_<song>_<step> "
                 "(e.g. cello_01_0023)")
      if strict:
        raise InputError(message + "; rename or remove it, or pass strict=False")
      warnings.warn(message + "; skipped", LayoutWarning)
      continue
    songs[match.group(2)][stem] = (int(match.group(3)), path)
  return songs


def _pair_song(images, chunks, what, strict):
  """[(step, stem, jpg, wav)] in step order of a song's matched image and chunk files."""
  unmatched = sorted(set(images) ^ set(chunks),
                     key=lambda stem: ((images.get(stem) or chunks.get(stem))[0], stem))
  if unmatched:
    first = unmatched[0]
    has, lacks = ("image", "audio chunk (.wav)") if first in images else (
        "audio chunk", "image (.jpg)")
    message = (f"Sub-URMP {what}: {first} has an {has} but no {lacks}"
               + (f", and {len(unmatched) - 1} more stem(s) are unmatched"
                  if len(unmatched) > 1 else ""))
    if strict:
      raise InputError(message + "; img/ and chunk/ must hold the same stems (or pass "
                       "strict=False to drop the unmatched ones)")
    warnings.warn(message + f"; {len(unmatched)} unmatched file(s) dropped", LayoutWarning)
  pairs = sorted((images[stem][0], stem, images[stem][1], chunks[stem][1])
                 for stem in set(images) & set(chunks))
  for (step, stem, _, _), (next_step, next_stem, _, _) in zip(pairs, pairs[1:]):
    if step == next_step:
      raise InputError(f"Sub-URMP {what}: {stem} and {next_stem} are both step {step}; "
                       "remove one of them")
  return pairs


def _gaps(steps):
  """Runs (first, last) of steps missing between sorted `steps`, in units of their spacing.

  The spacing is the smallest difference between consecutive steps (1 when chunks are
  numbered 0, 1, 2, ...; numbering in other units, e.g. 0, 100, 200, works the same).
  """
  if len(steps) < 2:
    return ()
  unit = min(b - a for a, b in zip(steps, steps[1:]))
  return tuple((a + unit, b - unit) for a, b in zip(steps, steps[1:]) if b - a > unit)


def _measure_hop(pairs):
  """Frames between the starts of consecutive chunks, if they overlap; else None.

  Tries up to _HOP_PAIRS_TRIED pairs of consecutive chunks (no gap between them) and returns
  the first offset at which the later chunk's start repeats the earlier chunk's end exactly
  over a stretch that is not silent. None when no pair shows an overlap (the usual case:
  chunks that follow each other) or no pair is loud enough to tell.
  """
  steps = [step for step, _, _, _ in pairs]
  if len(steps) < 2:
    return None
  unit = min(b - a for a, b in zip(steps, steps[1:]))
  tried = 0
  for (step, _, _, wav), (next_step, _, _, next_wav) in zip(pairs[:_HOP_PAIRS_READ],
                                                           pairs[1:_HOP_PAIRS_READ + 1]):
    if next_step - step != unit:
      continue
    first = _read_mono(wav)
    second = _read_mono(next_wav)
    if len(first) != len(second) or len(first) < 64:
      continue
    if (np.sqrt(np.mean(first ** 2)) < _HOP_MIN_RMS
        or np.sqrt(np.mean(second ** 2)) < _HOP_MIN_RMS):
      continue
    tried += 1
    hop = _overlap_offset(first, second)
    if hop is not None:
      return hop
    if tried >= _HOP_PAIRS_TRIED:
      break
  return None


def _overlap_offset(first, second):
  """Smallest d >= 1 with first[d:] == second[:L - d] over a loud stretch, or None.

  Candidates come from the normalised cross-correlation (1 where the two agree exactly) and
  are then checked sample for sample, so a chance resemblance of music never counts.
  """
  length = len(first)
  size = 1 << math.ceil(math.log2(2 * length))
  correlation = np.fft.irfft(np.fft.rfft(first, size) * np.conj(np.fft.rfft(second, size)),
                             size)[:length]
  # Energy of first[d:] and of second[:length - d] for every d.
  tail_energy = np.cumsum((first ** 2)[::-1])[::-1]
  head_energy = np.cumsum(second ** 2)[::-1]
  with np.errstate(divide="ignore", invalid="ignore"):
    normalised = correlation / np.sqrt(tail_energy * head_energy)
  min_overlap = max(16, length // 10)
  scores = np.nan_to_num(normalised[1:length - min_overlap + 1])
  candidates = np.flatnonzero(scores > 1 - 1e-6) + 1
  for offset in sorted(candidates[:32]):
    shared = second[:length - offset]
    if (np.sqrt(np.mean(shared ** 2)) >= _HOP_MIN_RMS
        and np.max(np.abs(first[offset:] - shared)) <= 1e-6
        # A signal periodic with this offset (a synthetic steady tone) matches at it without
        # any overlap; such a pair proves nothing.
        and np.max(np.abs(first[offset:] - first[:length - offset])) > 1e-6):
      return int(offset)
  return None


def _read_mono(path):
  """float64 [N], the mean of the channels of a chunk (for the overlap test only)."""
  data, _ = sf.read(path, dtype="float64", always_2d=True)
  return data.mean(axis=1)


# ---------------------------------------------------------------------------------------------
# Helpers.


def _layouts_in(root):
  """The layouts (possibly both, possibly none) that the folder `root` has."""
  found = []
  for name in _subdirs(root):
    if _URMP_PIECE.match(name):
      piece_dir = os.path.join(root, name)
      if any(f.startswith("Vid_") and f.lower().endswith(".mp4") for f in os.listdir(piece_dir)):
        found.append(URMP)
        break
  if (os.path.isdir(os.path.join(root, "img")) and os.path.isdir(os.path.join(root, "chunk"))):
    found.append(SUB_URMP)
  return found


def _subdirs(path):
  """Names of the subfolders of `path` (none if it is not a folder), hidden ones left out."""
  if not os.path.isdir(path):
    return []
  return [entry.name for entry in os.scandir(path)
          if entry.is_dir() and not entry.name.startswith(".")]


def _canonical(folder):
  """The instrument name of a Sub-URMP folder name ("cello", "sax", ...), or None."""
  try:
    return instruments.check(folder)
  except InputError:
    return None


def _natural_key(text):
  """Sort key that orders digit runs by value ("2" before "10")."""
  return [(0, int(part), "") if part.isdigit() else (1, 0, part)
          for part in re.split(r"(\d+)", text) if part]
