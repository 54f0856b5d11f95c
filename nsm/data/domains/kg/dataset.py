"""The knowledge-graph domain as a dataset: link prediction over enclosing subgraphs (see
:mod:`nsm.data.domains.kg`)."""

from __future__ import annotations

import os
from typing import Any

from nsm.checks import require_positive
from nsm.data.base import TripleDataset
from nsm.data.domains.kg.generator import OOD_SCALE, ood_samples, synthetic_samples
from nsm.data.domains.kg.schema import SYNTHETIC_SCHEMA
from nsm.data.domains.kg.subgraph import MAX_SUBGRAPH_ENTITIES
from nsm.data.domains.kg.tsv import KGFiles, file_samples, read_kg_dir
from nsm.data.domains.kg.world import MIN_WORLD_ENTITIES
from nsm.data.graph import Sample
from nsm.errors import NSMError


class KnowledgeGraphTripleDataset(TripleDataset):
    """Is the query triple ``(h, r, t)`` true? Decide from its enclosing subgraph.

    Synthetic (``kg_dir=None``): ``num_samples`` samples over the three splits (70/15/15), each
    split drawn from its own worlds of ``num_entities`` entities and about ``num_triples`` facts.

    Real (``kg_dir`` holds ``train.txt``, ``valid.txt``, ``test.txt``): every split's subgraphs
    come from the train graph; a split's positives are its file's triples, at most
    ``split_sizes(num_samples)[split] // 2`` of them (a random subset of a larger file), so
    ``num_samples`` caps how much of a large KG is used. ``num_entities`` and ``num_triples``
    describe synthetic worlds only; the files fix the real graph. The cache is keyed by a hash of
    the files' content, so an edited file is never served from an old cache.

    Each split is balanced: every positive is paired with one corruption of it. ``hops`` is the
    radius ``k`` of the enclosing subgraph and ``max_entities`` the most entities it keeps.
    """

    schema = SYNTHETIC_SCHEMA
    generator_version = 3  # 3: real KGs hide only the query triple; negatives keep its distance

    def __init__(self, root: str | os.PathLike, split: str = "train", num_entities: int = 200,
                 num_triples: int = 2500, num_samples: int = 3000, seed: int = 0, node_feature_dim: int = 64,
                 hops: int = 2, kg_dir: str | os.PathLike | None = None,
                 max_entities: int = MAX_SUBGRAPH_ENTITIES):
        require_positive(num_entities=num_entities, num_triples=num_triples, num_samples=num_samples, hops=hops)
        if not isinstance(max_entities, int) or isinstance(max_entities, bool) or max_entities < 2:
            raise NSMError(f"max_entities must be an integer of at least 2 (the query's two ends), got {max_entities!r}")
        self.files: KGFiles | None = None
        if kg_dir is not None:
            self.files = read_kg_dir(kg_dir)
            self.schema = self.files.schema
        elif num_entities < MIN_WORLD_ENTITIES:
            raise NSMError(f"num_entities must be at least {MIN_WORLD_ENTITIES} for the synthetic knowledge "
                           f"graph (one entity of every type, people and their families), got {num_entities}")
        super().__init__(root, split, seed=seed, node_feature_dim=node_feature_dim, num_entities=num_entities,
                         num_triples=num_triples, num_samples=num_samples, hops=hops, max_entities=max_entities,
                         kg_dir=None if kg_dir is None else str(kg_dir))

    @property
    def ood_shift(self) -> str | None:
        if self.files is not None:  # a real KG's test file is its own
            return None
        return f"worlds of {OOD_SCALE}x the entities and facts, subgraphs of up to {OOD_SCALE}x the entities"

    def cache_identity(self) -> dict[str, Any]:
        identity = super().cache_identity()
        if self.files is not None:
            identity["files"] = self.files.fingerprint
        return identity

    def generate(self) -> dict[str, list[Sample]]:
        p = self.params
        if self.files is not None:
            return file_samples(self.files, p["num_samples"], p["hops"], p["seed"], p["max_entities"])
        return synthetic_samples(p["num_samples"], p["num_entities"], p["num_triples"], p["hops"], p["seed"],
                                 p["max_entities"])

    def generate_ood(self) -> list[Sample]:
        p = self.params
        return ood_samples(self.ood_size(), p["num_entities"], p["num_triples"], p["hops"], p["seed"], p["max_entities"])
