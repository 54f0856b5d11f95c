"""Does a dataset leak its label through counts? Fit the bag-of-types baseline and see.

Used by the tests and by ``benchmarks/label_leakage.py``: a baseline with no access to
connectivity must stay near chance on every domain, or the labels are not about structure.
"""

from __future__ import annotations

import torch
from torch_geometric.data import Batch

from nsm.models.baselines import BagOfTypesMLP
from nsm.training.batches import unpack_batch


def _full_batch(dataset) -> Batch:
    return Batch.from_data_list([dataset[i][0] for i in range(len(dataset))])


def _counts(model: BagOfTypesMLP, batch: Batch) -> torch.Tensor:
    return model.counts(**unpack_batch(batch, "cpu")[0])


def bag_of_types_accuracy(train_dataset, test_dataset, epochs: int = 300, seed: int = 0) -> dict[str, float]:
    """Train ``BagOfTypesMLP`` full-batch on ``train_dataset``; accuracy on both splits.

    The best test accuracy over training is reported, so the figure is an upper bound on what
    counts alone can reach — the honest side to err on for a leakage check.
    """
    torch.manual_seed(seed)
    train, test = _full_batch(train_dataset), _full_batch(test_dataset)
    model = BagOfTypesMLP(train.x.size(1), train_dataset.num_relations, num_classes=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    # The counts do not change during training: compute them once, train the MLP on them.
    train_counts, test_counts = _counts(model, train), _counts(model, test)
    best_test = 0.0
    for _ in range(epochs):
        model.train()
        loss = torch.nn.functional.cross_entropy(model.mlp(train_counts), train.y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            best_test = max(best_test, (model.mlp(test_counts).argmax(1) == test.y).float().mean().item())
    with torch.no_grad():
        train_accuracy = (model.mlp(train_counts).argmax(1) == train.y).float().mean().item()
    return {"train_accuracy": train_accuracy, "best_test_accuracy": best_test}
