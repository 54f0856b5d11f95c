"""Data: semantic triples, the reasoning domains and their graphs.

``load_dataset(domain, root, split, ...)`` is the one door to every domain's dataset; the domains
themselves are listed in :mod:`nsm.data.domains`. The datasets and graphs (torch, PyG) are
imported on first use (PEP 562), so that reading the registry stays light.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from nsm.data.domains import DOMAINS, get_domain
from nsm.data.triples import DomainSchema, SemanticTriple, Vocabulary

if TYPE_CHECKING:
    from nsm.data.base import TripleDataset

_LAZY = {
    "SPLITS": "nsm.data.base", "TripleDataset": "nsm.data.base", "Sample": "nsm.data.graph",
    "sample_to_data": "nsm.data.graph",
    # The seed's `from nsm.data import PlanningTripleDataset`, and its two siblings.
    "PlanningTripleDataset": "nsm.data.domains.planning.dataset",
    "CausalTripleDataset": "nsm.data.domains.causal.dataset",
    "KnowledgeGraphTripleDataset": "nsm.data.domains.kg.dataset",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nsm.data' has no attribute {name!r}")


def load_dataset(domain: str, root: str | os.PathLike, split: str, **params: Any) -> TripleDataset:
    """The ``split`` of ``domain``'s dataset, generated (or read from the cache under ``root``)."""
    return get_domain(domain).dataset_class(root, split, **params)


__all__ = ["DOMAINS", "DomainSchema", "SemanticTriple", "Vocabulary", "get_domain", "load_dataset", *_LAZY]
