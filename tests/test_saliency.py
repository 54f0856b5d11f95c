"""The saliency term's machinery (nsm.models.saliency): its attribution, its per-graph targets,
where its gradient goes, and the trainer's use of it. What it does to fidelity is measured in
benchmarks/README.md, not here."""

import pytest
import torch
from torch_geometric.loader import DataLoader

from nsm.errors import NSMError
from nsm.models.saliency import attribution, saliency_pooling_loss, top_per_graph
from nsm.training import NSMTrainer
from test_models import nsm, random_batch, random_graph

# Floating-point results throughout: run again under other CPU kernels (make test).
pytestmark = pytest.mark.rounding


def test_attribution_of_a_linear_model_is_each_nodes_share_of_the_margin():
    """For logits summed over a graph's nodes, x_i · ∇m is node i's exact contribution to the margin."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, generator=gen, dtype=torch.float64).requires_grad_(True)
    weights = torch.rand(3, 2, generator=gen, dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 1, 1])
    logits = torch.zeros(2, 2, dtype=torch.float64).index_add(0, batch, x @ weights)
    predicted = logits.argmax(-1)
    direction = weights[:, predicted] - weights[:, 1 - predicted]  # [3, graphs]
    expected = (x * direction.T[batch]).sum(-1)
    assert torch.allclose(attribution(x, logits).double(), expected.detach(), atol=1e-6)
    # each graph's contributions add up to its margin
    shares = torch.zeros(2, dtype=torch.float64).index_add(0, batch, expected.detach())
    assert torch.allclose(shares, (logits.max(-1).values - logits.min(-1).values).detach())


def test_top_per_graph_picks_each_graphs_own_highest_values():
    values = torch.tensor([0.1, 0.9, 0.5, -1.0, 3.0, 2.0, 0.0])
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    selected = top_per_graph(values, batch, torch.tensor([2, 1]))
    assert selected.tolist() == [False, True, True, False, True, False, False]
    # a graph's nodes out of order in the batch, and one graph kept whole
    selected = top_per_graph(values, torch.tensor([1, 0, 1, 0, 1, 0, 0]), torch.tensor([4, 1]))
    assert selected.tolist() == [False, True, False, True, True, True, True]


def inputs_and_output(model):
    batch = random_batch()
    inputs = {"x": batch.x.clone().requires_grad_(True), "edge_index": batch.edge_index,
              "edge_type": batch.edge_type, "edge_attr": batch.edge_attr, "batch": batch.batch}
    return inputs, model(**inputs)


def test_the_loss_trains_the_scorers_alone():
    """The target is fixed and the scorers' inputs detached, so the gradient reaches WHY's
    scorers and nothing else: not the convolutions below them, not the graph head."""
    model = nsm()
    inputs, out = inputs_and_output(model)
    loss = saliency_pooling_loss(model, inputs, out)
    assert loss.ndim == 0 and loss > 0
    loss.backward()
    scorers = {id(p) for layer in model.hierarchy for p in layer.pool.score.parameters()}
    assert all(p.grad.abs().sum() > 0 for p in model.parameters() if id(p) in scorers)
    assert all(p.grad is None for p in model.parameters() if id(p) not in scorers)


def test_the_loss_asks_each_level_to_keep_the_highest_attribution():
    """Scorers that already rank each level's nodes by attribution (a scorer replaced by the
    attribution itself) have a lower loss than the model's own, and than the reversed ranking."""
    model = nsm()
    inputs, out = inputs_and_output(model)
    node_attribution = attribution(inputs["x"], out["logits"])
    per_level, nodes = [], node_attribution
    for level in out["levels"]:
        per_level.append(nodes)
        nodes = nodes[level["perm"]]

    def loss_with(sign):
        class Ranked(torch.nn.Module):  # the level's input nodes scored by sign · attribution
            def __init__(self, values):
                super().__init__()
                self.values = values

            def forward(self, x, *edges):
                return sign * 10 * (self.values - self.values.median()).unsqueeze(-1)

        originals = [layer.pool.score for layer in model.hierarchy]
        for layer, values in zip(model.hierarchy, per_level):
            layer.pool.score = Ranked(values)
        try:
            return saliency_pooling_loss(model, inputs, out)
        finally:
            for layer, original in zip(model.hierarchy, originals):
                layer.pool.score = original

    own = saliency_pooling_loss(model, inputs, out)
    assert loss_with(1) < own < loss_with(-1)


def test_trainer_adds_the_term_only_when_weighted():
    graphs = [(random_graph(12 + i % 5, 24, i), torch.tensor([i % 2])) for i in range(16)]
    history = {}
    for weight in (0.0, 1.0):
        model = nsm()
        trainer = NSMTrainer(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                             saliency_loss_weight=weight, checkpoint_dir=None)
        loader = DataLoader(graphs, batch_size=8)
        history[weight] = trainer.train(loader, loader, epochs=1)["train"][0]
    assert "saliency_loss" not in history[0.0]
    train = history[1.0]
    assert train["saliency_loss"] > 0
    assert train["total_loss"] == pytest.approx(train["task_loss"] + 0.05 * train["cycle_loss"]
                                                + train["saliency_loss"], rel=1e-5)
    with pytest.raises(NSMError, match="saliency_loss_weight must be >= 0"):
        NSMTrainer(model=nsm(), optimizer=torch.optim.Adam(nsm().parameters()), saliency_loss_weight=-1)
