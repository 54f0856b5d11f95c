r"""WHY pooling (concrete → abstract) and WHAT unpooling (abstract → concrete).

**WHY** scores every node with a relational graph convolution, :math:`y = \tanh(\mathrm{RGCN}(X))`
(SAGPool, Lee et al. 2019), keeps the :math:`\lceil \text{ratio} \cdot n \rceil` best nodes of each
graph (at least one) and gates them, :math:`X' = X_{\text{kept}} \odot \exp(y_{\text{kept}})`: the
gate lets the scores learn from the loss, and being positive and bounded it can be divided out
exactly by WHAT. The abstract graph's edges are built by :func:`coarsen_edges`.

**WHAT** puts the kept nodes' features back at their positions (gate removed, so they are exact)
and predicts every dropped node from its concrete-level neighbourhood with relational
convolutions (two by default, ReLU between) over ``[placed features | kept | dropped]``: a kept
neighbour contributes its features, a dropped one a learned vector of the relation that links
them, and each further convolution reaches one hop further, so the second reaches dropped nodes
whose nearest kept node is two hops away.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch_geometric.nn.pool.select.topk import topk
from torch_geometric.utils import cumsum, degree, scatter

from nsm.models.confidence.semiring import otimes, soft_oplus
from nsm.models.rgcn import ConfidenceRGCNConv, RelationTiles


class PooledGraph(NamedTuple):
    """The abstract level WHY produces; ``perm`` and ``score`` index the previous level's nodes."""

    x: Tensor           # [K, C] gated features of the kept nodes
    edge_index: Tensor  # [2, E'] into the K kept nodes
    edge_type: Tensor   # [E'] relation ids of the data's vocabulary
    edge_attr: Tensor   # [E'] semiring confidences
    batch: Tensor       # [K]
    perm: Tensor        # [K] kept nodes, per graph by decreasing score
    score: Tensor       # [K] their scores in (-1, 1)


def coarsen_edges(edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor, perm: Tensor, num_nodes: int,
                  num_relations: int, temperature: float) -> tuple[Tensor, Tensor, Tensor]:
    r"""The edges among the kept nodes ``perm``: direct ones, and 2-hop ones through a dropped node.

    * an edge between two kept nodes is kept as it is;
    * a path :math:`i \xrightarrow{r_1} m \xrightarrow{r_2} j` with :math:`m` dropped and
      :math:`i \ne j` kept becomes :math:`i \xrightarrow{r_1} j` with confidence
      :math:`c_{im} \otimes c_{mj}`: the subject keeps the relation it asserted, so abstract
      relations are the data's own and a kept node's outgoing relations survive pooling;
    * edges and paths giving the same ``(i, r, j)`` are merged into one edge by :math:`\oplus_\tau`.

    Returns ``edge_index`` ``[2, E']`` (renumbered to positions in ``perm``), ``edge_type`` ``[E']``
    and ``edge_attr`` ``[E']``, sorted by ``(i, j, r)``.
    """
    kept = torch.zeros(num_nodes, dtype=torch.bool, device=perm.device).index_fill_(0, perm, True)
    src, dst = edge_index
    kept_src, kept_dst = kept[src], kept[dst]
    direct = (kept_src & kept_dst).nonzero().view(-1)

    # Join the hops into a dropped node with the hops out of it, on that node (a sort-merge join).
    first = (kept_src & ~kept_dst).nonzero().view(-1)
    second = (~kept_src & kept_dst).nonzero().view(-1)
    second = second[src[second].argsort(stable=True)]
    out_degree = degree(src[second], num_nodes, dtype=torch.long)
    paths_per_first = out_degree[dst[first]]
    path_first = first.repeat_interleave(paths_per_first)
    rank = torch.arange(path_first.numel(), device=perm.device) - cumsum(paths_per_first)[:-1].repeat_interleave(
        paths_per_first)
    path_second = second[cumsum(out_degree)[dst[path_first]] + rank]
    not_loop = src[path_first] != dst[path_second]
    path_first, path_second = path_first[not_loop], path_second[not_loop]

    new_src = torch.cat([src[direct], src[path_first]])
    new_dst = torch.cat([dst[direct], dst[path_second]])
    new_type = torch.cat([edge_type[direct], edge_type[path_first]])
    confidence = torch.cat([edge_attr[direct], otimes(edge_attr[path_first], edge_attr[path_second])])

    num_kept = perm.numel()
    position = torch.empty(num_nodes, dtype=torch.long, device=perm.device)
    position[perm] = torch.arange(num_kept, device=perm.device)
    key = (position[new_src] * num_kept + position[new_dst]) * num_relations + new_type
    key, group = torch.unique(key, return_inverse=True)
    confidence = soft_oplus(confidence, group, key.numel(), temperature)
    pair = key // num_relations
    return torch.stack([pair // num_kept, pair % num_kept]), key % num_relations, confidence


class WhyPooling(nn.Module):
    """Score, keep the top ``ratio`` of each graph's nodes, gate them, coarsen the edges."""

    def __init__(self, channels: int, num_relations: int, num_bases: int, ratio: float):
        super().__init__()
        self.ratio = ratio
        self.num_relations = num_relations
        self.score = ConfidenceRGCNConv(channels, 1, num_relations, num_bases)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor, batch: Tensor,
                temperature: float, tiles: RelationTiles | None = None) -> PooledGraph:
        score = torch.tanh(self.score(x, edge_index, edge_type, edge_attr, tiles).view(-1))
        perm = topk(score, self.ratio, batch)
        kept_score = score.index_select(0, perm)  # index_select: see nsm.models.rgcn
        abstract_edges = coarsen_edges(edge_index, edge_type, edge_attr, perm, x.size(0), self.num_relations,
                                       temperature)
        return PooledGraph(x.index_select(0, perm) * kept_score.exp().unsqueeze(-1), *abstract_edges, batch[perm],
                           perm, kept_score)


class WhatUnpooling(nn.Module):
    """Abstract features ``[K, C]`` back to all ``N`` concrete nodes ``[N, C]`` (see the module docstring).

    ``convs`` (at least 2) convolutions of width ``hidden`` (default ``C``): one spreads the kept
    features, ``convs - 2`` residual ones reach a hop further each, the last predicts.
    """

    def __init__(self, channels: int, num_relations: int, num_bases: int, hidden: int | None = None,
                 convs: int = 2):
        super().__init__()
        if convs < 2:
            raise ValueError(f"WHAT needs at least 2 convolutions, got {convs}")
        hidden = hidden or channels
        self.spread = ConfidenceRGCNConv(channels + 2, hidden, num_relations, num_bases)
        self.reach = nn.ModuleList(
            ConfidenceRGCNConv(hidden, hidden, num_relations, num_bases) for _ in range(convs - 2))
        self.predict = ConfidenceRGCNConv(hidden, channels, num_relations, num_bases)

    def forward(self, pooled: PooledGraph, edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor,
                num_nodes: int, tiles: RelationTiles | None = None) -> Tensor:
        kept_x = pooled.x * (-pooled.score).exp().unsqueeze(-1)
        placed = kept_x.new_zeros(num_nodes, kept_x.size(-1)).index_copy(0, pooled.perm, kept_x)
        kept = torch.zeros(num_nodes, dtype=torch.long, device=placed.device).index_fill_(0, pooled.perm, 1)
        status = nn.functional.one_hot(kept, 2).to(placed.dtype)  # [dropped, kept]
        h = torch.relu(self.spread(torch.cat([placed, status], dim=-1), edge_index, edge_type, edge_attr, tiles))
        for conv in self.reach:
            h = h + torch.relu(conv(h, edge_index, edge_type, edge_attr, tiles))
        predicted = self.predict(h, edge_index, edge_type, edge_attr, tiles)
        return torch.where(kept.bool().unsqueeze(-1), placed, predicted)


def absorb_dropped(x: Tensor, edge_index: Tensor, edge_attr: Tensor, perm: Tensor) -> Tensor:
    r"""What each kept node absorbs of its dropped neighbours: :math:`\max_j c_{ij} x_j` (per channel).

    The maximum runs over the dropped nodes ``j`` linked to kept node ``i`` by an edge in either
    direction (``c_ij`` its confidence); a kept node without dropped neighbours absorbs zeros. A
    maximum, not a mean, so that one telling neighbour is not averaged away (as the graph readout's
    max would not). ``x`` ``[N, C]``, ``perm`` ``[K]`` → ``[K, C]``, row ``k`` for node ``perm[k]``.
    """
    num_nodes = x.size(0)
    position = torch.full((num_nodes,), -1, dtype=torch.long, device=x.device)
    position[perm] = torch.arange(perm.numel(), device=x.device)
    source = torch.cat([edge_index[0], edge_index[1]])
    target = torch.cat([edge_index[1], edge_index[0]])
    into_kept = (position[source] < 0) & (position[target] >= 0)
    source, target = source[into_kept], position[target[into_kept]]
    confidence = edge_attr.repeat(2)[into_kept].unsqueeze(-1)
    # index_select, not x[source]: a source repeats, and only index_select's backward sums it in a fixed
    # order (see nsm.models.rgcn).
    return scatter(confidence * x.index_select(0, source), target, dim=0, dim_size=perm.numel(), reduce="max")
