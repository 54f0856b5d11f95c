"""Data: semantic triples, the three reasoning domains and their graphs.

``load_dataset(domain, root, split, ...)`` is the one door to every domain's dataset.
"""

from __future__ import annotations

import os
from typing import Any

from nsm.data.base import SPLITS, TripleDataset
from nsm.data.causal_dataset import CausalTripleDataset
from nsm.data.graph import Sample, sample_to_data
from nsm.data.knowledge_graph_dataset import KnowledgeGraphTripleDataset
from nsm.data.planning_dataset import PlanningTripleDataset
from nsm.data.triples import DomainSchema, SemanticTriple, Vocabulary
from nsm.errors import NSMError

DATASETS: dict[str, type[TripleDataset]] = {
    "planning": PlanningTripleDataset,
    "causal": CausalTripleDataset,
    "kg": KnowledgeGraphTripleDataset,
}
# The argument that sets a domain's total number of samples (over all splits).
DATASET_SIZE_ARGUMENT = {"planning": "num_problems", "causal": "num_scenarios", "kg": "num_samples"}


def load_dataset(domain: str, root: str | os.PathLike, split: str, **params: Any) -> TripleDataset:
    """The ``split`` of ``domain``'s dataset, generated (or read from the cache under ``root``)."""
    if domain not in DATASETS:
        raise NSMError(f"unknown domain {domain!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[domain](root, split, **params)


__all__ = ["DATASETS", "DATASET_SIZE_ARGUMENT", "SPLITS", "CausalTripleDataset", "DomainSchema",
           "KnowledgeGraphTripleDataset", "PlanningTripleDataset", "Sample", "SemanticTriple", "TripleDataset",
           "Vocabulary", "load_dataset", "sample_to_data"]
