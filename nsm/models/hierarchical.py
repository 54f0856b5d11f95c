r"""The hierarchical NSM: concrete facts (L1) → mechanisms (L2) → goals (L3) and back.

The concrete level first reasons over its own graph with ``concrete_convs`` relational
convolutions, the first :math:`h = \mathrm{ReLU}(\mathrm{RGCN}(x))`, the others residual,
:math:`h \leftarrow h + \mathrm{ReLU}(\mathrm{RGCN}(h))`: a decision often rests on a node that
pooling drops, so its evidence must first reach the nodes that are kept. Between two levels a
:class:`SymmetricHierarchicalLayer` abstracts and reconstructs:

.. math::
    \mathrm{WHY}(h) = \mathrm{pool}(f(h)), \qquad \mathrm{WHAT}(a) = f^{-1}(\mathrm{unpool}(a)),

with :math:`f` an invertible coupling stack. An abstract node then also absorbs the dropped
neighbours it stands for, :math:`a_k + \max_{j \text{ dropped}} c_{kj} h_j`
(:func:`~nsm.models.pooling.absorb_dropped`), and reasons over the abstract graph with one
residual convolution, :math:`h_{l+1} = \mathrm{LayerNorm}(a' + \mathrm{ReLU}(\mathrm{RGCN}_{l+1}(a')))`:
so the most abstract level summarises the whole graph, and every node keeps its concrete
embedding. The normalisation keeps the levels on one scale: without it the features grew 5-15×
per level (the coupling and gate, the absorbed maxima and the residual convolution each add to
them), and the summed readout heard little but the most abstract level.

WHAT(WHY(h)) returns the kept nodes exactly and predicts the dropped ones from their
neighbourhood; its normalised error :math:`\|\hat h_l - h_l\| / \|h_l\|` is the level's
reconstruction error, and the cycle loss weighs them ``0.7·L1 + 0.3·L2`` (3 levels) or ``1·L1``
(2 levels). The target :math:`h_l` is held fixed (detached) in that loss: it asks the abstraction
to explain the concrete level, not the concrete features to become easy to explain — left free,
they collapse towards one shared vector that reconstructs perfectly and carries nothing. The
graph is read out from every level, the readouts summed (:class:`~nsm.models.readout.GraphHead`),
or with ``readout="top"`` from the most abstract level alone, so that the prediction rests on the
nodes WHY kept (and what they absorbed); for link prediction also from the L1 embeddings of the
query's ends.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nsm.config import READOUTS
from nsm.errors import NSMError
from nsm.models.coupling import CouplingStack
from nsm.models.inputs import check_graph_inputs, check_model_settings
from nsm.models.pooling import PooledGraph, WhatUnpooling, WhyPooling, absorb_dropped
from nsm.models.readout import GraphHead
from nsm.models.rgcn import ConfidenceRGCNConv, RelationTiles, group_by_relation

CYCLE_WEIGHTS = {2: (1.0,), 3: (0.7, 0.3)}


class SymmetricHierarchicalLayer(nn.Module):
    """WHY (abstraction) and WHAT (its inverse up to the dropped nodes) between two levels."""

    def __init__(self, channels: int, num_relations: int, num_bases: int, pool_ratio: float,
                 coupling_layers: int = 2):
        super().__init__()
        self.coupling = CouplingStack(channels, coupling_layers)
        self.pool = WhyPooling(channels, num_relations, num_bases, pool_ratio)
        self.unpool = WhatUnpooling(channels, num_relations, num_bases)

    def why(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor, batch: Tensor,
            temperature: float, tiles: RelationTiles | None = None) -> PooledGraph:
        """``x`` ``[N, C]`` → the abstract level (``PooledGraph.x`` ``[K, C]``)."""
        return self.pool(self.coupling(x), edge_index, edge_type, edge_attr, batch, temperature, tiles)

    def what(self, pooled: PooledGraph, edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor,
             num_nodes: int, tiles: RelationTiles | None = None) -> Tensor:
        """The abstract level → ``[num_nodes, C]`` features of the concrete level it came from."""
        return self.coupling.inverse(self.unpool(pooled, edge_index, edge_type, edge_attr, num_nodes, tiles))

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor, batch: Tensor,
                temperature: float, tiles: RelationTiles | None = None) -> tuple[PooledGraph, Tensor]:
        """WHY and WHAT(WHY(x)): the abstract level and the reconstruction of ``x``. ``tiles``: the
        concrete edges grouped by :func:`~nsm.models.rgcn.group_by_relation`, shared by the convolutions."""
        pooled = self.why(x, edge_index, edge_type, edge_attr, batch, temperature, tiles)
        return pooled, self.what(pooled, edge_index, edge_type, edge_attr, x.size(0), tiles)


def relative_error(reconstruction: Tensor, target: Tensor) -> Tensor:
    """‖x̂ − x‖ / ‖x‖ over all entries (Frobenius), in float32."""
    target = target.float()
    return (reconstruction.float() - target).norm() / target.norm().clamp_min(1e-12)


class NSMModel(nn.Module):
    """The 2- or 3-level NSM (see the module docstring).

    ``forward`` returns ``logits`` ``[num_graphs, num_classes]``, ``cycle_loss`` (scalar),
    ``recon_error_l1`` (and ``recon_error_l2`` for 3 levels) and ``levels``: per abstract level
    (L2, then L3) a dict of ``perm``, ``score``, ``edge_index``, ``edge_type``, ``edge_attr`` and
    ``batch`` (see :class:`~nsm.models.pooling.PooledGraph`); ``reconstruction``: per abstract
    level the ``target`` ``[N_l, C]`` (the features of the level it abstracts) and WHAT's
    ``predicted`` ``[N_l, C]``. ``temperature`` is the τ of the
    soft ⊕ that merges parallel paths into abstract edges. ``hidden`` is the width of every level
    (the first convolution maps ``node_features`` to it); the domains use the default. ``readout``
    is one of :data:`nsm.config.READOUTS` (see the module docstring).
    """

    def __init__(self, node_features: int, num_relations: int, num_classes: int = 2, num_bases: int = 8,
                 pool_ratio: float = 0.5, task_type: str = "classification", num_levels: int = 3,
                 hidden: int = 48, dropout: float = 0.0, temperature: float = 1.0,
                 concrete_convs: int = 3, readout: str = "all"):
        super().__init__()
        check_model_settings(task_type, dropout, node_features=node_features, num_relations=num_relations,
                             num_classes=num_classes, num_bases=num_bases, hidden=hidden,
                             concrete_convs=concrete_convs)
        if hidden < 2:
            raise NSMError(f"model hidden must be at least 2 (the coupling splits it in two), got {hidden}")
        if not (isinstance(pool_ratio, float) and 0 < pool_ratio < 1):
            raise NSMError(f"model pool_ratio must be a fraction in (0, 1), got {pool_ratio!r}")
        if num_levels not in CYCLE_WEIGHTS:
            raise NSMError(f"model num_levels must be one of {', '.join(map(str, CYCLE_WEIGHTS))}, got {num_levels!r}")
        if readout not in READOUTS:
            raise NSMError(f"model readout must be one of {', '.join(READOUTS)}, got {readout!r}")
        self.node_features = node_features
        self.num_relations = num_relations
        self.num_levels = num_levels
        self.readout = readout
        self.temperature = temperature
        self.concrete_convs = nn.ModuleList(
            ConfidenceRGCNConv(node_features if i == 0 else hidden, hidden, num_relations, num_bases)
            for i in range(concrete_convs))
        self.abstract_convs = nn.ModuleList(
            ConfidenceRGCNConv(hidden, hidden, num_relations, num_bases) for _ in range(num_levels - 1))
        self.abstract_norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(num_levels - 1))
        self.hierarchy = nn.ModuleList(
            SymmetricHierarchicalLayer(hidden, num_relations, num_bases, pool_ratio) for _ in range(num_levels - 1))
        self.dropout = nn.Dropout(dropout)
        self.head = GraphHead(hidden, num_classes, task_type, num_relations, dropout)

    def reconstruction_parameters(self) -> list[nn.Parameter]:
        """The parameters that only the cycle loss trains: WHAT's unpooling networks."""
        return [parameter for layer in self.hierarchy for parameter in layer.unpool.parameters()]

    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"temperature must be a positive number, got {value!r}")
        self._temperature = float(value)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, head_index: Tensor | None = None, tail_index: Tensor | None = None,
                query_relation: Tensor | None = None) -> dict:
        edge_attr, batch, num_graphs = check_graph_inputs(
            x, edge_index, edge_type, edge_attr, batch, head_index, tail_index, query_relation,
            node_features=self.node_features, num_relations=self.num_relations)
        h = x
        # Every convolution of a level reads the same edges: group them once per level.
        tiles = group_by_relation(edge_index, edge_type, edge_attr, x.size(0), self.num_relations)
        for i, conv in enumerate(self.concrete_convs):
            update = self.dropout(torch.relu(conv(h, edge_index, edge_type, edge_attr, tiles)))
            h = update if i == 0 else h + update
        concrete_embedding = h
        out: dict = {"levels": [], "reconstruction": []}
        readout_levels = [(h, batch)]
        cycle_loss = h.new_zeros((), dtype=torch.float32)
        for level, (layer, conv, norm) in enumerate(zip(self.hierarchy, self.abstract_convs, self.abstract_norms),
                                                    start=1):
            pooled, reconstruction = layer(h, edge_index, edge_type, edge_attr, batch, self.temperature, tiles)
            error = relative_error(reconstruction, h.detach())
            out[f"recon_error_l{level}"] = error
            out["reconstruction"].append({"target": h, "predicted": reconstruction})
            cycle_loss = cycle_loss + CYCLE_WEIGHTS[self.num_levels][level - 1] * error
            out["levels"].append({name: value for name, value in pooled._asdict().items() if name != "x"})
            abstract = pooled.x + absorb_dropped(h, edge_index, edge_attr, pooled.perm)
            edge_index, edge_type, edge_attr, batch = pooled.edge_index, pooled.edge_type, pooled.edge_attr, pooled.batch
            tiles = group_by_relation(edge_index, edge_type, edge_attr, abstract.size(0), self.num_relations)
            h = norm(abstract + self.dropout(torch.relu(conv(abstract, edge_index, edge_type, edge_attr, tiles))))
            readout_levels.append((h, batch))
        if self.readout == "top":
            readout_levels = readout_levels[-1:]
        out["logits"] = self.head(readout_levels, num_graphs, concrete_embedding, head_index, tail_index, query_relation)
        out["cycle_loss"] = cycle_loss
        return out
