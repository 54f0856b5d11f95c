"""From whatever a loader yields to the model's keyword arguments and the labels, on the device.

Three shapes of batch are accepted:

* a PyG ``Batch`` (or a single ``Data``) whose ``y`` holds the labels;
* a pair ``(Batch, labels)``: what PyG's ``DataLoader`` yields over our datasets, whose items are
  ``(Data, label [1])``, so ``labels`` arrive ``[B, 1]``;
* the seed's dict ``{'x', 'edge_index', 'edge_type', 'edge_attr', 'batch', 'y'}``.

Labels always come out flat, ``[B]``.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch_geometric.data import Data

GRAPH_KEYS = ("x", "edge_index", "edge_type", "edge_attr", "batch")
# Link prediction's query; PyG shifts *_index by each graph's node offset when it batches.
QUERY_KEYS = ("head_index", "tail_index", "query_relation")


def unpack_batch(batch: Any, device: torch.device | str) -> tuple[dict[str, torch.Tensor | None], torch.Tensor]:
    """``(model_kwargs, labels)`` for one batch, moved to ``device``.

    ``model_kwargs`` has ``x [N, F]``, ``edge_index [2, E]``, ``edge_type [E]``, ``edge_attr [E]``
    (or ``None``), ``batch [N]`` and, when the batch has them, ``head_index``, ``tail_index``,
    ``query_relation`` (each ``[B]``); ``labels`` is ``[B]``.
    """
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[0], Data):
        graphs, labels = batch
        fields = graphs.to_dict()
    elif isinstance(batch, Data):
        fields = batch.to_dict()
        labels = fields.get("y")
    elif isinstance(batch, Mapping):
        fields = batch
        labels = fields.get("y")
    else:
        raise TypeError(
            f"cannot read a batch of type {type(batch).__name__}; expected a PyG Batch, "
            "a (Batch, labels) pair or a dict with x, edge_index, edge_type, edge_attr, batch, y"
        )
    missing = [key for key in ("x", "edge_index", "edge_type") if fields.get(key) is None]
    if labels is None:
        missing.append("y (labels)")
    if missing:
        raise KeyError(f"batch lacks {', '.join(missing)}; it has {', '.join(sorted(fields))}")

    if fields.get("batch") is None:  # a single graph
        fields = dict(fields, batch=torch.zeros(fields["x"].size(0), dtype=torch.long))
    model_kwargs = {key: _to(fields.get(key), device) for key in GRAPH_KEYS}
    model_kwargs.update({key: _to(fields[key], device) for key in QUERY_KEYS if fields.get(key) is not None})
    return model_kwargs, _to(torch.as_tensor(labels), device).view(-1)


def batch_node_types(batch: Any, device: torch.device | str) -> torch.Tensor | None:
    """The batch's ``node_type`` ``[N]`` on ``device``, or ``None`` when it has none (the seed's dict form may not)."""
    graphs = batch[0] if isinstance(batch, (tuple, list)) else batch
    node_type = graphs.get("node_type") if isinstance(graphs, Mapping) else getattr(graphs, "node_type", None)
    return _to(node_type, device)


def _to(tensor: torch.Tensor | None, device: torch.device | str) -> torch.Tensor | None:
    # non_blocking overlaps the copy with compute when the loader pins memory.
    return None if tensor is None else tensor.to(device, non_blocking=True)
