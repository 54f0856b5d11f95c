"""The planning domain as a dataset: is a blocksworld plan valid for its goal?

See :mod:`nsm.data.planning` for the problems, the simulator oracle and the graph layout.
"""

from __future__ import annotations

import os

from nsm.data.base import TripleDataset, require_positive
from nsm.data.graph import Sample
from nsm.data.planning import PLANNING_SCHEMA, generate_splits


class PlanningTripleDataset(TripleDataset):
    """Blocksworld plan validation; ``num_problems`` samples over train/val/test (70/15/15).

    Each split is half valid plans and half minimal corruptions of them that the simulator
    rejects; a corruption always shares its split with the plan it came from.
    """

    schema = PLANNING_SCHEMA
    generator_version = 2  # 2: steps carry their plan position

    def __init__(self, root: str | os.PathLike, split: str = "train", num_problems: int = 1000, seed: int = 0,
                 node_feature_dim: int = 64):
        require_positive(num_problems=num_problems)
        super().__init__(root, split, seed=seed, node_feature_dim=node_feature_dim, num_problems=num_problems)

    def generate(self) -> dict[str, list[Sample]]:
        return generate_splits(self.params["num_problems"], self.seed)
