"""A strip of generated frames above the skeletons they were drawn from (the README's picture).

  python generate.py --audio=assets/cello_demo.ogg --out=OUT/demo.mp4 \
      --skeleton_video=OUT/skeleton.mp4
  python experiments/demo_strip.py --video=OUT/demo.mp4 --skeleton_video=OUT/skeleton.mp4 \
      --out=docs/images/demo_strip.png [--frames=6]

Takes `--frames` frames evenly spaced over the video (skipping its first and last 2.5 s) and
writes one PNG: the generated frames in the top row, the skeleton video's frames below.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # pylint: disable=g-import-not-at-top
import cv2  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
from PIL import Image  # pylint: disable=g-import-not-at-top

_VIDEO = flags.DEFINE_string("video", None, "generate.py's mp4.", required=True)
_SKELETON = flags.DEFINE_string("skeleton_video", None, "generate.py's --skeleton_video mp4.",
                                required=True)
_OUT = flags.DEFINE_string("out", "docs/images/demo_strip.png", "The PNG to write.")
_FRAMES = flags.DEFINE_integer("frames", 6, "Frames in the strip.")


def read_frames(path):
  """All frames of a video as RGB uint8 arrays [H, W, 3]."""
  capture = cv2.VideoCapture(path)
  frames = []
  while True:
    ok, frame = capture.read()
    if not ok:
      break
    frames.append(frame[:, :, ::-1])
  if not frames:
    raise SystemExit(f"error: no frames could be read from {path}")
  return frames


def strip(video, skeleton, count, margin):
  """`count` evenly spaced frames of both videos, the video on top: uint8 [2H, count * W, 3]."""
  indices = np.linspace(margin, min(len(video), len(skeleton)) - 1 - margin, count).astype(int)
  return np.concatenate([np.concatenate([video[i] for i in indices], axis=1),
                         np.concatenate([skeleton[i] for i in indices], axis=1)], axis=0)


def main(argv):
  del argv
  video, skeleton = read_frames(_VIDEO.value), read_frames(_SKELETON.value)
  image = strip(video, skeleton, _FRAMES.value, margin=75)  # 2.5 s at 30 fps.
  Image.fromarray(image).save(_OUT.value, optimize=True)
  print(f"wrote {_OUT.value}: {image.shape[1]}x{image.shape[0]}")


if __name__ == "__main__":
  app.run(main)
