"""Your own labelled triple graphs as a dataset (see :mod:`nsm.data.domains.triples.jsonl`)."""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from nsm.atomic import write_json
from nsm.data.base import TripleDataset
from nsm.data.domains.triples.jsonl import (
    LabelledTriples, data_files, fingerprint, last_read, read_files, read_labelled_triples,
)
from nsm.data.graph import Sample
from nsm.data.triples import DomainSchema
from nsm.errors import NSMError

# The one-hot type and level blocks must fit: a dataset with many node types gets wider features.
DEFAULT_FEATURES = 64


class LabelledTriplesDataset(TripleDataset):
    """The ``split`` of the samples under ``data_path`` (a ``.jsonl`` file or a directory of them).

    Its schema is the data's: relations, node types (with their levels) and classes, also kept
    beside the cached graphs (``<digest>.vocabulary.json``) so that a cached load does not read the
    files again, only hashes them. The samples themselves are not cached: your files hold them,
    and they are read again when asked for (``describe``, ``samples``). ``node_feature_dim``
    defaults to 64, or the width the node types need when there are more.
    """

    generator_version = 1
    caches_samples = False

    def __init__(self, root: str | os.PathLike, split: str = "train", data_path: str | os.PathLike | None = None,
                 seed: int = 0, node_feature_dim: int | None = None):
        vocabulary, self.data = data_vocabulary(root, data_path)
        self.fingerprint = vocabulary["fingerprint"]
        self.schema = vocabulary_schema(vocabulary)
        self.classes: list[int] = vocabulary["classes"]
        super().__init__(root, split, seed=seed, node_feature_dim=node_feature_dim or feature_width(self.schema),
                         data_path=str(data_path))
        if self.data is not None and not vocabulary_path(root, self.fingerprint).exists():
            write_json(vocabulary_path(root, self.fingerprint), vocabulary)  # beside the splits, cached now

    def cache_identity(self) -> dict[str, Any]:
        return {**super().cache_identity(), "files": self.fingerprint}

    def generate(self) -> dict[str, list[Sample]]:
        data = self.data or read_labelled_triples(self.params["data_path"])
        return data.splits(self.seed)

    def _check_splits(self, splits: dict[str, list[Sample]]) -> None:
        """Your data may have any class balance; a graph in two splits is warned about, not refused."""
        owner: dict[tuple, str] = {}
        shared: Counter = Counter()
        for split, samples in splits.items():
            for sample in samples:
                if owner.setdefault(sample.key(), split) != split:
                    shared[(owner[sample.key()], split)] += 1
        for (first, second), count in shared.items():
            warnings.warn(f"{self.params['data_path']}: {count} graph(s) of the {second} split are also in the "
                          f"{first} split (same triples); their {second} results measure memory, not generalisation")


def data_vocabulary(root: str | os.PathLike, data_path: str | os.PathLike | None
                    ) -> tuple[dict[str, Any], LabelledTriples | None]:
    """The vocabulary of the data under ``data_path``, from the cache under ``root`` when it holds
    it (then ``None``), else from reading the data (then also the data read)."""
    if data_path is None:
        raise NSMError("the triples domain reads your own data: give --data PATH (a .jsonl file or a "
                       "directory of them)")
    paths = data_files(data_path)
    digest = fingerprint(paths)
    data = last_read(paths, digest)
    if data is None:
        try:
            return json.loads(vocabulary_path(root, digest).read_text()), None
        except (OSError, ValueError):
            data = read_files(paths, digest)
    return {"fingerprint": data.fingerprint, "relations": list(data.schema.relations),
            "node_types": dict(data.schema.node_types), "extra_features": list(data.schema.extra_features),
            "classes": list(data.classes)}, data


def vocabulary_path(root: str | os.PathLike, digest: str) -> Path:
    return Path(root) / "triples" / f"{digest}.vocabulary.json"


def vocabulary_schema(vocabulary: dict[str, Any]) -> DomainSchema:
    return DomainSchema(name="triples", relations=tuple(vocabulary["relations"]),
                        node_types=vocabulary["node_types"], num_relations=len(vocabulary["relations"]),
                        extra_features=tuple(vocabulary.get("extra_features", ())))


def feature_width(schema: DomainSchema) -> int:
    """Node features for ``schema``: 64, or as many as its type and level one-hots need."""
    return max(DEFAULT_FEATURES, schema.min_feature_dim)
