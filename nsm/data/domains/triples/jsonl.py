"""Your own labelled triple graphs in JSON Lines: reading and checking them, their vocabularies.

One sample a line::

    {"triples": [[subject, predicate, object, confidence, level], ...], "label": 0,
     "id": "p17", "node_types": {"a": "block", ...}, "node_features": {"a": [0.5], ...},
     "split": "train"}

``triples`` (at least one) and ``label`` (an integer) are required; ``confidence`` is in [0, 1]
and ``level`` one of 1, 2, 3. ``id`` (default: the line number) names the sample in messages and
``nsm data --show``. ``node_types`` names the type of every node: without it a node's type is
its level (``L1``, ``L2``, ``L3``: the lowest level of the triples it takes part in).
``node_features`` gives nodes numbers of their own (a step's position in a plan, a measurement),
as many for every node of the dataset that has them; the others get zeros. They follow the
one-hot type and level in ``x``. ``split``
is ``train``, ``val`` (or ``valid``) or ``test``, for every sample or for none; without it the
samples are split 70/15/15 per class, by the seed. Blank lines are skipped. The path is a
``.jsonl`` file or a directory of them, read in name order.

The vocabularies come from the data: relations in order of first appearance, node types too
(each at the lowest level of any triple its nodes take part in), classes the sorted label values
(a sample's class id is its label's position among them). Every bad line is refused with one line
naming the file and the line, before anything is cached.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from nsm.data.bulk import collector_paused
from nsm.data.graph import Sample
from nsm.data.triples import LEVELS, DomainSchema, SemanticTriple
from nsm.errors import NSMError

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
SPLIT_SHARES = {"val": 0.15, "test": 0.15}  # train: the rest
TRIPLE_FIELDS = "[subject, predicate, object, confidence, level]"
SAMPLE_KEYS = {"triples", "label", "id", "node_types", "node_features", "split"}


@dataclass(frozen=True)
class LabelledSample:
    """One line's sample, as read: where it is, its own split (or ``None``) and label value."""

    source: str  # "FILE line N"
    sample: Sample
    label: int
    split: str | None
    levels: dict[str, int]  # each node a triple names, with the lowest level of its triples (lowest_levels)


@dataclass(frozen=True)
class LabelledTriples:
    """A dataset of labelled triple graphs read from ``paths``; ``fingerprint`` hashes their content."""

    paths: tuple[Path, ...]
    samples: tuple[LabelledSample, ...]
    schema: DomainSchema
    classes: tuple[int, ...]
    fingerprint: str

    def splits(self, seed: int) -> dict[str, list[Sample]]:
        """The samples of train, val and test: the given splits, else 70/15/15 per class by ``seed``."""
        splits: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
        if self.samples[0].split is not None:
            for item in self.samples:
                splits[item.split].append(item.sample)
        else:
            rng = random.Random(f"triples/{seed}")
            for label in self.classes:
                members = [item.sample for item in self.samples if item.label == label]
                rng.shuffle(members)
                sizes = {split: round(share * len(members)) for split, share in SPLIT_SHARES.items()}
                splits["val"] += members[:sizes["val"]]
                splits["test"] += members[sizes["val"]:sizes["val"] + sizes["test"]]
                splits["train"] += members[sizes["val"] + sizes["test"]:]
        where = _listed_paths(self.paths)
        for split, samples in splits.items():
            if not samples:
                how = ("no sample has \"split\": \"" + split + "\"" if self.samples[0].split is not None else
                       f"{len(self.samples)} samples split 70/15/15 per class leave it none")
                raise NSMError(f"{where}: the {split} split is empty ({how}); give every sample a \"split\" "
                               f"or use more samples")
        return splits


def data_files(path: str | Path) -> tuple[Path, ...]:
    """The JSON Lines files of ``path``: the file itself, or a directory's ``*.jsonl`` in name order."""
    path = Path(path)
    if path.is_dir():
        files = tuple(sorted(path.glob("*.jsonl")))
        if not files:
            raise NSMError(f"{path} holds no .jsonl file; expected labelled triple graphs in JSON Lines, "
                           f"one sample a line")
        return files
    if not path.is_file():
        raise NSMError(f"{path} does not exist; --data takes a .jsonl file or a directory of them")
    return (path,)


def fingerprint(paths: tuple[Path, ...]) -> str:
    """A digest of the files' names and content: a cache made from other content is never used."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        except OSError as exc:
            raise NSMError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()[:16]


def read_labelled_triples(path: str | Path) -> LabelledTriples:
    """Read and check every sample under ``path`` (see the module docstring)."""
    paths = data_files(path)
    return read_files(paths, fingerprint(paths))


# The files read last, kept for the next call: a job reads its data for the vocabulary, then each split.
_last_read: dict[tuple[tuple[Path, ...], str], LabelledTriples] = {}


def read_files(paths: tuple[Path, ...], digest: str) -> LabelledTriples:
    """:func:`read_labelled_triples` of ``paths``, whose content hashes to ``digest``; the last
    files read are kept in memory (:func:`last_read`, :func:`forget_read`)."""
    key = (paths, digest)
    if key not in _last_read:
        with collector_paused():
            data = _read(paths, digest)
        _last_read.clear()
        _last_read[key] = data
    return _last_read[key]


def last_read(paths: tuple[Path, ...], digest: str) -> LabelledTriples | None:
    """The data of ``paths`` if they were the last files read (with this content), else ``None``."""
    return _last_read.get((paths, digest))


def forget_read() -> None:
    _last_read.clear()


def _read(paths: tuple[Path, ...], digest: str) -> LabelledTriples:
    samples: list[LabelledSample] = []
    relations: dict[str, None] = {}
    type_levels: dict[str, int] = {}
    features: tuple[int, str] | None = None  # the dataset's count of node features, and the line that set it
    for path in paths:
        try:
            with open(path, "rb") as lines:  # bytes: a line that is not UTF-8 is named by its number
                for number, raw in enumerate(lines, start=1):
                    source = f"{path} line {number}"
                    try:
                        # utf-8-sig: a byte-order mark (Windows editors add one) is not JSON.
                        line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                    except UnicodeDecodeError:
                        raise NSMError(f"{source}: not UTF-8 text") from None
                    if line.strip():
                        item = _parse_line(line, source)
                        samples.append(item)
                        for triple in item.sample.triples:
                            relations.setdefault(triple.predicate)
                        for name, node_type in item.sample.node_types.items():
                            level = item.levels.get(name, 1)  # a node no triple names: concrete
                            type_levels[node_type] = min(level, type_levels.get(node_type, level))
                        if item.sample.extras:
                            count = len(next(iter(item.sample.extras.values())))
                            features = features or (count, source)
                            if count != features[0]:
                                raise NSMError(f"{source}: {count} node features, but {features[1]} gives "
                                               f"{features[0]}; every node with \"node_features\" has as many")
        except OSError as exc:
            raise NSMError(f"cannot read {path}: {exc.strerror or exc}") from None
    where = _listed_paths(paths)
    if not samples:
        raise NSMError(f"{where}: no samples; expected one JSON object a line")
    given = [item.split is not None for item in samples]
    if any(given) and not all(given):
        with_split, without = samples[given.index(True)], samples[given.index(False)]
        raise NSMError(f"{without.source}: no \"split\", but {with_split.source} has one; give every sample a "
                       f"\"split\" or none (then they are split 70/15/15 by the seed)")
    classes = tuple(sorted({item.label for item in samples}))
    if len(classes) < 2:
        raise NSMError(f"{where}: every sample has label {classes[0]}; a classifier needs at least two classes")
    class_ids = {label: i for i, label in enumerate(classes)}
    for item in samples:
        item.sample.label = class_ids[item.label]
    schema = DomainSchema(name="triples", relations=tuple(relations), node_types=type_levels,
                          num_relations=len(relations),
                          extra_features=tuple(f"feature {i}" for i in range(1, (features or (0,))[0] + 1)))
    return LabelledTriples(paths, tuple(samples), schema, classes, digest)


def lowest_levels(triples: list[SemanticTriple]) -> dict[str, int]:
    """Each node a triple names, with the lowest level of the triples it takes part in."""
    levels: dict[str, int] = {}
    for triple in triples:
        for name in (triple.subject, triple.object):
            levels[name] = min(triple.level, levels.get(name, triple.level))
    return levels


def _parse_line(line: str, source: str) -> LabelledSample:
    try:
        record = json.loads(line.rstrip())
    except json.JSONDecodeError as exc:
        raise NSMError(f"{source}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise NSMError(f"{source}: expected a JSON object {{\"triples\": [...], \"label\": ...}}, "
                       f"got {type(record).__name__}")
    unknown = set(record) - SAMPLE_KEYS
    if unknown:
        raise NSMError(f"{source}: unknown key {sorted(unknown)[0]!r}; a sample has {', '.join(sorted(SAMPLE_KEYS))}")
    for key in ("triples", "label"):
        if key not in record:
            raise NSMError(f"{source}: no {key!r}; every sample needs \"triples\" and \"label\"")
    label = record["label"]
    if not isinstance(label, int) or isinstance(label, bool):
        raise NSMError(f"{source}: label {label!r} is not an integer; labels are class ids such as 0 and 1")
    name = record.get("id", source.rsplit(" ", 1)[-1])
    split = record.get("split")
    if split is not None and split not in SPLIT_NAMES:
        raise NSMError(f"{source}: split {split!r} is not one of train, val, test")
    triples = _triples(record["triples"], source)
    levels = lowest_levels(triples)
    node_types = _node_types(record.get("node_types"), levels, source)
    sample = Sample(triples=triples, node_types=node_types, label=label,
                    reason=f"label {label} given in {source} (id {name})",
                    extras=_node_features(record.get("node_features"), node_types, source))
    return LabelledSample(source, sample, label, SPLIT_NAMES.get(split), levels)


def _triples(values, source: str) -> list[SemanticTriple]:
    if not isinstance(values, list):
        raise NSMError(f"{source}: \"triples\" must be a list of {TRIPLE_FIELDS}, got {type(values).__name__}")
    if not values:
        raise NSMError(f"{source}: the graph is empty (no triples); every sample needs at least one triple")
    # The common case in one pass, SemanticTriple's own checks with it; only when a triple fails
    # them is each looked at again, and the first to fail named.
    try:
        triples = [SemanticTriple(*fields) for fields in values if _plain_triple(fields)]
        if len(triples) == len(values):
            return triples
    except ValueError:
        pass
    position, fields = next((position, fields) for position, fields in enumerate(values, start=1)
                            if not (_plain_triple(fields) and _valid_triple(fields)))
    raise NSMError(f"{source}: triple {position} {_triple_problem(fields)}")


def _plain_triple(fields) -> bool:
    """Five fields, the confidence a number and the level an integer (not a bool, which Python counts as one)."""
    return type(fields) is list and len(fields) == 5 and type(fields[3]) in (float, int) and type(fields[4]) is int


def _valid_triple(fields: list) -> bool:
    try:
        SemanticTriple(*fields)
    except ValueError:
        return False
    return True


def _triple_problem(fields) -> str:
    """What is wrong with a triple that SemanticTriple refused."""
    if not isinstance(fields, list) or len(fields) != 5:
        found = f"{len(fields)} fields" if isinstance(fields, list) else type(fields).__name__
        return f"has {found}; expected {TRIPLE_FIELDS}"
    subject, predicate, obj, confidence, level = fields
    if not (isinstance(confidence, (int, float)) and not isinstance(confidence, bool) and 0 <= confidence <= 1):
        return f"has confidence {confidence!r}; expected a number in [0, 1]"
    if not (isinstance(level, int) and not isinstance(level, bool) and level in LEVELS):
        return f"has level {level!r}; expected 1, 2 or 3"
    part, value = next((part, value) for part, value in (("subject", subject), ("predicate", predicate),
                                                         ("object", obj)) if not isinstance(value, str) or not value)
    return f"has {part} {value!r}; expected a non-empty string"


def _node_types(given, levels: dict[str, int], source: str) -> dict[str, str]:
    """Every node's type, in order of first appearance (which fixes node ids); ``levels``: the
    sample's :func:`lowest_levels`, its nodes in the order the triples name them."""
    if given is None:
        return {name: f"L{level}" for name, level in levels.items()}
    if not isinstance(given, dict) or not all(isinstance(v, str) and v for v in given.values()):
        raise NSMError(f"{source}: \"node_types\" must map each node to a non-empty type name")
    if not levels.keys() <= given.keys():
        name = next(name for name in levels if name not in given)
        raise NSMError(f"{source}: node {name!r} of a triple has no entry in \"node_types\"")
    return dict(given)


def _node_features(given, node_types: dict[str, str], source: str) -> dict[str, tuple[float, ...]]:
    """Each listed node's numbers, as many for every node of the sample."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise NSMError(f"{source}: \"node_features\" must map nodes to lists of numbers, got {type(given).__name__}")
    features = {}
    for name, values in given.items():
        if name not in node_types:
            raise NSMError(f"{source}: \"node_features\" names {name!r}, which is not a node of the sample")
        if not (isinstance(values, list) and values and all(
                type(v) in (int, float) and math.isfinite(v) for v in values)):
            raise NSMError(f"{source}: node {name!r} has features {values!r}; expected a non-empty list of "
                           f"finite numbers")
        features[name] = tuple(float(v) for v in values)
    if len({len(values) for values in features.values()}) > 1:
        raise NSMError(f"{source}: its nodes have different numbers of \"node_features\"; give each as many")
    return features


def _listed_paths(paths: tuple[Path, ...]) -> str:
    return str(paths[0]) if len(paths) == 1 else f"{paths[0].parent} ({len(paths)} files)"
