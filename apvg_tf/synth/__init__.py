"""The virtual performer: a built-in cello and trombone dataset whose motion the music causes.

`build_synth_dataset` (in `apvg_tf.synth.dataset`) makes the dataset; the modules are
`music` (notes), `sound` (audio), `performer` (motion and keypoints), `render` (frames).
This package imports no TensorFlow, so render workers start fast.
"""
