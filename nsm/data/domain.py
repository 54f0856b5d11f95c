"""What a reasoning domain declares about itself, once: its schema and dataset (generator,
oracle), the shape of the model it is trained with, how much data each run profile uses, and its cost.

Each domain's folder declares one :class:`Domain` (``nsm/data/domains/<name>/__init__.py``) and
the registry (:mod:`nsm.data.domains`) lists it; the run configuration (:mod:`nsm.config`), the
CLI, the local runner, the cloud jobs and the benchmarks read everything per-domain from there.
A declaration imports no torch: the dataset class is named, and imported when first used, so the
Modal app's local entry points and ``nsm cloud plan`` read the registry without the training code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from nsm.data.triples import DomainSchema

if TYPE_CHECKING:
    from nsm.data.base import TripleDataset

SPLITS = ("train", "val", "test")
# A generated domain's out-of-distribution test split: samples scaled past what training saw (more
# blocks, deeper mechanism chains, larger worlds; each dataset's ``ood_shift`` says what), as many
# as the test split holds. Generated apart from the three splits, on its own random stream.
OOD_SPLIT = "ood"


@dataclass(frozen=True)
class Domain:
    """One reasoning domain.

    ``profile_data`` gives the dataset's arguments at each run profile (``quick``, ``dev``,
    ``production``): ``num_samples``, the total over the three splits, and any other size the
    dataset takes. ``cost_per_sample`` is its training time per sample and epoch relative to
    planning's, on one CPU thread: the local runner starts the longest jobs first so that the
    short ones fill the gaps. ``select_best_by`` is the validation metric that picks ``best.pt``
    and counts early stopping's patience (lower is better for a ``*loss``, higher otherwise).
    The relation budget is the schema's (``schema.num_relations``): every relation id stays below it.
    """

    name: str
    question: str  # what each sample asks, in a line
    schema: DomainSchema
    dataset: str  # "module:Class" of its TripleDataset subclass (see dataset_class)
    task_type: str  # "classification" or "link_prediction" (the model's readout of the query's ends)
    num_bases: int  # R-GCN basis decomposition
    pool_ratio: float  # share of nodes each WHY level keeps
    profile_data: Mapping[str, Mapping[str, Any]]
    cost_per_sample: float = 1.0
    select_best_by: str = "total_loss"
    num_classes: int = 2
    node_features: int = 64
    # The model's width; NSMModel's and FlatRGCN's default too. At 64 (the seed's node_features)
    # a planning step took 1.2-1.4x as long for no accuracy the targets need; at 32 planning's classes
    # drifted apart (5.4 points at seed 2). See benchmarks/README.md, "Throughput" (issue 19).
    hidden: int = 48
    num_levels: int = 3
    concrete_convs: int = 3  # relational convolutions over the concrete level before the first pooling
    dropout: float = 0.0
    readout: str = "all"  # the levels the graph head reads (nsm.config.READOUTS)

    @property
    def dataset_class(self) -> type[TripleDataset]:
        module, _, name = self.dataset.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def num_relations(self) -> int:
        return self.schema.num_relations

    def model_args(self) -> dict[str, Any]:
        """The model's constructor arguments (``NSMModel``'s; the baselines take what they need)."""
        return {"task_type": self.task_type, "num_relations": self.num_relations, "num_bases": self.num_bases,
                "pool_ratio": self.pool_ratio, "num_classes": self.num_classes, "node_features": self.node_features,
                "hidden": self.hidden, "num_levels": self.num_levels, "concrete_convs": self.concrete_convs,
                "dropout": self.dropout, "readout": self.readout}
