"""Models: the hierarchical NSM and the baselines it is compared with.

All three take ``forward(x, edge_index, edge_type, edge_attr=None, batch=None, head_index=None,
tail_index=None, query_relation=None)`` and return a dict with ``logits``, ``cycle_loss`` and
``levels`` (the NSM adds its reconstruction errors). :func:`build_model` makes any of them from
the NSM's constructor arguments.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from nsm.config import GRAPH_MODELS
from nsm.errors import NSMError
from nsm.models.baselines import BagOfTypesMLP
from nsm.models.confidence.temperature import TemperatureScheduler
from nsm.models.flat_rgcn import FlatRGCN
from nsm.models.hierarchical import NSMModel, SymmetricHierarchicalLayer

def build_model(name: str, **kwargs: Any) -> nn.Module:
    """The model ``name`` (one of :data:`nsm.config.GRAPH_MODELS`) from ``NSMModel``'s constructor arguments.

    The baselines take the arguments they have and ignore the others (the hierarchy's, and for
    the bag-of-types MLP the convolutions'); the flat R-GCN gets ``num_levels`` convolutions.
    """
    accepted = set(inspect.signature(NSMModel).parameters)
    unknown = set(kwargs) - accepted
    if unknown:
        raise NSMError(f"unknown model argument(s) {', '.join(sorted(unknown))}; "
                       f"expected some of {', '.join(sorted(accepted))}")
    if name == "nsm":
        return NSMModel(**kwargs)
    if name == "flat-rgcn":
        flat_args = {k: v for k, v in kwargs.items() if k not in ("pool_ratio", "num_levels", "temperature", "concrete_convs",
                                                                  "readout")}
        return FlatRGCN(**flat_args, num_layers=kwargs.get("num_levels", 3))
    if name == "bag-mlp":
        return BagOfTypesMLP(**{k: v for k, v in kwargs.items() if k in ("node_features", "num_relations", "num_classes")})
    raise NSMError(f"unknown model {name!r}; choose one of {', '.join(GRAPH_MODELS)}")


__all__ = ["BagOfTypesMLP", "FlatRGCN", "NSMModel", "SymmetricHierarchicalLayer",
           "TemperatureScheduler", "build_model"]
