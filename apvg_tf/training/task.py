"""The interface every stage's training task implements (what `trainer.train_stage` calls).

A task is made by `stages.make_task(config, stage, manifest, workdir)` as
`Task(config, manifest, frozen=...)`: `frozen` holds the trained models of other stages it
builds on (the STU: {"khp": KP, "cvg": CVG}; the KP with the pose perceptual loss:
{"sync": the sync evaluator}), restored by the caller. A task never restores another work
directory itself.
"""


class Task:
  """One stage's model, losses and training step.

  Attributes (class level):
    name: the stage ("khp", "cvg", "stu", "sync").
    fields: the dataset fields its batches need ("frames", "audio", "keypoints").
  Attributes (after `build`):
    model: the model that evaluation and export use.
  """

  name = ""
  fields = ()

  def __init__(self, config, manifest, frozen=None):
    """Args: config (the stage's resolved ConfigDict), manifest (the dataset's), frozen
    (dict stage -> trained model of another stage, not trained here)."""
    self.config = config
    self.manifest = manifest
    self.frozen = dict(frozen or {})

  def build(self, optimizer):
    """Creates the networks (inside the strategy scope) and builds the optimizer's slots.

    Returns:
      dict name -> trackable to checkpoint ("model" and "optimizer" at least).
    """
    raise NotImplementedError

  def train_step(self, batch, global_batch_size, random):
    """One update on a replica's batch (inside `strategy.run`).

    Args:
      batch: dict of the `fields`, [B, T, ...] per replica.
      global_batch_size: for `tf.nn.compute_average_loss`.
      random: the step's `randomness.StepRandom`.

    Returns:
      dict of scalar losses, each scaled so that their sum over replicas is the global mean.
    """
    raise NotImplementedError

  def summary_images(self, batch):
    """A uint8 [1, H, W, 3] picture of one example for TensorBoard."""
    raise NotImplementedError

  def validation_score(self):
    """A score on the validation split (lower is better), or None without one.

    The trainer keeps the checkpoint with the best score in `<workdir>/<stage>/best/`.
    """
    return None

  def after_step(self):
    """Cross-replica work after each update (e.g. an EMA of the weights); none by default."""
