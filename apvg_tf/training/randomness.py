"""The random draws of a training step, as a function of (seed, step, global example index).

Stateful random ops (tf.random.normal, Keras's Dropout) restart their streams when a killed
run restarts, and give each replica its own stream, so neither an exact resume nor "two
replicas equal one" would hold. Every draw of a train step goes through `StepRandom`
instead: stateless ops keyed by the run's seed, the step, a name per draw, and, for per-example
draws, the example's row in the global batch. Each replica draws the global batch's numbers
and keeps its own rows (the draws are small: noise vectors, dropout masks), so a run gives
the same numbers on 1, 2 or 8 replicas, and a resumed run the same numbers as an
uninterrupted one.
"""

import zlib

import tensorflow as tf


class StepRandom:
  """Random numbers of one training step on one replica.

  Replica r of R holds rows [r * b, (r + 1) * b) of the global batch, b = global / R, which is
  how `distribute_datasets_from_function` hands consecutive per-replica batches to replicas.
  """

  def __init__(self, seed, step, global_batch_size):
    """Keys the step's draws.

    Args:
      seed: the run's seed (int).
      step: the step being taken (int or int tensor); the same step gives the same numbers.
      global_batch_size: examples per step over all replicas.
    """
    self.key = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])
    self.global_batch_size = int(global_batch_size)
    context = tf.distribute.get_replica_context()
    self.replica = context.replica_id_in_sync_group if context is not None else 0

  def _key(self, name):
    # A fixed integer per name (crc32, not hash(): Python salts str hashes per process).
    return tf.random.experimental.stateless_fold_in(self.key, zlib.crc32(name.encode()))

  def _global_shape(self, shape):
    return tf.concat([[self.global_batch_size], tf.cast(shape, tf.int32)], 0)

  def _rows(self, values, local_batch):
    start = tf.cast(self.replica, tf.int32) * local_batch
    return values[start:start + local_batch]

  def uniform(self, name, local_batch, shape=()):
    """float32 [local_batch, *shape] uniform in [0, 1), this replica's rows.

    Args:
      name: names the draw (different names, independent numbers).
      local_batch: this replica's batch size.
      shape: the shape of one example's draw (ints or an int tensor).
    """
    values = tf.random.stateless_uniform(self._global_shape(shape), self._key(name))
    return self._rows(values, local_batch)

  def normal(self, name, local_batch, shape=()):
    """float32 [local_batch, *shape] standard normal, this replica's rows."""
    values = tf.random.stateless_normal(self._global_shape(shape), self._key(name))
    return self._rows(values, local_batch)

  def integer(self, name, minval, maxval):
    """One int32 in [minval, maxval), the same on every replica (e.g. a crop offset)."""
    return tf.random.stateless_uniform([], self._key(name), minval, maxval, dtype=tf.int32)

  def dropout(self, name, x, rate):
    """Inverted dropout of x [local_batch, ...] with a mask drawn per example."""
    if not rate:
      return x
    keep = self.uniform(name, tf.shape(x)[0], tf.shape(x)[1:]) >= rate
    return tf.where(keep, x / (1.0 - rate), tf.zeros_like(x))
