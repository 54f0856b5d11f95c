"""Checks of a model's settings and graph inputs, shared by every model so that they fail alike.

Bad settings (they come from a run's configuration) raise :class:`~nsm.errors.NSMError`. A wrong
input tensor raises a ``ValueError`` naming the tensor, its shape and what was expected, instead
of an index error deep inside a layer or a silently wrong result: a shape or dtype, an
out-of-range id, NaN or infinite features, a confidence outside [0, 1], a ``batch`` that is not
the graph ids 0..B-1 in order, or an edge between two graphs. The value checks of all tensors
share one host sync.

``x`` and ``edge_attr`` must be float32: the data builds them so and the models' parameters are
float32 (autocast lowers precision inside the model, not in its inputs). A float64 ``x`` would
otherwise fail deep inside a layer; a model cast with ``.double()`` is not supported.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from nsm.errors import NSMError

# The task types, listed here only: both classify graphs (link prediction: the subgraph around a query triple).
TASK_TYPES = ("classification", "link_prediction")


def check_model_settings(task_type: str = "classification", dropout: float = 0.0, **sizes: int) -> None:
    """``sizes`` (``node_features=64``, ...) must be positive integers, ``task_type`` known, ``dropout`` in [0, 1)."""
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise NSMError(f"model {name} must be a positive integer, got {value!r}")
    if task_type not in TASK_TYPES:
        raise NSMError(f"unknown task_type {task_type!r}; choose one of {', '.join(TASK_TYPES)}")
    if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
        raise NSMError(f"model dropout must be in [0, 1), got {dropout!r}")


class GraphInputs(NamedTuple):
    edge_attr: Tensor  # [E] confidences (ones when none were given)
    batch: Tensor      # [N] graph of each node (zeros when none was given)
    num_graphs: int


def check_graph_inputs(x: Tensor, edge_index: Tensor, edge_type: Tensor, edge_attr: Tensor | None,
                       batch: Tensor | None, head_index: Tensor | None = None, tail_index: Tensor | None = None,
                       query_relation: Tensor | None = None, *, node_features: int,
                       num_relations: int) -> GraphInputs:
    """Validate the tensors of a model's ``forward`` and fill in ``edge_attr`` and ``batch``."""
    if x.dim() != 2 or x.size(1) != node_features:
        raise ValueError(f"x has shape {list(x.shape)}; expected [num_nodes, {node_features}] "
                         f"(the model was built with node_features={node_features})")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index has shape {list(edge_index.shape)}; expected [2, num_edges]")
    num_nodes, num_edges = x.size(0), edge_index.size(1)
    _check_shape("edge_type", edge_type, [num_edges], "one relation id per edge of edge_index")
    _check_shape("edge_attr", edge_attr, [num_edges], "one confidence per edge of edge_index")
    _check_shape("batch", batch, [num_nodes], "one graph id per node of x")
    for name, tensor in (("x", x), ("edge_attr", edge_attr)):
        if tensor is not None and tensor.dtype != torch.float32:
            raise ValueError(f"{name} has dtype {tensor.dtype}; expected torch.float32 (the models compute in "
                             f"float32, under autocast too: convert with .float())")
    given_batch, given_edge_attr = batch is not None, edge_attr is not None
    batch = batch if given_batch else torch.zeros(num_nodes, dtype=torch.long, device=x.device)
    edge_attr = edge_attr if given_edge_attr else torch.ones(num_edges, device=x.device)

    node_ids = f"node ids in [0, {num_nodes}) (rows of x)"
    relation_ids = f"relation ids in [0, {num_relations}) (num_relations={num_relations})"
    id_tensors = {"edge_index": (edge_index, num_nodes, node_ids), "edge_type": (edge_type, num_relations, relation_ids),
                  "batch": (batch, math.inf, "graph ids >= 0"), "head_index": (head_index, num_nodes, node_ids),
                  "tail_index": (tail_index, num_nodes, node_ids),
                  "query_relation": (query_relation, num_relations, relation_ids)}
    id_tensors = {name: spec for name, spec in id_tensors.items() if spec[0] is not None and spec[0].numel()}
    for name, (tensor, _, _) in id_tensors.items():
        if tensor.is_floating_point():
            raise ValueError(f"{name} has dtype {tensor.dtype}; expected integer ids (torch.long)")

    # The [min, max] of every value checked, read back in one host sync (float64 holds ids exactly).
    checked = {name: tensor for name, (tensor, _, _) in id_tensors.items()}
    if x.numel():
        checked["x"] = x
    if given_edge_attr and num_edges:
        checked["edge_attr"] = edge_attr
    if given_batch and num_nodes > 1:
        checked["batch steps"] = batch[1:] - batch[:-1]  # each in {0, 1}: sorted, no graph id skipped
    if given_batch and num_nodes and num_edges:
        # Clamped: edge_index is only known to be in range after the sync; its errors come first.
        edge_graphs = batch.index_select(0, edge_index.clamp(0, num_nodes - 1).view(-1)).view(2, -1)
        checked["edge graph offsets"] = edge_graphs[0] - edge_graphs[1]
    bounds = torch.stack([torch.stack(torch.aminmax(t)).double() for t in checked.values()]).tolist() if checked else []
    ranges = dict(zip(checked, bounds))

    for name, (tensor, limit, expected) in id_tensors.items():
        low, high = map(int, ranges[name])
        if low < 0 or high >= limit:
            raise ValueError(f"{name} (shape {list(tensor.shape)}) holds values in [{low}, {high}]; expected {expected}")
    first_graph, last_graph = map(int, ranges.get("batch", (0, 0)))
    down, up = ranges.get("batch steps", (0, 0))
    disorder = ("is not sorted" if down < 0 else f"skips graph ids: it starts at {first_graph}" if first_graph
                else f"skips graph ids: the ids of neighbouring nodes differ by up to {int(up)}" if up > 1 else None)
    if disorder:
        raise ValueError(f"batch (shape {list(batch.shape)}) {disorder}; expected the graph ids 0, 1, ..., "
                         f"num_graphs - 1 in order, each with at least one node (as a PyG Batch numbers them)")
    if ranges.get("edge graph offsets", [0, 0]) != [0, 0]:
        crossing = int((edge_graphs[0] != edge_graphs[1]).sum())
        raise ValueError(f"edge_index (shape {list(edge_index.shape)}) has {crossing} edges between different "
                         f"graphs (batch[src] != batch[dst]); expected every edge inside one graph of the batch")
    if not all(map(math.isfinite, ranges.get("x", ()))):
        raise ValueError(f"x (shape {list(x.shape)}) holds {int((~x.isfinite()).sum())} NaN or infinite values; "
                         f"expected finite node features")
    low, high = ranges.get("edge_attr", (0, 1))
    if not 0 <= low <= high <= 1:  # also when NaN, which compares false
        found = "NaN" if math.isnan(low) else f"values in [{low:g}, {high:g}]"
        raise ValueError(f"edge_attr (shape {list(edge_attr.shape)}) holds {found}; expected confidences in [0, 1]")
    num_graphs = last_graph + 1

    for name, tensor in (("head_index", head_index), ("tail_index", tail_index), ("query_relation", query_relation)):
        _check_shape(name, tensor, [num_graphs], "one per graph of the batch")
    return GraphInputs(edge_attr, batch, num_graphs)


def _check_shape(name: str, tensor: Tensor | None, expected: list[int], meaning: str) -> None:
    if tensor is not None and list(tensor.shape) != expected:
        raise ValueError(f"{name} has shape {list(tensor.shape)}; expected {expected} ({meaning})")
