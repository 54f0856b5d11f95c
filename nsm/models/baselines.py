"""Baselines that share ``NSMModel``'s interface, for honest comparisons.

``BagOfTypesMLP`` sees only how many nodes of each type/level (the sums of ``x``) and how many
edges of each relation a graph has — no connectivity at all. A domain whose labels this model
can predict well leaks its label through counts; ours must keep it near chance.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from nsm.models.inputs import check_graph_inputs, check_model_settings


class BagOfTypesMLP(nn.Module):
    """MLP over per-graph counts.

    Input of the MLP, per graph: ``log1p(Σ x)`` ``[F]`` ⊕ ``log1p(#edges of each relation)``
    ``[R]`` ⊕ one-hot query relation ``[R]`` (zeros when there is no query).
    Output: ``{'logits': [num_graphs, num_classes], 'cycle_loss': 0, 'levels': []}``.
    """

    def __init__(self, node_features: int, num_relations: int, num_classes: int = 2, hidden: int = 64):
        super().__init__()
        check_model_settings(node_features=node_features, num_relations=num_relations, num_classes=num_classes,
                             hidden=hidden)
        self.node_features = node_features
        self.num_relations = num_relations
        self.num_classes = num_classes
        self.mlp = nn.Sequential(
            nn.Linear(node_features + 2 * num_relations, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def counts(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor | None = None,
               batch: Tensor | None = None, head_index: Tensor | None = None, tail_index: Tensor | None = None,
               query_relation: Tensor | None = None) -> Tensor:
        """The MLP's input, ``[num_graphs, F + 2R]``: everything this baseline ever sees."""
        _, batch, num_graphs = check_graph_inputs(
            x, edge_index, edge_type, edge_attr, batch, head_index, tail_index, query_relation,
            node_features=self.node_features, num_relations=self.num_relations)
        node_counts = scatter(x, batch, dim=0, dim_size=num_graphs, reduce="sum")
        relation_counts = scatter(
            nn.functional.one_hot(edge_type, self.num_relations).to(x.dtype), batch[edge_index[0]],
            dim=0, dim_size=num_graphs, reduce="sum",
        )
        query = x.new_zeros(num_graphs, self.num_relations)
        if query_relation is not None:
            query = nn.functional.one_hot(query_relation, self.num_relations).to(x.dtype)
        return torch.cat([node_counts.log1p(), relation_counts.log1p(), query], dim=1)

    def forward(self, *args, **kwargs) -> dict:
        logits = self.mlp(self.counts(*args, **kwargs))
        return {"logits": logits, "cycle_loss": logits.new_zeros((), dtype=torch.float32), "levels": []}
