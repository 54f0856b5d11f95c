import itertools
import math

import pytest
import torch

from nsm.training import compute_classification_metrics


def pairwise_auroc(scores: list[float], labels: list[int]) -> float:
    """AUROC by definition: the share of (positive, negative) pairs ranked right, ties ½."""
    positives = [s for s, y in zip(scores, labels) if y == 1]
    negatives = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(positives, negatives))
    return wins / (len(positives) * len(negatives))


def test_two_logits_use_argmax():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, -1.0], [0.5, 0.4]])
    labels = torch.tensor([0, 1, 1, 0])
    metrics = compute_classification_metrics(logits, labels, "link_prediction")
    # predictions [0, 1, 0, 0]: class 0 both right, class 1 one of two
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["accuracy_class_0"] == pytest.approx(1.0)
    assert metrics["accuracy_class_1"] == pytest.approx(0.5)
    assert metrics["balanced_accuracy"] == pytest.approx(0.75)
    assert metrics["confusion_matrix"] == [[2, 0], [1, 1]]
    # F1 class 0 = 2·2/(2+3) = 0.8, class 1 = 2·1/(2+1) = 2/3
    assert metrics["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert metrics["collapsed"] is False


@pytest.mark.parametrize("shape", ["[B]", "[B, 1]"])
def test_single_logit_uses_sigmoid(shape):
    logits = torch.tensor([-2.0, 0.1, 3.0, -0.1, 0.0])  # sigmoid > 0.5 -> [0, 1, 1, 0, 0]
    labels = torch.tensor([[0], [1], [0], [0], [1]])  # [B, 1] as our loaders yield
    preds = logits if shape == "[B]" else logits.view(-1, 1)
    metrics = compute_classification_metrics(preds, labels, "classification")
    assert metrics["confusion_matrix"] == [[2, 1], [1, 1]]
    assert metrics["accuracy"] == pytest.approx(3 / 5)


def test_auroc_matches_pairwise_definition():
    # scikit-learn's documented example: scores [0.1, 0.4, 0.35, 0.8], labels [0, 0, 1, 1] -> 0.75
    probs = torch.tensor([0.1, 0.4, 0.35, 0.8])
    metrics = compute_classification_metrics(torch.logit(probs), torch.tensor([0, 0, 1, 1]), "classification")
    assert metrics["auroc"] == pytest.approx(0.75)

    generator = torch.Generator().manual_seed(0)
    logits = torch.randint(-3, 4, (40, 2), generator=generator).float()  # coarse: many tied scores
    labels = torch.randint(0, 2, (40,), generator=generator)
    expected = pairwise_auroc(logits.softmax(1)[:, 1].tolist(), labels.tolist())
    assert compute_classification_metrics(logits, labels, "classification")["auroc"] == pytest.approx(expected)


def test_auroc_undefined_with_one_class():
    metrics = compute_classification_metrics(torch.randn(6, 2), torch.ones(6, dtype=torch.long), "classification")
    assert math.isnan(metrics["auroc"]) and math.isnan(metrics["accuracy_class_0"])
    assert not math.isnan(metrics["balanced_accuracy"])  # the mean skips the absent class


def predictions(pairs: list[tuple[int, int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels from (true class, predicted class, count) triples."""
    labels = torch.tensor([true for true, _, count in pairs for _ in range(count)])
    predicted = torch.tensor([pred for _, pred, count in pairs for _ in range(count)])
    return torch.nn.functional.one_hot(predicted, 2).float(), labels


def test_collapse_detection():
    # class 1 recall 4/50 = 8 % while only 86 % of predictions are class 0: the recall rule
    logits, labels = predictions([(0, 0, 40), (0, 1, 10), (1, 1, 4), (1, 0, 46)])
    assert compute_classification_metrics(logits, labels, "classification")["collapsed"] is True
    # every recall >= 20 % but 99 % of predictions are class 0: the share rule
    logits, labels = predictions([(0, 0, 95), (1, 1, 1), (1, 0, 4)])
    assert compute_classification_metrics(logits, labels, "classification")["collapsed"] is True
    # both classes predicted in proportion, recalls 80 %: healthy
    logits, labels = predictions([(0, 0, 40), (0, 1, 10), (1, 1, 40), (1, 0, 10)])
    assert compute_classification_metrics(logits, labels, "classification")["collapsed"] is False


def test_multiclass_argmax():
    logits = torch.eye(3)[[0, 1, 2, 2]]
    metrics = compute_classification_metrics(logits, torch.tensor([0, 1, 2, 1]), "classification")
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["accuracy_class_1"] == pytest.approx(0.5)
    assert metrics["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


@pytest.mark.parametrize("preds, labels, task_type, message", [
    (torch.randn(5, 2), torch.zeros(4, dtype=torch.long), "classification", "5 rows but labels has 4"),
    (torch.randn(4, 2, 2), torch.zeros(4, dtype=torch.long), "classification", r"got shape \[4, 2, 2\]"),
    (torch.randn(4, 2), torch.zeros(4, 2, dtype=torch.long), "classification", r"labels must be \[B\]"),
    (torch.randn(4, 2), torch.tensor([0, 1, 2, 0]), "classification", r"\[0, 1\]"),
    (torch.randn(0, 2), torch.zeros(0, dtype=torch.long), "classification", "zero examples"),
    (torch.randn(4, 2), torch.zeros(4, dtype=torch.long), "ranking", "unknown task_type"),
])
def test_bad_inputs_raise_value_error(preds, labels, task_type, message):
    with pytest.raises(ValueError, match=message):
        compute_classification_metrics(preds, labels, task_type)
