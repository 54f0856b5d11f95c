"""The flat baseline: the NSM's relational convolutions and readout without the hierarchy.

``num_layers`` :class:`~nsm.models.rgcn.ConfidenceRGCNConv` layers (ReLU after each) over the
concrete graph, then the same :class:`~nsm.models.readout.GraphHead` as the NSM, reading all
nodes. With ``num_layers`` equal to the NSM's ``num_levels`` both models apply as many
convolutions on the way to the logits, so a difference between them is the hierarchy's.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nsm.models.inputs import check_graph_inputs, check_model_settings
from nsm.models.readout import GraphHead
from nsm.models.rgcn import ConfidenceRGCNConv, group_by_relation


class FlatRGCN(nn.Module):
    """``forward`` returns ``logits`` ``[num_graphs, num_classes]``, ``cycle_loss`` 0 and no ``levels``."""

    def __init__(self, node_features: int, num_relations: int, num_classes: int = 2, num_bases: int = 8,
                 task_type: str = "classification", num_layers: int = 3, hidden: int = 48,
                 dropout: float = 0.0):
        super().__init__()
        check_model_settings(task_type, dropout, node_features=node_features, num_relations=num_relations,
                             num_classes=num_classes, num_bases=num_bases, num_layers=num_layers, hidden=hidden)
        self.node_features = node_features
        self.num_relations = num_relations
        self.convs = nn.ModuleList(
            ConfidenceRGCNConv(node_features if layer == 0 else hidden, hidden, num_relations, num_bases)
            for layer in range(num_layers))
        self.dropout = nn.Dropout(dropout)
        self.head = GraphHead(hidden, num_classes, task_type, num_relations, dropout)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, head_index: Tensor | None = None, tail_index: Tensor | None = None,
                query_relation: Tensor | None = None) -> dict:
        edge_attr, batch, num_graphs = check_graph_inputs(
            x, edge_index, edge_type, edge_attr, batch, head_index, tail_index, query_relation,
            node_features=self.node_features, num_relations=self.num_relations)
        h = x
        tiles = group_by_relation(edge_index, edge_type, edge_attr, x.size(0), self.num_relations)  # shared
        for conv in self.convs:
            h = self.dropout(torch.relu(conv(h, edge_index, edge_type, edge_attr, tiles)))
        logits = self.head([(h, batch)], num_graphs, h, head_index, tail_index, query_relation)
        return {"logits": logits, "cycle_loss": logits.new_zeros((), dtype=torch.float32), "levels": []}
