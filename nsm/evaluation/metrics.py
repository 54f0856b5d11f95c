"""Classification metrics over a whole split's predictions.

``compute_classification_metrics(preds, labels, task_type)`` takes the concatenated model outputs
of a split and returns plain Python values (floats, ints, a bool, a nested list) so the result can
go straight into history, checkpoints and JSON.

How predictions are read, for ``task_type`` ``'classification'`` or ``'link_prediction'``:

* ``[B, C]`` with ``C >= 2``: logits of ``C`` classes; prediction = argmax, probabilities = softmax.
* ``[B, 1]`` or ``[B]``: one logit of class 1; probability = sigmoid, prediction = probability > 0.5.
"""

from __future__ import annotations

import math

import torch

from nsm.models.inputs import TASK_TYPES

# A classifier has collapsed when it almost ignores a class (recall below this) ...
COLLAPSE_MIN_RECALL = 0.10
# ... or puts almost everything into one class (at least this share of its predictions).
COLLAPSE_MAX_SHARE = 0.95


def compute_classification_metrics(
    preds: torch.Tensor, labels: torch.Tensor, task_type: str = "classification"
) -> dict[str, float | bool | list[list[int]]]:
    """Metrics of ``preds`` against ``labels`` (``[B]`` or ``[B, 1]``) for ``task_type``.

    Classification (``C`` classes, ``n_k`` examples of class ``k``, ``tp_k`` of them right):

    * ``accuracy`` = Σ tp_k / B; ``accuracy_class_k`` = tp_k / n_k (the recall of class k);
    * ``balanced_accuracy`` = mean_k recall_k; ``macro_f1`` = mean_k 2·tp_k / (n_k + predicted_k);
    * ``auroc``: P(score of a random positive > score of a random negative), ties counting ½
      (Mann–Whitney U); one-vs-rest and averaged over classes when ``C > 2``;
    * ``auc_pr`` (binary only): average precision of class 1, Σ_k (R_k − R_{k−1}) · P_k over
      the distinct scores from highest to lowest, tied scores entering together (the step-wise
      area under the precision-recall curve, as GraIL and scikit-learn report it);
    * ``confusion_matrix[i][j]``: examples of true class i predicted as j;
    * ``collapsed``: some class has recall < 10 %, or ≥ 95 % of predictions fall in one class.

    A value that is undefined for this split (a class with no examples, AUROC with one class
    present) is ``nan`` and is left out of the means.

    Raises:
        ValueError: unknown ``task_type``, unsupported shapes, lengths that differ, no examples,
            or labels that are not class ids.
    """
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task_type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")
    preds = torch.as_tensor(preds).detach().float().cpu()
    labels = _flatten_labels(torch.as_tensor(labels).detach().cpu())
    if preds.dim() not in (1, 2) or (preds.dim() == 2 and preds.size(1) == 0):
        raise ValueError(f"preds must be [B], [B, 1] or [B, num_classes], got shape {list(preds.shape)}")
    if preds.size(0) != labels.size(0):
        raise ValueError(f"preds has {preds.size(0)} rows but labels has {labels.size(0)}")
    if labels.numel() == 0:
        raise ValueError("cannot compute metrics over zero examples")

    if preds.dim() == 2 and preds.size(1) >= 2:
        probs = preds.softmax(dim=1)
    else:
        positive = preds.view(-1).sigmoid()
        probs = torch.stack([1 - positive, positive], dim=1)
    num_classes = probs.size(1)
    predicted = probs.argmax(dim=1)  # for one sigmoid output: class 1 iff its probability > 0.5
    labels = _class_ids(labels, num_classes)

    confusion = torch.bincount(labels * num_classes + predicted, minlength=num_classes**2).view(
        num_classes, num_classes
    )
    true_positives = confusion.diag().double()
    support = confusion.sum(dim=1).double()
    predicted_count = confusion.sum(dim=0).double()
    # 0/0 -> nan: undefined for a class absent from both labels and predictions (or from labels).
    recall = true_positives / support
    f1 = 2 * true_positives / (support + predicted_count)
    auroc = [_binary_auroc(probs[:, k], labels == k) for k in range(num_classes)]

    metrics: dict[str, float | bool | list[list[int]]] = {
        "accuracy": (true_positives.sum() / labels.numel()).item(),
    }
    metrics.update({f"accuracy_class_{k}": recall[k].item() for k in range(num_classes)})
    metrics["balanced_accuracy"] = recall.nanmean().item()
    metrics["macro_f1"] = f1.nanmean().item()
    # Binary: both one-vs-rest AUROCs are the same number; report one.
    metrics["auroc"] = auroc[1] if num_classes == 2 else torch.tensor(auroc).nanmean().item()
    if num_classes == 2:
        metrics["auc_pr"] = average_precision(probs[:, 1], labels == 1)
    metrics["confusion_matrix"] = confusion.tolist()
    metrics["collapsed"] = bool(
        (recall[support > 0] < COLLAPSE_MIN_RECALL).any()
        or predicted_count.max() >= COLLAPSE_MAX_SHARE * labels.numel()
    )
    return metrics


def _flatten_labels(labels: torch.Tensor) -> torch.Tensor:
    if labels.dim() == 2 and labels.size(1) == 1:
        return labels.view(-1)
    if labels.dim() != 1:
        raise ValueError(f"labels must be [B] or [B, 1], got shape {list(labels.shape)}")
    return labels


def _class_ids(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise ValueError("classification labels must be whole class ids, got fractional values")
    labels = labels.long()
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes - 1}] for {num_classes}-class predictions, "
            f"got values from {labels.min().item()} to {labels.max().item()}"
        )
    return labels


def average_precision(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """Area under the precision-recall curve of ``scores`` for the ``positive`` mask (see
    ``auc_pr`` above); ``nan`` without positives."""
    num_pos = int(positive.sum())
    if num_pos == 0:
        return math.nan
    # Distinct scores, highest first: each is one threshold, its ties crossing it together.
    _, inverse, counts = torch.unique(scores.double(), return_inverse=True, return_counts=True)
    hits = torch.zeros(counts.numel(), dtype=torch.double).index_add_(0, inverse, positive.double()).flip(0)
    true_positives, predicted = hits.cumsum(0), counts.flip(0).double().cumsum(0)
    return (hits / num_pos * true_positives / predicted).sum().item()


def _binary_auroc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """AUROC from ranks: (Σ ranks of positives − n₊(n₊+1)/2) / (n₊·n₋), tied scores sharing
    their average rank. ``nan`` when either class is absent."""
    num_pos = int(positive.sum())
    num_neg = positive.numel() - num_pos
    if num_pos == 0 or num_neg == 0:
        return math.nan
    _, inverse, counts = torch.unique(scores.double(), return_inverse=True, return_counts=True)
    last_rank = counts.cumsum(0).double()
    average_rank = last_rank - (counts.double() - 1) / 2
    rank_sum = average_rank[inverse][positive].sum().item()
    return (rank_sum - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg)

