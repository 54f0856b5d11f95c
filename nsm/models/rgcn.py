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
scales a message instead of cancelling out.

All relations are handled at once, without a loop over them. :func:`group_by_relation` gives
each (target, relation, direction) that receives messages a *slot*. A slot's weighted sum
:math:`s = \sum_j c_{ji} h_j / |\mathcal{N}_i^{r,d}|` is one sparse product for all slots,
``S @ h`` with ``S`` ``[slots, N]`` in CSR; one batched matmul applies :math:`W_{r,d}` to the
slots, sorted by relation into tiles of :data:`TILE` rows (each relation's last tile padded with
empty slots); a second sparse product sums each node's slots. That is :math:`P \cdot C_{in}
\cdot C_{out}` multiply-adds on dense blocks for :math:`P \le 2E` slots; the textbook form,
projecting every node onto the :math:`B` bases and mixing them per message, moves a
:math:`[2E, B, C_{out}]` tensor through memory and trained 2× slower on this project's graphs.
The sparse products replace a gather, a product and a scatter-add each (1.8× faster for the
pair on a planning batch) and, on CPU, add in a fixed order: a result does not change between
runs.
The grouping, sparse matrices included, depends only on the edges, so the convolutions of one
level share it (``tiles=``). The confidences are data: no gradient flows back to them.

Rows that carry a gradient are gathered with ``index_select``, never ``w[index]`` (here and in
:mod:`~nsm.models.pooling`, :mod:`~nsm.models.readout`): on CPU with more than one thread the
backward of ``w[index]``, ``index_put_(accumulate=True)``, adds float32 rows by parallel atomics,
so where an index repeats (a relation with several tiles) the order of the sum, and its last bits,
change from run to run; the backward of ``index_select``, ``index_add_``, adds in index order.

Shapes: ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]``, ``edge_type`` ``[E]`` in
``[0, num_relations)``, ``edge_attr`` ``[E]`` (confidences, ``None`` = 1) → ``[N, out_channels]``.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch_geometric.nn.inits import glorot
from torch_geometric.utils import cumsum

# Once per process torch warns that sparse CSR tensors are a beta feature; this module depends on them.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)

# Rows per tile: large enough for efficient matmuls, small enough that padding stays cheap.
TILE = 32


class RelationTiles(NamedTuple):
    """A graph's directed messages, summed per (target, relation) and tiled by relation.

    ``gather`` sums the weighted messages into one slot per (target, relation) pair that receives
    messages; tile ``t`` holds slots ``[t·TILE, (t+1)·TILE)``, all of relation ``relation[t]``,
    and padding slots stay empty. ``scatter`` sums each node's slots. ``*_t``: the transposes, for
    the backward pass.
    """

    gather: Tensor     # CSR [T·TILE, N], entries c_ji / |N_i^{r,d}|
    gather_t: Tensor   # CSR [N, T·TILE]
    scatter: Tensor    # CSR [N, T·TILE], entries 1
    scatter_t: Tensor  # CSR [T·TILE, N]
    relation: Tensor   # [T] directed relation: r (subject → object) or R + r (object → subject)


def csr_matrix(rows: Tensor, cols: Tensor, values: Tensor, size: tuple[int, int]) -> Tensor:
    """The CSR matrix of entries already sorted by row (and within a row by column)."""
    # searchsorted, unlike bincount, needs no host sync for its output size.
    crow = torch.searchsorted(rows, torch.arange(size[0] + 1, device=rows.device))
    return torch.sparse_csr_tensor(crow, cols, values, size, check_invariants=False)


def csr_pair(rows: Tensor, cols: Tensor, values: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """The CSR matrix of the COO entries ``(rows, cols, values)`` and its transpose; repeated
    entries (a triple listed twice) are summed."""
    key, entry = torch.unique(rows * size[1] + cols, return_inverse=True)
    values = values.new_zeros(key.numel()).index_add_(0, entry, values)
    rows, cols = key // size[1], key % size[1]
    by_col = torch.argsort(cols * size[0] + rows)
    return (csr_matrix(rows, cols, values, size),
            csr_matrix(cols[by_col], rows[by_col], values[by_col], size[::-1]))


class SparseProduct(torch.autograd.Function):
    """``matrix @ dense`` for a constant sparse ``matrix``, in float32 (also under autocast, which
    has no half-precision sparse kernels on CPU); the backward is ``matrix_t @ grad``."""

    @staticmethod
    def forward(ctx, matrix: Tensor, matrix_t: Tensor, dense: Tensor) -> Tensor:
        ctx.matrix_t = matrix_t
        with torch.autocast(dense.device.type, enabled=False):
            return matrix @ dense.float()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:
        with torch.autocast(grad.device.type, enabled=False):
            return None, None, ctx.matrix_t @ grad.float()


def group_by_relation(edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor | None, num_nodes: int,
                      num_relations: int) -> RelationTiles:
    """Both directions of every edge, weighted, their (target, relation) pairs tiled by relation."""
    device = edge_index.device
    source = torch.cat([edge_index[0], edge_index[1]])
    target = torch.cat([edge_index[1], edge_index[0]])
    relation = torch.cat([edge_type, edge_type + num_relations])
    confidence = (edge_attr.float().repeat(2) if edge_attr is not None
                  else torch.ones(relation.numel(), device=device))
    # One pair per (relation, target), sorted by relation; |N_i^{r,d}| is the pair's message count.
    pair, message_pair = torch.unique(relation * num_nodes + target, return_inverse=True)
    weight = confidence / torch.bincount(message_pair, minlength=pair.numel())[message_pair]
    pair_relation, pair_target = pair // num_nodes, pair % num_nodes

    per_relation = torch.bincount(pair_relation, minlength=2 * num_relations)
    tiles_per_relation = (per_relation + TILE - 1) // TILE
    rank = torch.arange(pair.numel(), device=device) - cumsum(per_relation)[pair_relation]
    pair_slot = (cumsum(tiles_per_relation)[pair_relation] + rank // TILE) * TILE + rank % TILE
    # unique and repeat_interleave have data-dependent sizes: a host sync per level, not per convolution.
    tile_relation = torch.repeat_interleave(tiles_per_relation)  # [T]
    num_slots = tile_relation.numel() * TILE
    gather, gather_t = csr_pair(pair_slot[message_pair], source, weight, (num_slots, num_nodes))
    # Pairs are sorted by relation, then target, and their slots increase with them.
    by_target = torch.argsort(pair_target, stable=True)
    ones = torch.ones(pair.numel(), device=device)
    return RelationTiles(
        gather=gather,
        gather_t=gather_t,
        scatter=csr_matrix(pair_target[by_target], pair_slot[by_target], ones, (num_nodes, num_slots)),
        scatter_t=csr_matrix(pair_slot, pair_target, ones, (num_slots, num_nodes)),
        relation=tile_relation,
    )


class ConfidenceRGCNConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, num_relations: int, num_bases: int):
        super().__init__()
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
        glorot(self.bases.transpose(0, 1))  # each basis V_b as an [in, out] matrix
        glorot(self.coefficients)
        self.root.reset_parameters()

    def relation_weights(self) -> Tensor:
        r""":math:`W_{r,d} = \sum_b a_{(r,d),b} V_b`, ``[2R, in_channels, out_channels]``."""
        return torch.einsum("rb,ibo->rio", self.coefficients, self.bases)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor | None = None,
                tiles: RelationTiles | None = None) -> Tensor:
        """``tiles``: these edges already grouped by :func:`group_by_relation`, to reuse the grouping."""
        if tiles is None:
            tiles = group_by_relation(edge_index, edge_type, edge_attr, x.size(0), self.num_relations)
        summed = SparseProduct.apply(tiles.gather, tiles.gather_t, x)  # [T·TILE, in]
        # index_select, not [tiles.relation]: a deterministic backward (see the module docstring).
        weights = self.relation_weights().index_select(0, tiles.relation)  # [T, in, out]
        transformed = torch.bmm(summed.view(-1, TILE, self.in_channels), weights)
        # Under autocast the matmul runs in half precision; the sums into the targets in float32.
        out = SparseProduct.apply(tiles.scatter, tiles.scatter_t, transformed.view(-1, self.out_channels))
        return out + self.root(x)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"num_relations={self.num_relations}, num_bases={self.num_bases})")
