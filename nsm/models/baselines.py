"""Baselines that share ``NSMModel``'s interface, for honest comparisons.

``BagOfTypesMLP`` sees only how many nodes of each type/level (the sums of ``x``) and how many
edges of each relation a graph has — no connectivity at all. A domain whose labels this model
can predict well leaks its label through counts; ours must keep it near chance.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.utils import scatter


class BagOfTypesMLP(nn.Module):
    """MLP over per-graph counts.

    Input of the MLP, per graph: ``log1p(Σ x)`` ``[F]`` ⊕ ``log1p(#edges of each relation)``
    ``[R]`` ⊕ one-hot query relation ``[R]`` (zeros when there is no query).
    Output: ``{'logits': [num_graphs, num_classes]}``.
    """

    def __init__(self, node_features: int, num_relations: int, num_classes: int = 2, hidden: int = 64):
        super().__init__()
        self.node_features = node_features
        self.num_relations = num_relations
        self.num_classes = num_classes
        self.mlp = nn.Sequential(
            nn.Linear(node_features + 2 * num_relations, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x, edge_index, edge_type, edge_attr=None, batch=None, query_relation=None, **_):
        if batch is None:
            batch = x.new_zeros(x.size(0), dtype=torch.long)
        num_graphs = int(batch.max()) + 1 if batch.numel() else 1
        node_counts = scatter(x, batch, dim=0, dim_size=num_graphs, reduce="sum")
        edge_graph = batch[edge_index[0]]
        relation_counts = scatter(
            nn.functional.one_hot(edge_type, self.num_relations).float(), edge_graph,
            dim=0, dim_size=num_graphs, reduce="sum",
        )
        query = x.new_zeros(num_graphs, self.num_relations)
        if query_relation is not None:
            query = nn.functional.one_hot(query_relation, self.num_relations).float()
        features = torch.cat([node_counts.log1p(), relation_counts.log1p(), query], dim=1)
        return {"logits": self.mlp(features)}
