"""Training: the trainer, its checkpoints, batches and progress events.

``NSMTrainer`` and ``compute_classification_metrics`` are imported on first use (PEP 562): the
evaluation package reads checkpoints and batches from here, and the trainer evaluates with it.
"""

__all__ = ["NSMTrainer", "compute_classification_metrics"]


def __getattr__(name: str):
    if name == "NSMTrainer":
        from nsm.training.trainer import NSMTrainer

        return NSMTrainer
    if name == "compute_classification_metrics":
        from nsm.evaluation.metrics import compute_classification_metrics

        return compute_classification_metrics
    raise AttributeError(f"module 'nsm.training' has no attribute {name!r}")
