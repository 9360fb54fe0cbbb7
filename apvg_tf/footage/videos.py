"""`list_videos`: the ClipSources of `preprocess.py videos --input=...`.

The input is a folder (its videos, not its subfolders), one video file, or several files
separated by commas. A video's clip id is its file name without the extension, with any
character other than letters, digits, '_', '-' and '.' replaced by '_'. Separate music
(`--audio_dir`) and OpenPose keypoints (`--openpose_dir`) are matched to a video by that
file stem.
"""

import glob
import os
import re

from apvg_tf.errors import InputError
from apvg_tf.footage.process import VIDEO_EXTENSIONS, ClipSource

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus", ".aiff", ".aif")


def is_video(path):
  """Whether a file name has a video extension (mp4, mov, mkv, webm; any case)."""
  return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def clip_id_for(path):
  """Clip id of a file: its stem, with unsafe characters replaced by '_'."""
  stem = os.path.splitext(os.path.basename(path))[0]
  return re.sub(r"[^A-Za-z0-9_.\-]", "_", stem) or "clip"


def _expand_input(spec):
  spec = (spec or "").strip()
  if not spec:
    raise InputError("--input is empty; give a folder of videos, a video file, or "
                     "comma-separated video files")
  if os.path.isdir(spec):
    videos = sorted(p for p in glob.glob(os.path.join(glob.escape(spec), "*"))
                    if os.path.isfile(p) and is_video(p))
    if not videos:
      raise InputError(f"the folder {spec} holds no videos ({', '.join(VIDEO_EXTENSIONS)}); "
                       "point --input at the folder that holds them")
    return videos
  videos = []
  for part in spec.split(","):
    path = part.strip()
    if not path:
      continue
    if not os.path.isfile(path):
      raise InputError(f"video {path} does not exist; check --input")
    if not is_video(path):
      raise InputError(f"{path} is not a video file by its name; --input takes "
                       f"{', '.join(VIDEO_EXTENSIONS)} files or a folder of them")
    videos.append(path)
  if not videos:
    raise InputError(f"--input={spec!r} names no video files")
  return videos


def _audio_for(video, audio_dir):
  stem = os.path.splitext(os.path.basename(video))[0]
  matches = sorted(p for p in glob.glob(os.path.join(glob.escape(audio_dir),
                                                     glob.escape(stem) + ".*"))
                   if os.path.isfile(p) and os.path.splitext(p)[1].lower() in AUDIO_EXTENSIONS)
  if not matches:
    raise InputError(f"no audio for video {video}: --audio_dir={audio_dir} has no "
                     f"{stem}.wav (or .flac, .mp3, ...); add it, or leave out --audio_dir to "
                     "use the videos' own sound")
  if len(matches) > 1:
    raise InputError(f"several audio files match video {video} in {audio_dir}: "
                     f"{', '.join(os.path.basename(m) for m in matches)}; keep one")
  return matches[0]


def _openpose_for(video, openpose_dir, single):
  stem = os.path.splitext(os.path.basename(video))[0]
  folder = os.path.join(openpose_dir, stem)
  if os.path.isdir(folder):
    return folder
  if single and glob.glob(os.path.join(glob.escape(openpose_dir), "*_keypoints.json")):
    return openpose_dir
  raise InputError(f"no OpenPose keypoints for video {video}: --openpose_dir={openpose_dir} "
                   f"needs a subfolder {stem}/ of *_keypoints.json files (or, for a single "
                   "video, the JSON files themselves)")


def list_videos(input_spec, *, audio_dir=None, openpose_dir=None, split=None):
  """ClipSources for a folder of videos, a video file, or comma-separated video files.

  Args:
    input_spec: a folder, a file, or "a.mp4,b.mov".
    audio_dir: optional folder of music files, one per video with the video's stem (e.g.
      take1.mp4 -> take1.wav); given, every video needs one.
    openpose_dir: optional folder of OpenPose JSON: one subfolder per video stem, or the JSON
      files themselves when there is one video.
    split: split of every clip, or None to assign splits when writing the dataset.

  Returns:
    list of ClipSource: a folder's videos sorted by name, listed files in the order given.

  Raises:
    InputError: a missing path, a folder without videos, a missing audio or OpenPose match,
      or two videos with the same clip id.
  """
  videos = _expand_input(input_spec)
  if audio_dir is not None and not os.path.isdir(audio_dir):
    raise InputError(f"--audio_dir={audio_dir} is not a folder")
  if openpose_dir is not None and not os.path.isdir(openpose_dir):
    raise InputError(f"--openpose_dir={openpose_dir} is not a folder")
  sources, seen = [], {}
  for video in videos:
    clip_id = clip_id_for(video)
    if clip_id in seen:
      raise InputError(f"videos {seen[clip_id]} and {video} would both be clip {clip_id!r}; "
                       "rename one of them")
    seen[clip_id] = video
    sources.append(ClipSource(
        clip_id=clip_id, video=video,
        audio=_audio_for(video, audio_dir) if audio_dir else None,
        openpose_dir=(_openpose_for(video, openpose_dir, len(videos) == 1)
                      if openpose_dir else None),
        split=split))
  return sources
