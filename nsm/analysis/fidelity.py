r"""Fidelity of a node set, the field's measure of an explanation (issue 21), with ``torch_geometric.explain``.

For a graph :math:`G`, the model's prediction :math:`\hat y` and a node set :math:`S`
(GraphFramEx, Amara et al. 2022; PyG's :func:`~torch_geometric.explain.metric.fidelity`, model
explanations):

.. math::
    \mathrm{fid}_+ = 1 - \mathbb{1}(\hat y^{G \setminus S} = \hat y), \qquad
    \mathrm{fid}_- = 1 - \mathbb{1}(\hat y^{G_S} = \hat y),

where :math:`G \setminus S` zeroes the features of :math:`S` and :math:`G_S` those of every other
node (PyG's node mask, ``node_mask_type="object"``: the edges stay). A set the prediction rests
on has a high fid+ (taking it away changes the prediction) and a low fid− (it alone keeps the
prediction). Averaged over samples they are shares of samples. Beside them, per sample, the
probability of the predicted class on :math:`G`, without :math:`S` and with :math:`S` alone.

The sets compared (:func:`fidelity_table`): the nodes kept at the most abstract level (L3), the
whole trace (the nodes kept at any abstract level: L2's, which hold L3's), as many random nodes
(``draws`` sets) and as many nodes ranked highest by PyG's :class:`~torch_geometric.explain.algorithm.GNNExplainer`
on the same model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.explain import Explainer, ExplainerAlgorithm, Explanation
from torch_geometric.explain.algorithm import GNNExplainer
from torch_geometric.explain.metric import fidelity

from nsm.analysis.trace import kept_node_ids, run_graphs
from nsm.data.base import TripleDataset
from nsm.errors import NSMError
from nsm.training.batches import GRAPH_KEYS, QUERY_KEYS, unpack_batch

MODEL_CONFIG = {"mode": "multiclass_classification", "task_level": "graph", "return_type": "raw"}
SETS = ("l3_kept", "trace", "random", "gnnexplainer")


class Logits(nn.Module):
    """The model's logits alone, as PyG's ``Explainer`` calls a model: ``model(x, edge_index, **kwargs)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, edge_index: Tensor, **kwargs: Tensor) -> Tensor:
        return self.model(x, edge_index, **kwargs)["logits"]


class GivenNodes(ExplainerAlgorithm):
    """An explainer that names a node set chosen elsewhere (the trace's, a random one), as a hard node mask."""

    def __init__(self, nodes: Tensor):
        super().__init__()
        self.nodes = nodes

    def forward(self, model: nn.Module, x: Tensor, edge_index: Tensor, *, target: Tensor, index=None,
                **kwargs) -> Explanation:
        mask = torch.zeros(x.size(0), 1, device=x.device)
        mask[self.nodes.to(x.device)] = 1.0
        return Explanation(node_mask=mask)

    def supports(self) -> bool:
        return True


def _explainer(model: nn.Module, algorithm: ExplainerAlgorithm) -> Explainer:
    return Explainer(Logits(model), algorithm, explanation_type="model", model_config=MODEL_CONFIG,
                     node_mask_type="object")


def _inputs(model: nn.Module, graph: Data) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    inputs, _ = unpack_batch(graph, next(model.parameters()).device)
    # Not the absent ones (no confidences: None): an Explanation keeps only tensors.
    kwargs = {key: inputs[key] for key in (*GRAPH_KEYS, *QUERY_KEYS)
              if inputs.get(key) is not None and key not in ("x", "edge_index")}
    return inputs["x"], inputs["edge_index"], kwargs


def set_fidelity(model: nn.Module, graph: Data, nodes: Tensor) -> dict[str, float]:
    """``fidelity_plus``, ``fidelity_minus`` (0 or 1, PyG's) of ``nodes`` for one graph, and the
    predicted class's ``probability`` on the graph, ``probability_without`` the set and
    ``probability_only`` with the set alone."""
    model.eval()
    x, edge_index, kwargs = _inputs(model, graph)
    explainer = _explainer(model, GivenNodes(nodes))
    explanation = explainer(x, edge_index, **kwargs)
    plus, minus = fidelity(explainer, explanation)
    mask = explanation.node_mask
    with torch.no_grad():
        predicted = int(explanation.target.view(-1)[0])
        probabilities = [explainer.get_masked_prediction(x, edge_index, m, None, **kwargs).float().softmax(-1)[0, predicted]
                         for m in (torch.ones_like(mask), 1.0 - mask, mask)]
    return {"fidelity_plus": float(plus), "fidelity_minus": float(minus),
            **{name: float(p) for name, p in zip(("probability", "probability_without", "probability_only"),
                                                  probabilities)}}


def gnnexplainer_nodes(model: nn.Module, graph: Data, size: int, epochs: int = 100) -> Tensor:
    """The ``size`` nodes of ``graph`` that PyG's ``GNNExplainer`` (node mask per node) ranks highest."""
    model.eval()
    x, edge_index, kwargs = _inputs(model, graph)
    explanation = _explainer(model, GNNExplainer(epochs=epochs))(x, edge_index, **kwargs)
    return explanation.node_mask.view(-1).topk(size).indices.cpu()


def trace_sets(model: nn.Module, graph: Data) -> dict[str, Tensor]:
    """The graph's ``l3_kept`` nodes and its whole ``trace`` (the first abstract level's kept nodes), as input node ids."""
    levels = run_graphs(model, [graph])["levels"]
    if not levels:
        raise NSMError("the model has no hierarchy, so no trace to measure")
    kept = kept_node_ids(levels)
    return {"l3_kept": kept[-1].cpu(), "trace": kept[0].cpu()}


def sample_fidelity(model: nn.Module, graph: Data, kept: Tensor, draws: int = 10, seed: int = 0) -> dict[str, Any]:
    """:func:`set_fidelity` of one graph's L3-kept nodes ``kept``, and its mean over ``draws``
    random sets of as many nodes: what ``nsm explain`` prints beside the trace."""
    generator = torch.Generator().manual_seed(seed)
    random_sets = [set_fidelity(model, graph, torch.randperm(graph.num_nodes, generator=generator)[:kept.numel()])
                   for _ in range(draws)]
    return {"nodes": kept.numel(), "draws": draws, "l3_kept": set_fidelity(model, graph, kept),
            "random": {key: sum(r[key] for r in random_sets) / draws for key in random_sets[0]}}


def fidelity_table(model: nn.Module, dataset: TripleDataset, samples: int | None = None, draws: int = 10,
                   gnnexplainer_epochs: int | None = 100, seed: int = 0) -> dict[str, Any]:
    """Mean fid+, fid− and set size over the first ``samples`` graphs of ``dataset`` for each of
    :data:`SETS` (random: ``draws`` sets a graph; GNNExplainer skipped when ``gnnexplainer_epochs`` is None)."""
    generator = torch.Generator().manual_seed(seed)
    graphs = dataset.graphs[:samples] if samples else dataset.graphs
    sums: dict[str, dict[str, float]] = {}

    def add(name: str, nodes: Tensor, graph: Data, weight: float = 1.0) -> None:
        result = set_fidelity(model, graph, nodes)
        totals = sums.setdefault(name, {"fidelity_plus": 0.0, "fidelity_minus": 0.0, "nodes": 0.0})
        totals["fidelity_plus"] += weight * result["fidelity_plus"]
        totals["fidelity_minus"] += weight * result["fidelity_minus"]
        totals["nodes"] += weight * nodes.numel()

    for graph in graphs:
        sets = trace_sets(model, graph)
        for name, nodes in sets.items():
            add(name, nodes, graph)
        size = sets["l3_kept"].numel()
        for _ in range(draws):
            add("random", torch.randperm(graph.num_nodes, generator=generator)[:size], graph, 1.0 / draws)
        if gnnexplainer_epochs:
            add("gnnexplainer", gnnexplainer_nodes(model, graph, size, gnnexplainer_epochs), graph)
    count = len(graphs)
    return {"samples": count, "draws": draws, "gnnexplainer_epochs": gnnexplainer_epochs,
            "sets": {name: {key: value / count for key, value in totals.items()} for name, totals in sums.items()}}
