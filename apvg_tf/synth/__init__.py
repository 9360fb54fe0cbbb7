"""The virtual performer: a built-in cello and trombone dataset whose motion the music causes.

`build_synth_dataset` (in `apvg_tf.synth.dataset`) makes the dataset; the modules are
`music` (notes), `sound` (audio), `performer` (motion and keypoints), `props` (the
instrument's moving parts derived from keypoints alone), `render` (frames; `draw_pose` draws
any keypoint track).
This package imports no TensorFlow, so render workers start fast.
"""
