import os

from nsm.data.base import TripleDataset, sample_count
from nsm.data.graph import Sample
from toy_domain.generator import generate_splits
from toy_domain.schema import REACH_SCHEMA


class ReachTripleDataset(TripleDataset):
    schema = REACH_SCHEMA

    def __init__(self, root: str | os.PathLike, split: str = "train", num_samples: int | None = None, seed: int = 0,
                 node_feature_dim: int = 64):
        super().__init__(root, split, seed=seed, node_feature_dim=node_feature_dim,
                         num_samples=sample_count(100, num_samples=num_samples))

    def generate(self) -> dict[str, list[Sample]]:
        return generate_splits(self.params["num_samples"], self.seed)
