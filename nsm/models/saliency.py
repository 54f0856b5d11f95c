r"""Saliency-aligned pooling: a training loss that makes WHY keep the nodes the prediction rests on.

An explanation is faithful when taking it away changes the prediction (fidelity+,
:mod:`nsm.analysis.fidelity`: the set's features zeroed). To first order, zeroing node
:math:`i`'s features :math:`x_i` moves the margin :math:`m` of the predicted class (its logit
minus the best other one) by :math:`-a_i`, with the attribution (gradient × input)

.. math::
    a_i = x_i \cdot \nabla_{x_i} m .

At each abstract level :math:`l` the scorer's logits :math:`z_l` (before the tanh, one per node of
the level's input) are taught, per graph, to rank first the nodes of highest attribution, as many
as the level keeps:

.. math::
    \mathcal{L} = \sum_l \mathrm{BCE}\big(z_l,\ \mathbb{1}[\,i \in \mathrm{top}_{k_l}(a)\,]\big),

where a level-2 node's attribution is that of the concrete node it is (the kept nodes are
concrete nodes, composed through each level's ``perm``). The loss trains the scorers alone: the
attribution is a fixed target (detached), and :math:`z_l` is the scorer recomputed on the level's
input with that input detached (the same values as the model's own scores). Left to reach the
convolutions below the scorers, it stalled planning at chance for a whole run (dev, training
seed 1, weight 1, 2026-12-03); and nothing in it teaches the model to react to a masked input.
It costs one more backward pass of the batch for :math:`\nabla_x m`, and one scorer convolution
a level.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch_geometric.utils import cumsum, degree


def attribution(x: Tensor, logits: Tensor) -> Tensor:
    """``[N]`` gradient × input of each node of ``x`` ``[N, F]`` (which must require grad) for
    the margin of each graph's predicted class in ``logits`` ``[B, C]``; detached.

    One logit per graph (a binary task) has the margin :math:`|z|`."""
    logits = logits.float()
    if logits.size(-1) == 1:
        margin = logits.view(-1).abs()
    else:
        best, runner_up = logits.topk(2, dim=-1).values.unbind(-1)
        margin = best - runner_up
    grad, = torch.autograd.grad(margin.sum(), x, retain_graph=True)
    return (grad.float() * x.float()).sum(-1).detach()


def top_per_graph(values: Tensor, batch: Tensor, counts: Tensor) -> Tensor:
    """``[N]`` bool: per graph ``g`` (``batch`` ``[N]``), its ``counts[g]`` nodes of highest ``values``."""
    order = values.argsort(descending=True, stable=True)
    order = order[batch[order].argsort(stable=True)]  # by graph, each graph's nodes by decreasing value
    graph = batch[order]
    first_of_graph = cumsum(degree(batch, counts.numel(), dtype=torch.long))
    rank = torch.arange(values.numel(), device=values.device) - first_of_graph[graph]
    selected = torch.zeros_like(values, dtype=torch.bool)
    selected[order[rank < counts[graph]]] = True
    return selected


def saliency_pooling_loss(model: nn.Module, inputs: dict[str, Tensor | None], out: dict) -> Tensor:
    """The module's :math:`\\mathcal{L}` (float32 scalar) of one batch for an
    :class:`~nsm.models.hierarchical.NSMModel` ``model``: ``inputs`` its keyword arguments (``x``
    requiring grad), ``out`` its output."""
    x, batch = inputs["x"], inputs["batch"]
    edge_attr = inputs.get("edge_attr")
    edges = (inputs["edge_index"], inputs["edge_type"],
             torch.ones(inputs["edge_type"].numel(), device=x.device) if edge_attr is None else edge_attr)
    node_attribution = attribution(x, out["logits"])
    num_graphs = out["logits"].size(0)
    loss = out["logits"].new_zeros((), dtype=torch.float32)
    for layer, level, reconstruction in zip(model.hierarchy, out["levels"], out["reconstruction"]):
        with torch.no_grad():  # the scorer's input, as WHY computed it (the coupling of the level's features)
            scorer_input = layer.coupling(reconstruction["target"])
        logits = layer.pool.score(scorer_input, *edges).view(-1)
        target = top_per_graph(node_attribution, batch, degree(level["batch"], num_graphs, dtype=torch.long))
        loss = loss + F.binary_cross_entropy_with_logits(logits.float(), target.float())
        node_attribution, batch = node_attribution[level["perm"]], level["batch"]
        edges = (level["edge_index"], level["edge_type"], level["edge_attr"])
    return loss
