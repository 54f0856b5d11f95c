"""WHAT's error on the dropped nodes beside the predictors that learn nothing (nsm.evaluation.reconstruction)."""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.loader import DataLoader

from nsm.data import load_dataset
from nsm.evaluation.evaluator import evaluate
from nsm.evaluation.reconstruction import ReconstructionTally, neighbour_mean, type_mean
from nsm.models import build_model
from nsm.rundir import format_summary


def test_the_predictors_on_a_path_of_three_nodes():
    h = torch.tensor([[1.0, 0.0], [4.0, 2.0], [3.0, 4.0]])
    edge_index = torch.tensor([[0, 1], [1, 2]])  # 0 -> 1 -> 2
    assert torch.equal(neighbour_mean(h, edge_index), torch.tensor([[4.0, 2.0], [2.0, 2.0], [4.0, 2.0]]))
    assert torch.equal(type_mean(h, torch.tensor([0, 1, 0])), torch.tensor([[2.0, 2.0], [4.0, 2.0], [2.0, 2.0]]))
    isolated = neighbour_mean(h, torch.tensor([[0], [1]]))
    assert torch.equal(isolated[2], torch.zeros(2))  # no neighbour: zeros


def level(target, predicted, perm, edge_index):
    return {"target": target, "predicted": predicted}, {"perm": torch.tensor(perm), "edge_index": edge_index}


def test_only_the_dropped_nodes_count_and_the_errors_add_over_batches():
    tally = ReconstructionTally()
    h = torch.tensor([[1.0, 0.0], [4.0, 2.0], [3.0, 4.0]])
    predicted = h.clone()
    predicted[1] = torch.tensor([4.0, 0.0])  # off by 2 on the dropped node
    predicted[0] = torch.tensor([100.0, 100.0])  # a kept node's error does not count
    pair, pooled = level(h, predicted, [0, 2], torch.tensor([[0, 1], [1, 2]]))
    # Node 1 shares its type with node 0: the type mean predicts (2.5, 1), the neighbours' (2, 2).
    tally.add({"reconstruction": [pair], "levels": [pooled]}, torch.tensor([[0, 1], [1, 2]]), torch.tensor([0, 0, 1]))
    metrics = tally.metrics()
    norm = math.hypot(4, 2)
    assert metrics["recon_dropped_l1"] == pytest.approx(2 / norm)
    assert metrics["recon_neighbour_mean_l1"] == pytest.approx(2 / norm)
    assert metrics["recon_type_mean_l1"] == pytest.approx(math.hypot(1.5, 1) / norm)
    assert metrics["recon_vs_baseline_l1"] == pytest.approx(2 / math.hypot(1.5, 1))  # over the better, the type's

    # A second batch, no node types: errors are sums of squares over the split, not a mean of ratios.
    second = torch.tensor([[0.0, 3.0], [1.0, 1.0]])
    pair, pooled = level(second, torch.zeros(2, 2), [1], torch.tensor([[0], [1]]))
    tally.add({"reconstruction": [pair], "levels": [pooled]}, torch.tensor([[0], [1]]), None)
    metrics = tally.metrics()
    assert metrics["recon_dropped_l1"] == pytest.approx(math.sqrt(4 + 9) / math.sqrt(20 + 9))
    # The type mean saw the first batch only, and is measured on it alone.
    assert metrics["recon_type_mean_l1"] == pytest.approx(math.hypot(1.5, 1) / norm)


def test_the_next_level_reads_the_kept_nodes_types_and_edges():
    """Level 2's nodes are level 1's kept ones: their types follow perm, their edges the pooled graph."""
    h1 = torch.ones(4, 1)
    h2 = torch.tensor([[2.0], [6.0], [2.0]])  # level 2: level 1's nodes 3, 0, 1
    pooled1 = {"perm": torch.tensor([3, 0, 1]), "edge_index": torch.tensor([[0], [2]])}
    pooled2 = {"perm": torch.tensor([0, 2]), "edge_index": torch.empty(2, 0, dtype=torch.long)}
    output = {"reconstruction": [{"target": h1, "predicted": h1}, {"target": h2, "predicted": torch.zeros(3, 1)}],
              "levels": [pooled1, pooled2]}
    tally = ReconstructionTally()
    tally.add(output, torch.tensor([[0, 1], [1, 2]]), torch.tensor([5, 7, 7, 5]))
    metrics = tally.metrics()
    assert metrics["recon_dropped_l1"] == 0  # WHAT exact on level 1
    assert "recon_vs_baseline_l1" not in metrics  # the predictors are exact too: no ratio
    # Level 2's types are [5, 5, 7]; it drops its node 1 (level 1's node 0), neighbourless there,
    # whose type it shares with node 0: the type mean predicts (2 + 6) / 2.
    assert metrics["recon_dropped_l2"] == pytest.approx(1.0)
    assert metrics["recon_neighbour_mean_l2"] == pytest.approx(1.0)
    assert metrics["recon_type_mean_l2"] == pytest.approx(2 / 6)
    assert metrics["recon_vs_baseline_l2"] == pytest.approx(3.0)


def test_an_evaluation_of_the_nsm_reports_the_dropped_nodes_beside_the_predictors(tmp_path):
    dataset = load_dataset("planning", tmp_path, "val", num_samples=100)
    torch.manual_seed(0)
    model = build_model("nsm", node_features=64, num_relations=dataset.num_relations, num_bases=4, pool_ratio=0.5)
    metrics = evaluate(model, DataLoader(dataset, batch_size=16), torch.device("cpu"))
    for k in (1, 2):
        baselines = [metrics[f"recon_neighbour_mean_l{k}"], metrics[f"recon_type_mean_l{k}"]]
        assert metrics[f"recon_vs_baseline_l{k}"] == pytest.approx(metrics[f"recon_dropped_l{k}"] / min(baselines))
        assert metrics[f"recon_dropped_l{k}"] > 0
    flat = build_model("flat-rgcn", node_features=64, num_relations=dataset.num_relations)
    assert not any(key.startswith("recon") for key in evaluate(flat, DataLoader(dataset, batch_size=16),
                                                               torch.device("cpu")))
    table = format_summary({"planning": {"status": "success", "test_metrics": {"accuracy": 0.5, **metrics}}})
    assert "L1/base" in table and f"{metrics['recon_vs_baseline_l2']:.3f}" in table
