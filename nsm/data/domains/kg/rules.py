"""The synthetic knowledge graph's rule language and closure.

Four kinds of rule: inverses (parent_of ⇔ child_of), symmetric relations (married_to,
sibling_of), implications (capital_of ⇒ located_in) and two-step compositions (born_in ∘
located_in ⇒ nationality, ...). ``KnowledgeGraph`` closes a set of facts under them by semi-naive
forward chaining; ``derivation`` writes out the rule application that proves a fact, which is the
synthetic domain's oracle.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

Fact = tuple[int, str, int]  # (head entity id, relation name, tail entity id)


@dataclass(frozen=True)
class Inverse:
    """``relation(x, y) ⇔ inverse(y, x)``."""

    relation: str
    inverse: str

    @property
    def body_relations(self) -> tuple[str, ...]:
        return (self.relation, self.inverse)

    @property
    def head_relations(self) -> tuple[str, ...]:
        return (self.relation, self.inverse)

    def consequences(self, fact: Fact, kg: FactIndex) -> Iterator[Fact]:
        head, relation, tail = fact
        yield (tail, self.inverse if relation == self.relation else self.relation, head)

    def derivation(self, head: int, relation: str, tail: int, kg: FactIndex) -> tuple[Fact, ...] | None:
        body = (tail, self.inverse if relation == self.relation else self.relation, head)
        return (body,) if body in kg.facts else None


@dataclass(frozen=True)
class Symmetric:
    """``relation(x, y) ⇒ relation(y, x)``."""

    relation: str

    @property
    def body_relations(self) -> tuple[str, ...]:
        return (self.relation,)

    head_relations = body_relations

    def consequences(self, fact: Fact, kg: FactIndex) -> Iterator[Fact]:
        yield (fact[2], self.relation, fact[0])

    def derivation(self, head: int, relation: str, tail: int, kg: FactIndex) -> tuple[Fact, ...] | None:
        body = (tail, relation, head)
        return (body,) if body in kg.facts else None


@dataclass(frozen=True)
class Implication:
    """``body(x, y) ⇒ head(x, y)``."""

    body: str
    head: str

    @property
    def body_relations(self) -> tuple[str, ...]:
        return (self.body,)

    @property
    def head_relations(self) -> tuple[str, ...]:
        return (self.head,)

    def consequences(self, fact: Fact, kg: FactIndex) -> Iterator[Fact]:
        yield (fact[0], self.head, fact[2])

    def derivation(self, head: int, relation: str, tail: int, kg: FactIndex) -> tuple[Fact, ...] | None:
        body = (head, self.body, tail)
        return (body,) if body in kg.facts else None


@dataclass(frozen=True)
class Composition:
    """``first(x, y) ∧ second(y, z) ⇒ head(x, z)``."""

    first: str
    second: str
    head: str

    @property
    def body_relations(self) -> tuple[str, ...]:
        return (self.first, self.second)

    @property
    def head_relations(self) -> tuple[str, ...]:
        return (self.head,)

    def consequences(self, fact: Fact, kg: FactIndex) -> Iterator[Fact]:
        # Both branches run when first == second (grandparent_of = parent_of ∘ parent_of).
        x, relation, y = fact
        if relation == self.first:
            yield from ((x, self.head, z) for z in kg.tails.get((self.second, y), ()))
        if relation == self.second:
            yield from ((w, self.head, y) for w in kg.heads.get((self.first, x), ()))

    def derivation(self, head: int, relation: str, tail: int, kg: FactIndex) -> tuple[Fact, ...] | None:
        middles = kg.tails.get((self.first, head), set()) & kg.heads.get((self.second, tail), set())
        if not middles:
            return None
        middle = min(middles)
        return ((head, self.first, middle), (middle, self.second, tail))


Rule = Inverse | Symmetric | Implication | Composition

# Every rule body has look-alikes: relations of the same signature that no rule uses with it
# (lives_in beside born_in, invests_in beside works_for, has_branch_in beside headquartered_in,
# lectures_at beside studied_at, supports beside plays_for). They give the hard negatives: a path
# of the body's shape and types to the corrupted end that differs from a rule body in one relation.
RULES: tuple[Rule, ...] = (
    *(Inverse(r, s) for r, s in [
        ("parent_of", "child_of"), ("born_in", "birthplace_of"), ("lives_in", "residence_of"),
        ("located_in", "contains"), ("capital_of", "has_capital"), ("official_language", "spoken_in"),
        ("works_for", "employs"), ("invests_in", "has_investor"), ("founded_by", "founder_of"),
        ("headquartered_in", "headquarters_of"), ("has_branch_in", "hosts_branch_of"),
        ("studied_at", "has_alumnus"), ("lectures_at", "has_lecturer"), ("campus_in", "hosts_campus"),
        ("plays_for", "has_player"), ("supports", "has_supporter"), ("based_in", "home_ground_of"),
    ]),
    *(Symmetric(r) for r in ("married_to", "borders", "friend_of", "sibling_of", "colleague_of")),
    Implication("capital_of", "located_in"),
    Implication("founder_of", "works_for"),
    Composition("born_in", "located_in", "nationality"),
    Composition("works_for", "headquartered_in", "works_in"),
    Composition("headquartered_in", "located_in", "registered_in"),
    Composition("studied_at", "campus_in", "studied_in"),
    Composition("plays_for", "based_in", "plays_in"),
    Composition("parent_of", "parent_of", "grandparent_of"),
    Composition("child_of", "parent_of", "sibling_of"),
    Composition("parent_of", "married_to", "parent_in_law_of"),
    Composition("works_for", "employs", "colleague_of"),
)
# The relations asked about: the compositions' heads. No implication or composition uses them, so
# hiding a query fact and its twin never leaves behind a fact derived from it.


def twin_relations(relation: str, rules: Sequence[Rule] = RULES) -> frozenset[str]:
    """The relations whose facts restate a ``relation`` fact: itself and its inverse, if any."""
    return frozenset({relation, *(r for rule in rules if isinstance(rule, Inverse)
                                  and relation in rule.head_relations for r in rule.head_relations)})


def restatements(fact: Fact) -> list[Fact]:
    """The facts that say what ``fact`` says: ``(h, r', t)`` and ``(t, r', h)`` for each twin r'."""
    head, relation, tail = fact
    return [f for r in twin_relations(relation) for f in ((head, r, tail), (tail, r, head))]


# --- facts and their closure ------------------------------------------------------------------


class FactIndex:
    """A set of facts indexed by ``(relation, head) -> tails`` and ``(relation, tail) -> heads``."""

    def __init__(self, facts: Iterable[Fact] = ()):
        self.facts: set[Fact] = set()
        # Plain dicts: a key exists only for a stored fact, so ``key in tails`` means "has a tail".
        self.tails: dict[tuple[str, int], set[int]] = {}
        self.heads: dict[tuple[str, int], set[int]] = {}
        for fact in facts:
            self._store(fact)

    def _store(self, fact: Fact) -> None:
        head, relation, tail = fact
        self.facts.add(fact)
        self.tails.setdefault((relation, head), set()).add(tail)
        self.heads.setdefault((relation, tail), set()).add(head)

    def __contains__(self, fact: object) -> bool:
        return fact in self.facts

    def __len__(self) -> int:
        return len(self.facts)


class KnowledgeGraph(FactIndex):
    """Facts closed under ``rules``: adding a fact adds everything it implies, transitively.

    Semi-naive forward chaining: a new fact is matched only against facts already stored, so each
    pair of body facts meets exactly once, when the later of the two arrives. No entity is related
    to itself (which keeps, e.g., sibling_of(x, x) out of child_of ∘ parent_of).
    """

    def __init__(self, rules: Sequence[Rule] = RULES, facts: Iterable[Fact] = ()):
        super().__init__()
        self.rules = tuple(rules)
        self._triggered: defaultdict[str, list[Rule]] = defaultdict(list)
        for rule in self.rules:
            for relation in dict.fromkeys(rule.body_relations):
                self._triggered[relation].append(rule)
        for fact in facts:
            self.add(fact)

    def add(self, fact: Fact) -> None:
        pending = [fact]
        while pending:
            fact = pending.pop()
            if fact[0] == fact[2] or fact in self.facts:
                continue
            self._store(fact)
            for rule in self._triggered[fact[1]]:
                pending.extend(rule.consequences(fact, self))


def derivation(query: Fact, facts: FactIndex, names: Sequence[str], rules: Sequence[Rule] = RULES) -> str | None:
    """One rule application deriving ``query`` from ``facts``, written out with entity ``names``;
    None if there is none."""

    def written(fact: Fact) -> str:
        return f"{fact[1]}({names[fact[0]]}, {names[fact[2]]})"

    head, relation, tail = query
    for rule in rules:
        if relation in rule.head_relations and (body := rule.derivation(head, relation, tail, facts)):
            return " ∧ ".join(map(written, body)) + " ⇒ " + written(query)
    return None
