"""The planning domain as a dataset: is a blocksworld plan valid for its goal?

See :mod:`nsm.data.domains.planning.generator` for the problems, the simulator oracle and the
graph layout.
"""

from __future__ import annotations

import os

from nsm.data.base import TripleDataset, sample_count
from nsm.data.domains.planning.generator import IN_DISTRIBUTION, OUT_OF_DISTRIBUTION, generate_ood, generate_splits
from nsm.data.domains.planning.schema import PLANNING_SCHEMA
from nsm.data.graph import Sample


class PlanningTripleDataset(TripleDataset):
    """Blocksworld plan validation; ``num_samples`` samples over train/val/test (70/15/15).

    Each split is half valid plans and half minimal corruptions of them that the simulator
    rejects; a corruption always shares its split with the plan it came from. ``num_problems``
    is the seed's name for ``num_samples``.
    """

    schema = PLANNING_SCHEMA
    generator_version = 2  # 2: steps carry their plan position
    ood_shift = f"{OUT_OF_DISTRIBUTION} (training: {IN_DISTRIBUTION})"

    def __init__(self, root: str | os.PathLike, split: str = "train", num_samples: int | None = None, seed: int = 0,
                 node_feature_dim: int = 64, *, num_problems: int | None = None):
        num_samples = sample_count(1000, num_samples=num_samples, num_problems=num_problems)
        super().__init__(root, split, seed=seed, node_feature_dim=node_feature_dim, num_samples=num_samples)

    def generate(self) -> dict[str, list[Sample]]:
        return generate_splits(self.params["num_samples"], self.seed)

    def generate_ood(self) -> list[Sample]:
        return generate_ood(self.ood_size(), self.seed)
