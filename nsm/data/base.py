"""The dataset every domain shares: deterministic generation, disjoint balanced splits, a cache.

A domain subclass supplies ``schema`` and ``generate()``, which returns the samples of all three
splits for the dataset's parameters; a generated domain also ``generate_ood()``, the samples of
its out-of-distribution split (``split="ood"``), and ``ood_shift``, what that split changes.
This class checks what every domain promises — each split balanced 50/50, no sample in two
splits — caches the samples under ``root``, one file per split named by a hash of the
parameters, and serves ``dataset[i] -> (Data, label)`` with
``label`` a one-element long tensor.

A cache file is gzip text: a JSON header line ``{"identity": ..., "checksum": ...}`` (the
parameters, to refuse a mismatch, and a BLAKE2b digest of the rest of the file), then the samples
as one JSON list. Beside it, ``<digest>.<split>.graphs.pt`` holds the split's graphs as id columns
(:class:`~nsm.data.graph.GraphColumns`, read with ``weights_only=True``), with the same identity
and a digest of its tensors: a cached load builds the graphs from it without reading a sample,
and reads the samples (for ``describe``, ``samples``) only when they are asked for. A file edited
or damaged since it was written fails its checksum and is regenerated, when it is read.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from nsm.atomic import UnwritableDirectory, atomic_write, sweep_temp_files
from nsm.checks import MAX_SEED, check_integer, require_positive
from nsm.data.bulk import collector_paused
from nsm.data.domain import OOD_SPLIT, SPLITS
from nsm.data.graph import GraphColumns, Sample, columns_to_data, sample_columns
from nsm.data.triples import DomainSchema
from nsm.errors import NSMError

# Bumped whenever generation changes, so that old caches are rebuilt rather than reused.
CACHE_FORMAT = 3  # 2: one file per split; 3: a header line with a checksum of the samples


def split_sizes(total: int) -> dict[str, int]:
    """70/15/15 split of ``total`` samples, each split an even number (so it can be 50/50)."""
    val = 2 * round(total * 0.15 / 2)
    test = 2 * round(total * 0.15 / 2)
    train = total - val - test
    train -= train % 2
    return {"train": train, "val": val, "test": test}


def sample_count(default: int, **names: int | None) -> int:
    """A dataset's total number of samples, given as ``num_samples`` or under the seed's name for
    it (``num_problems``, ``num_scenarios``), at most one of them; ``default`` when neither is."""
    given = {name: value for name, value in names.items() if value is not None}
    if len(given) > 1:
        raise NSMError(f"{' and '.join(given)} both set the number of samples; give one of them")
    name, size = next(iter(given.items()), ("num_samples", default))
    require_positive(**{name: size})
    return size


class TripleDataset(Dataset):
    """Base class of the domain datasets (see the module docstring)."""

    schema: DomainSchema
    generator_version: int = 1
    # Whether the samples are cached too, or made again when asked for (a domain reading your files).
    caches_samples: bool = True
    # What the out-of-distribution split scales up, in words; None where there is none (your files).
    ood_shift: str | None = None

    def __init__(self, root: str | os.PathLike, split: str, seed: int = 0, node_feature_dim: int = 64,
                 **params: Any):
        if split == OOD_SPLIT and self.ood_shift is None:
            raise NSMError(f"the {self.schema.name} data has no out-of-distribution split (only the generated "
                           f"domains do): choose one of {', '.join(SPLITS)}")
        if split not in (*SPLITS, OOD_SPLIT):
            raise NSMError(f"unknown split {split!r}; choose one of {', '.join((*SPLITS, OOD_SPLIT))}")
        require_positive(node_feature_dim=node_feature_dim)
        check_integer("seed", seed, 0, MAX_SEED)  # every domain alike (numpy's seed range)
        if node_feature_dim < self.schema.min_feature_dim:
            raise NSMError(f"node_feature_dim={node_feature_dim} is too small for the {self.schema.name} "
                           f"domain, which needs at least {self.schema.min_feature_dim}")
        self.root = Path(root)
        self.split = split
        self.seed = seed
        self.node_feature_dim = node_feature_dim
        self.params = dict(params, seed=seed)
        self._samples: list[Sample] | None = None
        identity = self._identity()
        with collector_paused():
            columns = self._read_graph_cache(identity)
            if columns is None:
                self._samples = self._load_or_generate()
                columns = self._write_graph_cache(identity, self.split, self._samples)
            self.labels: list[int] = columns.y.tolist()
            self.graphs = columns_to_data(columns, self.schema, node_feature_dim)

    # --- what a domain implements -------------------------------------------------------------
    def generate(self) -> dict[str, list[Sample]]:
        """All samples of all splits, deterministic for ``self.params``."""
        raise NotImplementedError

    def generate_ood(self) -> list[Sample]:
        """The out-of-distribution split's samples (as many as :meth:`ood_size`), deterministic for
        ``self.params``; only where ``ood_shift`` is set."""
        raise NotImplementedError

    def ood_size(self) -> int:
        """How many samples the out-of-distribution split holds: as many as the test split."""
        return split_sizes(self.params["num_samples"])["test"]

    def cache_identity(self) -> dict[str, Any]:
        """What the cached samples depend on; a domain reading files adds their fingerprint."""
        identity = {"domain": self.schema.name, "format": CACHE_FORMAT, "generator": self.generator_version,
                    "params": self.params}
        if self.split == OOD_SPLIT:  # a changed shift is a new file
            identity["ood"] = self.ood_shift
        return identity

    # --- the Dataset API ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int):
        data = self.graphs[index]
        return data, data.y

    @property
    def num_relations(self) -> int:
        return self.schema.num_relations

    @property
    def samples(self) -> list[Sample]:
        """The samples behind the graphs, read from the cache when first asked for."""
        if self._samples is None:
            self._samples = self._load_or_generate()
        return self._samples

    def describe(self, index: int) -> str:
        if not 0 <= index < len(self):
            raise NSMError(f"sample {index} does not exist; the {self.split} split has {len(self)} samples")
        return self.samples[index].describe()

    def stats(self) -> dict[str, Any]:
        """Counts a researcher checks first: balance, graph sizes, relations, levels."""
        nodes = torch.tensor([g.num_nodes for g in self.graphs], dtype=torch.float)
        edges = torch.tensor([g.num_edges for g in self.graphs], dtype=torch.float)
        edge_type = torch.cat([g.edge_type for g in self.graphs])
        relations = Counter({self.schema.relations[r]: n for r, n in enumerate(torch.bincount(edge_type).tolist()) if n})
        node_levels = Counter(torch.cat([g.node_level for g in self.graphs]).tolist())
        triple_levels = Counter(torch.cat([g.edge_level for g in self.graphs]).tolist())
        return {
            "domain": self.schema.name,
            "split": self.split,
            "samples": len(self),
            "class_counts": dict(sorted(Counter(self.labels).items())),
            "nodes": _summary(nodes),
            "edges": _summary(edges),
            "relations_used": len(relations),
            "relations": dict(relations.most_common()),
            "node_levels": dict(sorted(node_levels.items())),
            "triple_levels": dict(sorted(triple_levels.items())),
        }

    # --- cache --------------------------------------------------------------------------------
    def _cache_path(self, identity: dict[str, Any], split: str) -> Path:
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return self.root / self.schema.name / f"{digest}.{split}.json.gz"

    def _identity(self) -> dict[str, Any]:
        """:meth:`cache_identity` as its cache file's header holds it (JSON types)."""
        return json.loads(json.dumps(self.cache_identity(), sort_keys=True, default=str))

    def _load_or_generate(self) -> list[Sample]:
        """This split's samples: from its own cache file (the other splits are not read) or generated;
        generating also caches the other splits' graphs where they are not cached yet (the
        out-of-distribution split is generated alone)."""
        identity = self._identity()
        path = self._cache_path(identity, self.split)
        if self.caches_samples and path.exists():
            try:
                with gzip.open(path, "rt") as f:
                    header_line, samples_text = f.read().split("\n", 1)
                header = json.loads(header_line)
                if header["identity"] != identity:
                    warnings.warn(f"cache {path} was made with other parameters; regenerating")
                elif header["checksum"] != text_checksum(samples_text):
                    warnings.warn(f"cache {path} does not match its checksum (edited or damaged?); regenerating")
                else:
                    return [Sample.from_record(r) for r in json.loads(samples_text)]
            except (OSError, ValueError, KeyError, EOFError) as exc:
                warnings.warn(f"cache {path} is unreadable ({exc}); regenerating")
        splits = {OOD_SPLIT: self.generate_ood()} if self.split == OOD_SPLIT else self.generate()
        self._check_splits(splits)
        if path.parent.is_dir():
            sweep_temp_files(path.parent)  # the partial writes of a generation that was killed
        for split, samples in splits.items():
            if self.caches_samples:
                self._write_cache(self._cache_path(identity, split), identity, samples)
            # This split's graphs are cached by __init__, which builds them.
            if split != self.split and not self._graph_cache_path(identity, split).exists():
                self._write_graph_cache(identity, split, samples)
        return splits[self.split]

    def _write_cache(self, path: Path, identity: dict[str, Any], samples: list[Sample]) -> None:
        # One C-encoded string per line (json.dump's chunked writes are 4x slower); JSON text has no
        # raw newline, so the first one ends the header.
        samples_text = json.dumps([s.to_record() for s in samples])
        header_line = json.dumps({"identity": identity, "checksum": text_checksum(samples_text)})
        try:
            with atomic_write(path, "wb") as raw, gzip.open(raw, "wt", compresslevel=1) as f:
                f.write(header_line + "\n" + samples_text)
        except UnwritableDirectory as exc:
            raise NSMError(f"cannot write the data cache under {path.parent}: {exc.strerror or exc}") from None

    def _graph_cache_path(self, identity: dict[str, Any], split: str) -> Path:
        return self._cache_path(identity, split).with_suffix("").with_suffix(".graphs.pt")

    def _read_graph_cache(self, identity: dict[str, Any]) -> GraphColumns | None:
        """This split's graph columns from its cache file, or ``None`` (absent, stale or damaged: warned)."""
        path = self._graph_cache_path(identity, self.split)
        if not path.exists():
            return None
        try:
            stored = torch.load(path, weights_only=True)
            columns = GraphColumns(**stored["columns"])
            if json.loads(stored["identity"]) != identity:
                warnings.warn(f"cache {path} was made with other parameters; regenerating")
            elif stored["checksum"] != columns_checksum(columns):
                warnings.warn(f"cache {path} does not match its checksum (edited or damaged?); regenerating")
            else:
                return columns
        except Exception as exc:  # whatever a damaged zip or pickle raises: the cache is rebuilt
            warnings.warn(f"cache {path} is unreadable ({exc}); regenerating")
        return None

    def _write_graph_cache(self, identity: dict[str, Any], split: str, samples: list[Sample]) -> GraphColumns:
        columns = sample_columns(samples, self.schema)
        stored = {"identity": json.dumps(identity), "checksum": columns_checksum(columns),
                  "columns": columns._asdict()}
        path = self._graph_cache_path(identity, split)
        if path.parent.is_dir():
            sweep_temp_files(path.parent)  # a write that was killed, when the samples were cached already
        try:
            with atomic_write(path, "wb") as f:
                torch.save(stored, f)
        except UnwritableDirectory as exc:
            raise NSMError(f"cannot write the data cache under {path.parent}: {exc.strerror or exc}") from None
        return columns

    def _check_splits(self, splits: dict[str, list[Sample]]) -> None:
        if set(splits) not in (set(SPLITS), {OOD_SPLIT}):
            raise RuntimeError(f"{self.schema.name} generator returned splits {sorted(splits)}")
        owner: dict[tuple, str] = {}
        for split, samples in splits.items():
            counts = Counter(s.label for s in samples)
            if abs(counts[0] - counts[1]) > 1 or set(counts) - {0, 1}:
                raise RuntimeError(f"{self.schema.name} {split} split is not balanced 50/50: {dict(counts)}")
            for sample in samples:
                key = sample.key()
                if owner.setdefault(key, split) != split:
                    raise RuntimeError(f"{self.schema.name}: a sample appears in both {owner[key]} and {split}")


def columns_checksum(columns: GraphColumns) -> str:
    """BLAKE2b digest of the bytes of a graph cache's tensors (shapes included)."""
    digest = hashlib.blake2b(digest_size=16)
    for tensor in columns:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.contiguous().numpy().data)
    return digest.hexdigest()


def text_checksum(text: str) -> str:
    """BLAKE2b digest of a cache file's samples, as written."""
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _summary(values: torch.Tensor) -> dict[str, float]:
    if values.numel() == 0:
        return {"min": 0.0, "mean": 0.0, "max": 0.0}
    return {"min": values.min().item(), "mean": round(values.mean().item(), 2), "max": values.max().item()}
