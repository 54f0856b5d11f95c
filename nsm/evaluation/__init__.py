"""Evaluation: metrics, link-prediction ranking, and scoring a trained run without a trainer."""

from nsm.evaluation.evaluator import evaluate, evaluate_run, load_run
from nsm.evaluation.metrics import compute_classification_metrics

__all__ = ["compute_classification_metrics", "evaluate", "evaluate_run", "load_run"]
