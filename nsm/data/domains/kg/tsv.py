"""Real knowledge graphs in the TSV layout (FB15k-237, WN18RR: ``train.txt``, ``valid.txt``,
``test.txt``, one ``head<TAB>relation<TAB>tail`` per line), and their samples: the oracle is the files.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from torch_geometric.data import Data

from nsm.data.base import split_sizes
from nsm.data.domains.kg.query_graph import QueryGraph, scaled_distance
from nsm.data.domains.kg.rules import Fact
from nsm.data.domains.kg.schema import EXTRA_FEATURES
from nsm.data.domains.kg.subgraph import MAX_SUBGRAPH_ENTITIES
from nsm.data.graph import Edges, Sample, build_graph
from nsm.data.triples import DomainSchema
from nsm.errors import NSMError

SPLIT_FILES = {"train": "train.txt", "val": "valid.txt", "test": "test.txt"}
REAL_ENTITY_TYPE = "entity"


@dataclass
class KGFiles:
    """A real KG read from ``directory``: names, each split's triples with the line they are on,
    and a fingerprint of the files' content."""

    directory: Path
    entities: list[str]
    relations: list[str]
    triples: dict[str, dict[Fact, int]]
    fingerprint: str

    def queries(self, split: str) -> list[Fact]:
        """The split file's triples that train.txt lacks (a train triple is an edge, never a query)."""
        return [fact for fact in self.triples[split] if split == "train" or fact not in self.triples["train"]]

    @property
    def known(self) -> set[Fact]:
        """Every triple some file lists: the true ones."""
        return {fact for triples in self.triples.values() for fact in triples}

    @property
    def schema(self) -> DomainSchema:
        """The graphs' vocabulary: the model has one relation per relation name of the files."""
        return DomainSchema(name="kg", relations=tuple(self.relations), node_types={REAL_ENTITY_TYPE: 1},
                            num_relations=len(self.relations), extra_features=EXTRA_FEATURES)


def read_kg_dir(kg_dir: str | Path, relations: Sequence[str] | None = None) -> KGFiles:
    """Read and check ``train.txt``, ``valid.txt`` and ``test.txt`` (head<TAB>relation<TAB>tail).

    ``relations`` fixes the relation vocabulary (a trained run's, to evaluate it on another graph):
    the files may use any of its names, and a name outside it is refused. Without it the vocabulary
    is train.txt's relations in order of first appearance.
    """
    directory = Path(kg_dir)
    if not directory.is_dir():
        raise NSMError(f"knowledge-graph directory {directory} does not exist; expected a directory "
                       f"with {', '.join(SPLIT_FILES.values())}")
    digest = hashlib.sha256()
    entity_ids: dict[str, int] = {}
    vocabulary: dict[str, None] = dict.fromkeys(relations or ())
    triples: dict[str, dict[Fact, int]] = {}
    for split, file_name in SPLIT_FILES.items():
        path = directory / file_name
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise NSMError(f"cannot read {path}: {exc.strerror or exc}; a knowledge-graph directory needs "
                           f"{', '.join(SPLIT_FILES.values())}") from None
        digest.update(file_name.encode() + b"\0" + content + b"\0")
        try:
            # utf-8-sig: a byte-order mark (Windows editors add one) is not part of the first name.
            lines = content.decode("utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            raise NSMError(f"{path} is not UTF-8 text (byte {exc.start})") from None
        if not lines:
            raise NSMError(f"{path} is empty; expected one head<TAB>relation<TAB>tail triple per line")
        triples[split] = {}
        for number, line in enumerate(lines, start=1):
            fields = [field.strip() for field in line.split("\t")]
            if len(fields) != 3 or not all(fields):
                raise NSMError(f"{path} line {number}: expected 3 non-empty tab-separated fields "
                               f"(head, relation, tail), got {line!r}")
            head, relation, tail = fields
            if relations is not None and relation not in vocabulary:
                raise NSMError(f"{path} line {number}: relation {relation!r} is not one of the {len(vocabulary)} "
                               f"relations the model was trained on ({_listed(vocabulary)})")
            if split == "train":
                entity_ids.setdefault(head, len(entity_ids))
                entity_ids.setdefault(tail, len(entity_ids))
                vocabulary.setdefault(relation)
            else:
                unseen = next(((kind, name) for kind, name, known in [
                    ("entity", head, entity_ids), ("relation", relation, vocabulary), ("entity", tail, entity_ids)]
                    if name not in known), None)
                if unseen:
                    raise NSMError(f"{path} line {number}: {unseen[0]} {unseen[1]!r} does not occur in "
                                   f"{directory / SPLIT_FILES['train']}; valid/test triples must use train's "
                                   f"entities and relations")
            triples[split].setdefault((entity_ids[head], relation, entity_ids[tail]), number)
    return KGFiles(directory, list(entity_ids), list(vocabulary), triples, digest.hexdigest()[:16])


def _listed(names: Iterable[str], most: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:most]) + (f", ... ({len(names) - most} more)" if len(names) > most else "")


class FileGraph(QueryGraph):
    """A real KG's train graph; the oracle is the files: a query holds iff one of them lists it."""

    def __init__(self, files: KGFiles, hops: int, rng: random.Random, max_entities: int = MAX_SUBGRAPH_ENTITIES):
        self.listed: dict[Fact, tuple[str, int]] = {}
        for split, file_name in SPLIT_FILES.items():
            for fact, line in files.triples[split].items():
                self.listed.setdefault(fact, (file_name, line))
        kinds = [REAL_ENTITY_TYPE] * len(files.entities)
        super().__init__(files.triples["train"], files.entities, kinds, set(self.listed), hops, rng, max_entities)

    def query_graph(self, query: Fact, schema: DomainSchema, node_feature_dim: int) -> Data:
        """The graph of :meth:`query_sample` built straight from ids: ranking scores ~10^5
        candidates, and going through names and triple objects took three times as long."""
        subgraph = self.extractor.extract(query[0], query[2], self.hiding(query))
        position = {entity: i for i, entity in enumerate(dict.fromkeys(subgraph.entities))}
        far = self.hops + 1
        extras = [[0.0, 0.0]] * len(position)
        for entity, dh, dt in zip(subgraph.entities, subgraph.dist_to_head, subgraph.dist_to_tail):
            extras[position[entity]] = [scaled_distance(dh, far), scaled_distance(dt, far)]
        relation_ids = schema.relation_vocab
        edges = Edges([position[h] for h, _, _ in subgraph.facts], [position[t] for _, _, t in subgraph.facts],
                      [relation_ids.id(r) for _, r, _ in subgraph.facts], [1.0] * len(subgraph.facts),
                      [1] * len(subgraph.facts))
        head, relation, tail = query
        return build_graph(schema, node_feature_dim, [schema.node_type_vocab.id(REAL_ENTITY_TYPE)] * len(position),
                           extras, edges, int(query in self.listed),
                           (position[head], relation_ids.id(relation), position[tail]))

    def explain(self, query: Fact, facts: list[Fact]) -> tuple[int, str]:
        if query in self.listed:
            file_name, line = self.listed[query]
            return 1, f"listed in {file_name} line {line}"
        return 0, f"not among the known triples of {', '.join(SPLIT_FILES.values())}"


def file_samples(files: KGFiles, num_samples: int, hops: int, seed: int,
                 max_entities: int = MAX_SUBGRAPH_ENTITIES) -> dict[str, list[Sample]]:
    """Samples of every split of a real KG: the split's triples are the positives, at most
    ``split_sizes(num_samples)[split] // 2`` of them (drawn at random from a larger file).

    A valid/test triple that train.txt lists too is skipped: it is an edge of the train graph. A split
    left without samples is refused here, not after an epoch of training.
    """
    rng = random.Random(f"kg-files/{seed}")
    graph = FileGraph(files, hops, rng, max_entities)
    taken: set[Fact] = set()  # shared: a triple listed twice, or a corruption drawn twice, serves one split
    train = files.directory / SPLIT_FILES["train"]
    splits = {}
    for split, size in split_sizes(num_samples).items():
        path = files.directory / SPLIT_FILES[split]
        listed = files.queries(split)
        if not listed:
            raise NSMError(f"every triple of {path} is also in {train}, so the {split} split would have no "
                           f"samples (a train triple is an edge of the graph, never a query); {path.name} "
                           f"must hold triples that {train.name} lacks")
        queries = rng.sample(listed, size // 2) if len(listed) > size // 2 else listed
        # Negatives are never listed triples, so a taken query was asked by valid.txt (test.txt only).
        asked = all(query in taken for query in queries)
        splits[split] = graph.samples(queries, rng, taken)
        if not splits[split]:
            cause = (f"all its triples that {train.name} lacks are queries of {SPLIT_FILES['val']} already "
                     f"(a triple serves one split)" if asked else
                     "none of its triples can be corrupted into a triple that no file lists")
            raise NSMError(f"{path} gives no {split} samples: {cause}")
    return splits
