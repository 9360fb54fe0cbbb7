"""Real footage -> datasets: performance videos (or image sequences) and their music.

  ClipSource, Settings             one clip's inputs; how clips are processed.
  process_clip(source, settings)   one clip -> ClipResult (frames, keypoints, waveform, report).
  list_videos(input, ...)          the ClipSources of a folder or list of videos.
  build_footage_dataset(...)       clips -> a dataset folder (plain loop or Apache Beam).
  assign_splits(clip_ids, seed)    deterministic split of whole clips.

`apvg_tf.footage.beam_pipeline` runs the per-clip step as a Beam pipeline; it is imported
only when used (Beam is slow to import).
"""

from apvg_tf.footage.process import (ClipResult, ClipSource, MediaPipeDetector, Settings,
                                     crop_frame, fill_gaps, nearest_source_frames,
                                     process_clip, snap_fps, stable_crop_box)
from apvg_tf.footage.videos import list_videos
from apvg_tf.footage.dataset import assign_splits, build_footage_dataset, format_quality_table
