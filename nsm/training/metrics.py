"""The seed's import path of the metrics (``from nsm.training.metrics import
compute_classification_metrics``); they live in :mod:`nsm.evaluation.metrics`."""

from nsm.evaluation.metrics import compute_classification_metrics

__all__ = ["compute_classification_metrics"]
