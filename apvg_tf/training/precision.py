"""Mixed precision for training (`config.mixed_precision`): the one owner of the policy.

With it, Keras layers built under `policy(True)` compute in float16 and keep float32
variables (`mixed_float16`); each optimizer is wrapped in a `LossScaleOptimizer`, and
`scaled` multiplies the loss by the scale inside the tape and `apply_gradients` unscales the
gradients before the update, so small float16 gradients do not flush to zero. A step whose scaled gradients
overflow is skipped and the scale lowered (dynamic loss scaling); the loss itself stays
finite, so the trainer's NaN stop only fires on a real divergence.

Models return float32 (their last op casts), so every loss is computed in float32; the
DLT, the CQT layer, the GCN's sampling and splatting and the CVG's canvas also run in
float32 (see the models). On a GPU with tensor cores (compute capability 7.0 and up)
float16 roughly halves activation memory and speeds up convolutions and matmuls; on a CPU
it is slower than float32 and is used only to test the numerics.
"""

import contextlib

import tensorflow as tf

from apvg_tf import dtype_policy

MIXED = "mixed_float16"


@contextlib.contextmanager
def policy(enabled):
  """Within the block, layers are built with the mixed_float16 policy if `enabled`.

  The previous global policy is restored on exit, so evaluation and export, which build
  their models afterwards in the same process, stay in float32.
  """
  if not enabled:
    yield
    return
  with dtype_policy.policy_scope(MIXED):
    yield


def wrap(optimizer, enabled):
  """The optimizer, wrapped in a dynamic LossScaleOptimizer if `enabled`."""
  if not enabled or isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
    return optimizer
  return tf.keras.mixed_precision.LossScaleOptimizer(optimizer)


def _scaling(optimizer):
  return isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer)


def scaled(optimizer, loss):
  """`loss` times the optimizer's loss scale (call it while the tape records), or `loss`."""
  return optimizer.get_scaled_loss(loss) if _scaling(optimizer) else loss


def apply_gradients(optimizer, tape, scaled_loss, variables):
  """Differentiates `scaled(optimizer, loss)` on `tape` and applies the unscaled gradients.

  Args:
    optimizer: a tf.keras optimizer, possibly a LossScaleOptimizer (which skips the update
      and lowers its scale when a gradient is not finite).
    tape: the GradientTape that recorded `scaled_loss` (no longer recording).
    scaled_loss: float32 scalar from `scaled`.
    variables: list of trainable variables.
  """
  grads = tape.gradient(scaled_loss, variables)
  if _scaling(optimizer):
    grads = optimizer.get_unscaled_gradients(grads)
  optimizer.apply_gradients(zip(grads, variables))
