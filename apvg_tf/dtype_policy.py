"""The Keras dtype policy, set for a block of code and put back exactly as it was.

Keras layers take the global policy when they are constructed. Training under mixed
precision (`apvg_tf.training.precision`) and the float32 parts of a mixed model (the GCN
block) both need to change it for a while; this module is the one place that does.
"""

import contextlib

import tensorflow as tf


@contextlib.contextmanager
def policy_scope(policy):
  """Within the block the global dtype policy is `policy` (a name or a Policy).

  On exit the previous policy is restored; an unset policy (Keras's default, which follows
  `tf.keras.backend.floatx()`) is restored as unset, so a later `set_floatx` still applies.
  """
  previous = tf.keras.mixed_precision.global_policy()
  unset = previous.name == tf.keras.backend.floatx()
  tf.keras.mixed_precision.set_global_policy(policy)
  try:
    yield
  finally:
    tf.keras.mixed_precision.set_global_policy(None if unset else previous)


def is_mixed(policy):
  """True for a policy whose compute dtype differs from its variable dtype."""
  return policy.compute_dtype != policy.variable_dtype


def full_precision(layer_kwargs):
  """Layer kwargs whose dtype policy (given, or else the global one), if mixed, is replaced
  by its variable dtype: for layers that must compute in float32 inside a mixed model."""
  dtype = layer_kwargs.get("dtype")
  policy = tf.keras.mixed_precision.global_policy() if dtype is None else dtype
  if isinstance(policy, str):
    policy = tf.keras.mixed_precision.Policy(policy)
  if isinstance(policy, tf.keras.mixed_precision.Policy) and is_mixed(policy):
    return {**layer_kwargs, "dtype": policy.variable_dtype}
  return layer_kwargs
