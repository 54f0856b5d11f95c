r"""From node embeddings to one prediction per graph, shared by the NSM and the flat R-GCN.

.. math::
    \text{logits}_g = \mathrm{MLP}\Big(\sum_{l} \big(\operatorname{mean}_{i \in g} h^l_i \,\|\,
        \max_{i \in g} h^l_i\big) \,[\,\|\, e_{\text{head}_g} \,\|\, e_{\text{tail}_g} \,\|\, R_{q_g}]\Big)

``levels`` are the ``(h [N_l, C], batch [N_l])`` of the levels read out: the flat model's one
graph, or every level of the NSM's hierarchy, whose readouts are summed (the hierarchical readout
of Cangea et al. 2018 and SAGPool's, Lee et al. 2019), so a prediction draws on every level of
abstraction. For link prediction ``e`` ``[N', C]`` are concrete-level node embeddings, of which the query's head
and tail are appended together with a learned embedding of the query relation. A missing head,
tail or query contributes zeros, i.e. the prediction falls back to the graph readout.
Output: ``[num_graphs, num_classes]``.
"""

from __future__ import annotations

from collections.abc import Sequence

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

    def forward(self, levels: Sequence[tuple[Tensor, Tensor]], num_graphs: int, node_embedding: Tensor | None = None,
                head_index: Tensor | None = None, tail_index: Tensor | None = None,
                query_relation: Tensor | None = None) -> Tensor:
        readout = sum(torch.cat([global_mean_pool(h, batch, num_graphs), global_max_pool(h, batch, num_graphs)], dim=-1)
                      for h, batch in levels)
        parts = [readout]
        if self.link_prediction:
            missing = readout.new_zeros(num_graphs, self.query_embedding.embedding_dim)
            # index_select: its backward sums a repeated node in a fixed order (see nsm.models.rgcn).
            parts += [node_embedding.index_select(0, head_index) if head_index is not None else missing,
                      node_embedding.index_select(0, tail_index) if tail_index is not None else missing,
                      self.query_embedding(query_relation) if query_relation is not None else missing]
        return self.mlp(torch.cat(parts, dim=-1))
