"""The virtual trombonist on a 2-core CPU (128x128): synth_cello's settings on trombone data.

  python preprocess.py synth --instrument=trombone --minutes=10 --resolution=128 \
      --out=data/synth_trombone
  python train.py --config=configs/synth_trombone.py --workdir=runs/synth_trombone \
      --config.stage=khp
  python evaluate.py --config=configs/synth_trombone.py --workdir=runs/synth_trombone

Expected result: as synth_cello (README, "Results").
"""

from configs import synth_cello


def get_config():
  config = synth_cello.get_config()
  config.dataset_dir = "data/synth_trombone"
  # The KP on the shared 8 x 64-frame batches (as measured in the README): the slide follows
  # pitch, which a short window hears; the cellist's longer windows are for the bow.
  config.khp.batch_size = 0
  config.khp.window_frames = 0
  config.khp.lookahead_frames = 0  # Measured without one (README, the trombone's results).
  return config
