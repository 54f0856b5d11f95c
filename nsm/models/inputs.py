"""Checks of a model's settings and graph inputs, shared by every model so that they fail alike.

Bad settings (they come from a run's configuration) raise :class:`~nsm.errors.NSMError`. A wrong
input tensor — shape, dtype or an out-of-range id — raises a ``ValueError`` naming the tensor,
its shape and what was expected, instead of an index error deep inside a layer; the range
checks of all tensors share one host sync.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from nsm.errors import NSMError

TASK_TYPES = ("classification", "link_prediction", "regression")


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
    batch = batch if batch is not None else torch.zeros(num_nodes, dtype=torch.long, device=x.device)
    edge_attr = edge_attr if edge_attr is not None else torch.ones(num_edges, device=x.device)

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
    bounds = torch.stack([torch.stack(torch.aminmax(t)) for t, _, _ in id_tensors.values()]).tolist() if id_tensors else []
    for (name, (tensor, limit, expected)), (low, high) in zip(id_tensors.items(), bounds):
        if low < 0 or high >= limit:
            raise ValueError(f"{name} (shape {list(tensor.shape)}) holds values in [{low}, {high}]; expected {expected}")
    num_graphs = bounds[list(id_tensors).index("batch")][1] + 1 if "batch" in id_tensors else 1

    for name, tensor in (("head_index", head_index), ("tail_index", tail_index), ("query_relation", query_relation)):
        _check_shape(name, tensor, [num_graphs], "one per graph of the batch")
    return GraphInputs(edge_attr, batch, num_graphs)


def _check_shape(name: str, tensor: Tensor | None, expected: list[int], meaning: str) -> None:
    if tensor is not None and list(tensor.shape) != expected:
        raise ValueError(f"{name} has shape {list(tensor.shape)}; expected {expected} ({meaning})")
