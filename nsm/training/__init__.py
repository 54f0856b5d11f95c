"""Training: metrics, the trainer, checkpoints and the job function."""

from nsm.training.metrics import compute_classification_metrics
from nsm.training.trainer import NSMTrainer

__all__ = ["NSMTrainer", "compute_classification_metrics"]
