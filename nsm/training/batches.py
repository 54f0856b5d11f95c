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
    fields, labels = batch_fields(batch)
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


def batch_fields(batch: Any) -> tuple[Mapping[str, Any], Any]:
    """``(fields, labels)`` of a batch of any of the three shapes (the module docstring); the
    labels as given (``None`` if there are none)."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[0], Data):
        graphs, labels = batch
        return graphs.to_dict(), labels
    if isinstance(batch, Data):
        fields = batch.to_dict()
        return fields, fields.get("y")
    if isinstance(batch, Mapping):
        return batch, batch.get("y")
    raise TypeError(
        f"cannot read a batch of type {type(batch).__name__}; expected a PyG Batch, "
        "a (Batch, labels) pair or a dict with x, edge_index, edge_type, edge_attr, batch, y"
    )


def batch_node_types(batch: Any, device: torch.device | str) -> torch.Tensor | None:
    """The batch's ``node_type`` ``[N]`` on ``device``, or ``None`` when it has none (the seed's dict form may not)."""
    return _to(batch_fields(batch)[0].get("node_type"), device)


def _to(tensor: torch.Tensor | None, device: torch.device | str) -> torch.Tensor | None:
    # non_blocking overlaps the copy with compute when the loader pins memory.
    return None if tensor is None else tensor.to(device, non_blocking=True)
