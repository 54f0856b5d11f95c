r"""Confidence-weighted relational graph convolution with basis decomposition.

A triple ``(j, r, i)`` with confidence :math:`c_{ji}` matters to both of its ends, so it sends a
message along the edge (relation :math:`r`, "out") and one back (relation :math:`r`, "in"), each
with its own weight. With :math:`\mathcal{N}_i^{r,d}` the neighbours sending to :math:`i` under
relation :math:`r` in direction :math:`d`:

.. math::
    h_i' = W_0 h_i + b + \sum_{d \in \{\text{out}, \text{in}\}} \sum_{r}
           \frac{1}{|\mathcal{N}_i^{r,d}|} \sum_{j \in \mathcal{N}_i^{r,d}} c_{ji} \, W_{r,d}\, h_j,
    \qquad W_{r,d} = \sum_{b=1}^{B} a_{(r,d),b} V_b .

The mean runs over the neighbours of one relation (Schlichtkrull et al. 2018), so a confidence
scales a message instead of cancelling out. All relations are handled at once: every node is
projected onto the :math:`B` bases (one matmul), and each message mixes its source's projections
with its relation's coefficients.

Shapes: ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]``, ``edge_type`` ``[E]`` in
``[0, num_relations)``, ``edge_attr`` ``[E]`` (confidences, ``None`` = 1) → ``[N, out_channels]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot
from torch_geometric.utils import scatter


class ConfidenceRGCNConv(MessagePassing):
    def __init__(self, in_channels: int, out_channels: int, num_relations: int, num_bases: int):
        super().__init__(aggr="add", node_dim=0)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.num_bases = num_bases
        self.bases = nn.Parameter(torch.empty(in_channels, num_bases, out_channels))
        # Rows [0, R) weigh messages subject → object, rows [R, 2R) object → subject.
        self.coefficients = nn.Parameter(torch.empty(2 * num_relations, num_bases))
        self.root = nn.Linear(in_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        glorot(self.bases.transpose(0, 1))  # each basis V_b as an [in, out] matrix
        glorot(self.coefficients)
        self.root.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor | None = None) -> Tensor:
        num_nodes = x.size(0)
        directed_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        directed_type = torch.cat([edge_type, edge_type + self.num_relations])
        confidence = edge_attr.repeat(2) if edge_attr is not None else x.new_ones(directed_type.numel())
        # |N_i^{r,d}|: messages each (target, relation, direction) receives.
        bucket = directed_index[1] * (2 * self.num_relations) + directed_type
        count = scatter(torch.ones_like(confidence), bucket, dim=0,
                        dim_size=num_nodes * 2 * self.num_relations, reduce="sum")
        weight = confidence / count[bucket]
        projected = (x @ self.bases.view(self.in_channels, -1)).view(num_nodes, self.num_bases, self.out_channels)
        out = self.propagate(directed_index, x=projected, directed_type=directed_type, weight=weight,
                             size=(num_nodes, num_nodes))
        return out + self.root(x)

    def message(self, x_j: Tensor, directed_type: Tensor, weight: Tensor) -> Tensor:
        coefficient = self.coefficients.index_select(0, directed_type) * weight.unsqueeze(-1)  # [2E, B]
        # Sum the messages in float32: under autocast the einsum runs in half precision.
        return torch.einsum("eb,ebo->eo", coefficient, x_j).float()

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"num_relations={self.num_relations}, num_bases={self.num_bases})")
