r"""From node embeddings to one prediction per graph, shared by the NSM and the flat R-GCN.

.. math::
    \text{logits}_g = \mathrm{MLP}\big(\operatorname{mean}_{i \in g} h_i \,\|\, \max_{i \in g} h_i
        \,[\,\|\, e_{\text{head}_g} \,\|\, e_{\text{tail}_g} \,\|\, R_{q_g}]\big)

``h`` ``[N, C]`` are the nodes of the level read out (the most abstract one for the NSM); for
link prediction ``e`` ``[N', C]`` are concrete-level node embeddings, of which the query's head
and tail are appended together with a learned embedding of the query relation. A missing head,
tail or query contributes zeros, i.e. the prediction falls back to the graph readout.
Output: ``[num_graphs, num_classes]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_max_pool, global_mean_pool


class GraphHead(nn.Module):
    def __init__(self, channels: int, num_classes: int, task_type: str, num_relations: int, dropout: float = 0.0):
        super().__init__()
        self.link_prediction = task_type == "link_prediction"
        self.query_embedding = nn.Embedding(num_relations, channels) if self.link_prediction else None
        in_channels = (5 if self.link_prediction else 2) * channels
        self.mlp = nn.Sequential(nn.Linear(in_channels, channels), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(channels, num_classes))

    def forward(self, h: Tensor, batch: Tensor, num_graphs: int, node_embedding: Tensor | None = None,
                head_index: Tensor | None = None, tail_index: Tensor | None = None,
                query_relation: Tensor | None = None) -> Tensor:
        parts = [global_mean_pool(h, batch, num_graphs), global_max_pool(h, batch, num_graphs)]
        if self.link_prediction:
            missing = h.new_zeros(num_graphs, h.size(-1))
            parts += [node_embedding[head_index] if head_index is not None else missing,
                      node_embedding[tail_index] if tail_index is not None else missing,
                      self.query_embedding(query_relation) if query_relation is not None else missing]
        return self.mlp(torch.cat(parts, dim=-1))
