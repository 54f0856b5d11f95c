r"""Is the hierarchy's choice of nodes faithful? Mask them and see how much the prediction moves.

For a sample the model classifies correctly, let :math:`S` be the nodes kept at the most
abstract level (L3), named by their input node ids. *Masking* a node set zeroes those nodes'
features and removes every edge that touches them (node ids stay, so a query's head and tail
keep their meaning): the nodes remain, but carry nothing. The output change is the total
variation distance between the class probabilities before and after,
:math:`\tfrac12 \lVert p - p' \rVert_1` (for two classes, the shift of either probability).

:func:`masking_effect` compares masking :math:`S` with masking :math:`|S|` nodes drawn uniformly
at random (without replacement, from all the sample's nodes) ``draws`` times. If the kept nodes
are the ones the decision rests on, masking them moves the output more than random masking does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch_geometric.data import Data

from nsm.analysis.trace import kept_node_ids, run_graphs
from nsm.data.base import TripleDataset
from nsm.errors import NSMError


def mask_nodes(graph: Data, nodes: torch.Tensor) -> Data:
    """A copy of ``graph`` with ``nodes`` masked: zero features, no incident edges, same node ids."""
    touched = torch.isin(graph.edge_index, nodes).any(dim=0)
    masked = graph.edge_subgraph((~touched).nonzero().view(-1))  # filters every per-edge tensor
    masked.x = graph.x.clone()
    masked.x[nodes] = 0
    return masked


def masking_effect(model: nn.Module, dataset: TripleDataset, draws: int = 10, seed: int = 0) -> dict[str, Any]:
    """Mean output change over the correctly classified samples of ``dataset`` when their L3-kept
    nodes are masked (``kept_change``) and when as many random nodes are (``random_change``)."""
    generator = torch.Generator().manual_seed(seed)
    kept_changes, random_changes, masked_counts = [], [], []
    for graph, label in zip(dataset.graphs, dataset.labels):
        output = run_graphs(model, [graph])
        if not output["levels"]:
            raise NSMError("the model has no hierarchy, so no kept nodes to mask")
        probabilities = output["logits"].float().softmax(-1)
        if probabilities.argmax().item() != label:
            continue
        kept = kept_node_ids(output["levels"])[-1].cpu()
        random_sets = [torch.randperm(graph.num_nodes, generator=generator)[:kept.numel()] for _ in range(draws)]
        masked = run_graphs(model, [mask_nodes(graph, nodes) for nodes in (kept, *random_sets)])
        change = 0.5 * (masked["logits"].float().softmax(-1) - probabilities).abs().sum(-1)
        kept_changes.append(change[0].item())
        random_changes.append(change[1:].mean().item())
        masked_counts.append(kept.numel())
    if not kept_changes:
        raise NSMError("the model classifies no sample of this split correctly: nothing to measure")
    count = len(kept_changes)
    return {"samples": count, "of": len(dataset), "draws": draws, "nodes_masked": sum(masked_counts) / count,
            "kept_change": sum(kept_changes) / count, "random_change": sum(random_changes) / count}
