"""Does a dataset leak its label? Fit baselines that see too little to know it, and see.

Used by the tests and by ``benchmarks/label_leakage.py``. The bag-of-types baseline has no access
to connectivity: it must stay near chance on every domain, or the labels are not about structure.
On a knowledge graph the reachability and distance baselines see only whether, and how far apart,
a query's ends meet in its subgraph: they must stay near chance on the binary samples (else the
negatives give themselves away), and must not beat chance at ranking.
"""

from __future__ import annotations

import torch
from torch_geometric.data import Batch

from nsm.data.triples import LEVELS
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


# --- link prediction: do the ends' distance or reachability give the label away? -----------------


def query_distance(data, schema) -> float:
    """The query tail's ``dist_to_head`` feature: its distance from the head inside the subgraph
    over ``hops + 1``, 1 when the ends do not meet (see :mod:`nsm.data.domains.kg`)."""
    column = len(schema.node_types) + len(LEVELS) + schema.extra_features.index("dist_to_head")
    return round(float(data.x[int(data.tail_index), column]), 4)


class LabelRate:
    """P(label 1 | feature value) counted on training samples, +1 smoothed: the best any
    classifier of that one feature can do on them."""

    def __init__(self, features: list, labels: list[int]):
        counts: dict = {}
        for feature, label in zip(features, labels):
            positives, total = counts.get(feature, (0, 0))
            counts[feature] = (positives + label, total + 1)
        self.rate = {feature: (positives + 1) / (total + 2) for feature, (positives, total) in counts.items()}

    def __call__(self, feature) -> float:
        return self.rate.get(feature, 0.5)


FEATURES = {"reachability": lambda distance: distance < 1.0, "distance": lambda distance: distance}


def distance_baselines(train_dataset, test_dataset, graph=None, entities: int | None = None,
                       seed: int = 0) -> dict[str, dict[str, float]]:
    """Fit ``reachability`` (do the ends meet?) and ``distance`` (how far apart are they?) on the
    training samples; their test accuracy and, given the context ``graph`` (a
    :class:`~nsm.data.domains.kg.tsv.FileGraph`) and its number of ``entities``, their sampled-protocol ranking
    beside chance (the candidates in random order)."""
    from nsm.evaluation.ranking import CandidatePool, chance_metrics, rank_queries

    schema = train_dataset.schema
    train = [query_distance(data, schema) for data in train_dataset.graphs]
    test = [query_distance(data, schema) for data in test_dataset.graphs]
    if graph is not None:
        ids = {entity_name: entity for entity, entity_name in enumerate(graph.names)}
        queries = [(ids[s.query[0]], s.query[1], ids[s.query[2]]) for s in test_dataset.samples if s.label == 1]
        pool = CandidatePool(range(entities), graph.known)
        chance = chance_metrics(queries, pool, seed=seed)
        distances: dict = {}  # a candidate's distance, extracted once for both baselines

        def distance_of(fact) -> float:
            if fact not in distances:
                distances[fact] = query_distance(graph.query_graph(fact, schema, test_dataset.node_feature_dim), schema)
            return distances[fact]

    results = {}
    for name, feature in FEATURES.items():
        rate = LabelRate([feature(d) for d in train], train_dataset.labels)
        predicted = [int(rate(feature(d)) > 0.5) for d in test]
        accuracy = sum(p == y for p, y in zip(predicted, test_dataset.labels)) / len(test)
        results[name] = {"test_accuracy": accuracy}
        if graph is not None:
            ranked = rank_queries(queries, lambda facts, rate=rate, feature=feature: torch.tensor(
                [rate(feature(distance_of(fact))) for fact in facts]), pool, seed=seed)
            results[name].update(mrr=ranked["mrr"], hits_at_10=ranked["hits@10"], chance_mrr=chance["mrr"],
                                 chance_hits_at_10=chance["hits@10"])
    return results
