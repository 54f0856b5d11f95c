"""The model's trace of a batch: its output in eval mode, and the nodes each abstract level kept.

A level's ``perm`` indexes the previous level's nodes; :func:`kept_node_ids` composes them down
to the input graph's node ids.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from nsm.training.batches import unpack_batch


@torch.no_grad()
def run_graphs(model: nn.Module, graphs: list[Data]) -> dict[str, Any]:
    """The model's output on one batch of ``graphs``, in eval mode."""
    model.eval()
    inputs, _ = unpack_batch(Batch.from_data_list(graphs), next(model.parameters()).device)
    return model(**inputs)


def kept_node_ids(levels: list[dict[str, Tensor]]) -> list[Tensor]:
    """Per abstract level, its kept nodes as node ids of the input graph, in the level's order."""
    kept, ids = [], None
    for level in levels:
        ids = level["perm"] if ids is None else ids[level["perm"]]
        kept.append(ids)
    return kept
