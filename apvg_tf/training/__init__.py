"""Training: one loop (`trainer.train_and_evaluate`) and one task module per stage."""
