"""Training: metrics, the trainer, checkpoints and the job function."""
