"""Semantic triples and the vocabularies that turn their names into ids.

A triple states ``subject --predicate--> object`` with a confidence in [0, 1]
at one of three levels of abstraction:

* level 1 — concrete facts and actions,
* level 2 — mid-level structure (subgoals, mechanisms, capabilities),
* level 3 — abstract goals and the query itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping

LEVELS = (1, 2, 3)


@dataclass(frozen=True)
class SemanticTriple:
    subject: str
    predicate: str
    object: str
    confidence: float = 1.0
    level: int = 1

    def __post_init__(self) -> None:
        # The common case in one expression: a dataset's load builds millions of triples (issue 19).
        confidence = self.confidence
        if (type(self.subject) is str and self.subject and type(self.predicate) is str and self.predicate
                and type(self.object) is str and self.object and type(confidence) in (float, int)
                and 0.0 <= confidence <= 1.0 and self.level in LEVELS):
            return
        for field in ("subject", "predicate", "object"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise ValueError(f"triple {field} must be a non-empty string, got {value!r}")
        if not (isinstance(self.confidence, (int, float)) and math.isfinite(self.confidence)
                and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"triple confidence must be in [0, 1], got {self.confidence!r}")
        if self.level not in LEVELS:
            raise ValueError(f"triple level must be one of {LEVELS}, got {self.level!r}")

    def as_tuple(self) -> tuple[str, str, str, float, int]:
        return (self.subject, self.predicate, self.object, float(self.confidence), self.level)

    def __str__(self) -> str:
        return f"({self.subject}, {self.predicate}, {self.object}) conf={self.confidence:.2f} L{self.level}"


class Vocabulary:
    """A fixed, ordered set of names with stable integer ids (ids follow insertion order)."""

    def __init__(self, names: Iterable[str] = (), *, kind: str = "name"):
        self.kind = kind
        self._ids: dict[str, int] = {}
        for name in names:
            self.add(name)

    def add(self, name: str) -> int:
        if name not in self._ids:
            self._ids[name] = len(self._ids)
        return self._ids[name]

    def id(self, name: str) -> int:
        try:
            return self._ids[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self._ids)}") from None

    def name(self, index: int) -> str:
        return self.names[index]

    @property
    def names(self) -> list[str]:
        return list(self._ids)

    def __contains__(self, name: object) -> bool:
        return name in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self):
        return iter(self._ids)

    def __repr__(self) -> str:
        return f"Vocabulary({self.kind}, {len(self)} names)"


@dataclass(frozen=True)
class DomainSchema:
    """What a domain's graphs are made of; the single source of their vocabularies.

    ``relations`` fixes relation ids (their position); ``node_types`` maps each node type to
    its level; ``extra_features`` names the numeric per-node features a domain adds after the
    one-hot type and level blocks. ``num_relations`` is the model's relation budget: every
    relation id stays below it.
    """

    name: str
    relations: tuple[str, ...]
    node_types: Mapping[str, int]
    num_relations: int
    extra_features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(set(self.relations)) != len(self.relations):
            raise ValueError(f"{self.name}: duplicate relation names")
        if len(self.relations) > self.num_relations:
            raise ValueError(f"{self.name}: {len(self.relations)} relations exceed num_relations={self.num_relations}")
        for node_type, level in self.node_types.items():
            if level not in LEVELS:
                raise ValueError(f"{self.name}: node type {node_type!r} has level {level}, not in {LEVELS}")

    @cached_property
    def relation_vocab(self) -> Vocabulary:
        return Vocabulary(self.relations, kind=f"{self.name} relation")

    @cached_property
    def node_type_vocab(self) -> Vocabulary:
        return Vocabulary(self.node_types, kind=f"{self.name} node type")

    @property
    def min_feature_dim(self) -> int:
        """Width of the meaningful part of ``x``: type one-hot, level one-hot, extras."""
        return len(self.node_types) + len(LEVELS) + len(self.extra_features)
