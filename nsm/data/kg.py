"""Knowledge graphs for link prediction: a rule-based synthetic KG, real KGs read from TSV files,
and the GraIL-style enclosing subgraph around a query triple ``(h, r, t)``.

**Synthetic worlds.** A world has ``num_entities`` typed entities (people, cities, countries,
companies, universities, sports teams, languages). Its base facts are drawn at random, each
independently of the others (born_in, lives_in, works_for, families, ...; ``friend_of`` pairs fill
the world up to about ``num_triples`` facts), then closed under ``RULES``: inverses
(parent_of ⇔ child_of), symmetric relations (married_to, sibling_of), implications
(capital_of ⇒ located_in) and two-step compositions (born_in ∘ located_in ⇒ nationality, ...).
Each split draws worlds of its own, so test queries and their evidence are never in a train graph.

**Queries.** Positives are facts of the ``QUERY_RELATIONS`` (the compositions' heads), so each
is inferable from a two-fact rule body, which its subgraph always contains. No implication or
composition uses a query relation, so nothing but its inverse or symmetric twin is derived from a
query fact. A world hides all its queries and their twins from its graph: no query of any split
is ever an edge of an input graph. Negatives replace the head or the tail of a positive with an entity of
the same type, verified false in the closed world, and as hard as the world allows: near the
kept end, at the positive's h–t distance, and linked to it through entities like the positive's
rule body (see ``QueryGraph.corrupt``). Every rule-body relation has a look-alike of the same
signature that no rule uses with it (lives_in beside born_in, invests_in beside works_for, ...),
so a negative's ends are typically joined by a path of the body's shape that differs in one
relation: the classes differ in how facts connect, not in what or how many facts there are.

**Enclosing subgraph**, over instance facts with undirected distances:

* hidden first, for a positive and its negative alike: in a synthetic world every fact of ``r``
  (or a twin) at ``h`` or ``t``, so that the answer is never a lookup and neither end shows how
  many ``r`` facts it has; in a real KG only the query triple itself, as GraIL does (hiding more
  cuts the ends apart: on WN18RR it removes the reverse edge of most positives, and "the ends do
  not meet" then marks the positives);
* nodes: the entities within ``hops`` of both ``h`` and ``t`` (GraIL's intersection), widened to
  all those within ``hops - 1`` of either. The widening matters: with the intersection alone,
  whether ``h``'s born_in fact is in the graph at all would give a nationality query away; here
  every relation at either end is visible whatever the label;
* at most ``max_entities`` entities (default ``MAX_SUBGRAPH_ENTITIES``): those adjacent to both
  ends first (the middles of the rule bodies), then by distance to the nearer end, at random
  among equals.

Each entity is linked to its type node (``is_a``, level 2) and each type to its category
(``subclass_of``, level 3). Node features are the node's type and level plus GraIL's double-radius
labels ``dist_to_head`` and ``dist_to_tail``: the distance inside the subgraph divided by
``hops + 1`` and capped at 1, so 0 marks ``h`` (or ``t``) and 1 means farther than ``hops`` or
unreachable (as for type and category nodes). Every fact has confidence 1.

**Real KGs** (``train.txt``, ``valid.txt``, ``test.txt``: head, relation, tail separated by tabs,
the FB15k-237 / WN18RR layout) give the same samples with a single node type ``entity``: every
split's subgraphs come from the train graph, a split's positives are its file's triples and the
negatives corrupt them into triples listed in none of the three files. The oracle is the files.
A negative keeps the positive's head–tail distance (``QueryGraph.corrupt``), so neither whether
the ends meet nor how far apart they are tells the classes apart (``benchmarks/label_leakage.py``
checks both). The relation vocabulary is the files' own. A valid or test file that gives no
samples (all its triples in train.txt, say) is refused.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Container, Iterable, Iterator, Sequence

from torch_geometric.data import Data

from nsm.data.base import split_sizes
from nsm.data.graph import Edges, Sample, build_graph, sample_to_data
from nsm.data.triples import DomainSchema, SemanticTriple
from nsm.errors import NSMError

Fact = tuple[int, str, int]  # (head entity id, relation name, tail entity id)

NUM_RELATIONS = 66  # the synthetic world's relation budget; a real KG's is its own relations
MAX_SUBGRAPH_ENTITIES = 24
EXTRA_FEATURES = ("dist_to_head", "dist_to_tail")

# --- the synthetic world's vocabulary ---------------------------------------------------------

# Entity type -> its category; categories may themselves have a parent category.
ENTITY_TYPES = {
    "person": "agent", "company": "organisation", "university": "organisation",
    "sports_team": "organisation", "city": "place", "country": "place", "language": "abstraction",
}
CATEGORY_PARENTS = {"organisation": "agent"}
# Share of a world's entities per type; people take what is left. Each type gets at least 2
# entities, so that every corruption has a candidate.
TYPE_SHARES = {"city": 0.16, "country": 0.06, "company": 0.1, "university": 0.06, "sports_team": 0.05,
               "language": 0.04}
MIN_PER_TYPE = 2
MIN_WORLD_ENTITIES = 30


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
QUERY_RELATIONS = tuple(rule.head for rule in RULES if isinstance(rule, Composition))
TYPE_RELATIONS = ("is_a", "subclass_of")

SYNTHETIC_SCHEMA = DomainSchema(
    name="kg",
    relations=tuple(dict.fromkeys(r for rule in RULES for r in (*rule.body_relations, *rule.head_relations)))
    + TYPE_RELATIONS,
    node_types={**{t: 1 for t in ENTITY_TYPES}, "entity_type": 2, "category": 3},
    num_relations=NUM_RELATIONS,
    extra_features=EXTRA_FEATURES,
)


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


# --- synthetic worlds -------------------------------------------------------------------------


@dataclass
class World:
    """A closed synthetic KG: entity ``names`` and ``types`` (by entity id) and its facts."""

    names: list[str]
    types: list[str]
    kg: KnowledgeGraph


def type_counts(num_entities: int) -> dict[str, int]:
    counts = {t: max(MIN_PER_TYPE, round(share * num_entities)) for t, share in TYPE_SHARES.items()}
    return {"person": num_entities - sum(counts.values()), **counts}


def generate_world(rng: random.Random, num_entities: int, num_triples: int, prefix: str) -> World:
    """Random base facts closed under ``RULES``; ``friend_of`` pairs fill up to ``num_triples`` facts.

    Every base fact is drawn independently (a child's birthplace has nothing to do with its
    parents'), so nothing but the rules ties one fact to another.
    """
    types = [t for t, n in type_counts(num_entities).items() for _ in range(n)]
    names = [f"{prefix}:{t}{i}" for i, t in enumerate(types)]
    of_type = {t: [e for e, u in enumerate(types) if u == t] for t in ENTITY_TYPES}
    people, cities, countries = of_type["person"], of_type["city"], of_type["country"]
    kg = KnowledgeGraph()

    def relate(entities: list[int], relation: str, targets: list[int], probability: float = 1.0) -> None:
        for entity in entities:
            if rng.random() < probability:
                kg.add((entity, relation, rng.choice(targets)))

    # Geography: every country gets a city (its capital) before the rest are spread at random.
    for country, capital in zip(countries, rng.sample(cities, len(countries))):
        kg.add((capital, "capital_of", country))
    relate([c for c in cities if ("located_in", c) not in kg.tails], "located_in", countries)
    relate(countries, "official_language", of_type["language"])
    for country in countries:
        kg.add((country, "borders", rng.choice([c for c in countries if c != country])))
    relate(of_type["company"], "headquartered_in", cities)
    relate(of_type["university"], "campus_in", cities)
    relate(of_type["sports_team"], "based_in", cities)

    # Families over three generations: couples of one generation parent the next.
    shuffled = rng.sample(people, len(people))
    generations = [shuffled[i::3] for i in range(3)]
    for older, younger in zip(generations, generations[1:]):
        singles = rng.sample(older, len(older))
        couples = [(a, b) for a, b in zip(singles[::2], singles[1::2])
                   if not kg.heads.get(("parent_of", a), set()) & kg.heads.get(("parent_of", b), set())]
        for a, b in couples:
            kg.add((a, "married_to", b))
        for child in younger:
            if couples:
                for parent in rng.choice(couples):
                    kg.add((parent, "parent_of", child))

    relate(people, "born_in", cities)
    relate(people, "lives_in", cities)
    # Each rule-body relation and its look-alike are equally common.
    relate(people, "works_for", of_type["company"], probability=0.5)
    relate(people, "invests_in", of_type["company"], probability=0.5)
    relate(people, "studied_at", of_type["university"], probability=0.4)
    relate(people, "lectures_at", of_type["university"], probability=0.4)
    relate(people, "plays_for", of_type["sports_team"], probability=0.2)
    relate(people, "supports", of_type["sports_team"], probability=0.2)
    relate(of_type["company"], "has_branch_in", cities)
    relate(of_type["company"], "founded_by", people)
    while len(kg) < num_triples:
        a, b = rng.sample(people, 2)
        kg.add((a, "friend_of", b))
    return World(names, types, kg)


# --- enclosing subgraphs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Hiding:
    """What a query's subgraph leaves out: the facts of ``relations`` at either end of the query,
    and the ``facts`` themselves wherever they are (each at an end of the query)."""

    relations: frozenset[str] = frozenset()
    facts: frozenset[Fact] = frozenset()

    def hides(self, fact: Fact, at_an_end: bool) -> bool:
        return fact in self.facts or (at_an_end and fact[1] in self.relations)


@dataclass
class Subgraph:
    """The enclosing subgraph of one query: ``entities`` (head first, tail second), the instance
    facts among them, each entity's distance to the head and to the tail inside the subgraph
    (``None`` if unreachable), and the head–tail distance in the whole graph (``None`` if > hops).
    """

    entities: list[int]
    facts: list[Fact]
    dist_to_head: list[int | None]
    dist_to_tail: list[int | None]
    head_tail_distance: int | None


class SubgraphExtractor:
    """Enclosing subgraphs of one graph of instance facts (see the module docstring)."""

    def __init__(self, facts: Iterable[Fact], num_entities: int, hops: int, max_entities: int,
                 priority: Sequence[float]):
        self.hops = hops
        self.max_entities = max_entities
        # Ties in the size cap are broken by a random priority, not by entity id (ids follow type).
        self.priority = priority
        self.out_facts: list[list[Fact]] = [[] for _ in range(num_entities)]
        # links[u][v]: the facts between u and v, in either direction.
        self.links: list[defaultdict[int, set[Fact]]] = [defaultdict(set) for _ in range(num_entities)]
        self._neighbours: dict[tuple[int, Hiding], set[int]] = {}
        for fact in facts:
            head, relation, tail = fact
            self.out_facts[head].append(fact)
            self.links[head][tail].add(fact)
            self.links[tail][head].add(fact)

    def relations_between(self, u: int, v: int, hiding: Hiding, at_an_end: bool) -> set[str]:
        return {fact[1] for fact in self.links[u].get(v, ()) if not hiding.hides(fact, at_an_end)}

    def neighbours(self, entity: int, hiding: Hiding) -> set[int]:
        """Entities linked to ``entity``, as an end of a query, by a fact ``hiding`` keeps (cached:
        negative sampling asks again and again; the caller must not modify the set)."""
        key = (entity, hiding)
        if key not in self._neighbours:
            self._neighbours[key] = {v for v, facts in self.links[entity].items()
                                     if any(not hiding.hides(fact, True) for fact in facts)}
        return self._neighbours[key]

    def distances(self, source: int, ends: dict[int, set[int]]) -> dict[int, int]:
        """Breadth-first distances from ``source`` up to ``hops``; ``ends`` are the entities whose
        hidden facts are removed, with their remaining neighbours."""
        distance = {source: 0}
        frontier = [source]
        for step in range(1, self.hops + 1):
            reached = []
            for u in frontier:
                for v in ends[u] if u in ends else self.links[u]:
                    if v not in distance and (v not in ends or u in ends[v]):
                        distance[v] = step
                        reached.append(v)
            frontier = reached
        return distance

    def extract(self, head: int, tail: int, hiding: Hiding) -> Subgraph:
        """The enclosing subgraph of ``head`` and ``tail``, without the facts ``hiding`` names."""
        ends = {head: self.neighbours(head, hiding), tail: self.neighbours(tail, hiding)}
        from_head, from_tail = self.distances(head, ends), self.distances(tail, ends)
        far = self.hops + 1
        ranked = []
        for entity in from_head.keys() | from_tail.keys():
            nearer, farther = sorted((from_head.get(entity, far), from_tail.get(entity, far)))
            if nearer < self.hops or farther <= self.hops:
                ranked.append((farther > 1, nearer, self.priority[entity], entity))
        ranked.sort()
        kept = [head, tail] + [e for *_, e in ranked if e != head and e != tail][: self.max_entities - 2]
        inside = set(kept)
        facts = [fact for u in kept for fact in self.out_facts[u] if fact[2] in inside
                 and not hiding.hides(fact, u in ends or fact[2] in ends)]
        adjacency: dict[int, set[int]] = {u: set() for u in kept}
        for u, _, v in facts:
            adjacency[u].add(v)
            adjacency[v].add(u)
        return Subgraph(kept, facts, _bfs(head, adjacency, kept), _bfs(tail, adjacency, kept),
                        from_head.get(tail))


def _bfs(source: int, adjacency: dict[int, set[int]], order: list[int]) -> list[int | None]:
    distance = {source: 0}
    frontier, step = [source], 0
    while frontier:
        step += 1
        frontier = [v for u in frontier for v in adjacency[u] if v not in distance]
        for v in frontier:
            distance.setdefault(v, step)
    return [distance.get(u) for u in order]


# --- samples ----------------------------------------------------------------------------------


class QueryGraph:
    """The graph queries are asked against: it cuts out their subgraphs, corrupts them into
    negatives and has each sample labelled by ``explain``, the oracle a subclass supplies.

    ``kinds`` gives each entity's type; corruptions keep it. ``known`` holds every true fact:
    a corruption in it is not a negative.
    """

    def __init__(self, facts: Iterable[Fact], names: list[str], kinds: list[str], known: set[Fact],
                 hops: int, rng: random.Random, max_entities: int = MAX_SUBGRAPH_ENTITIES):
        self.names = names
        self.kinds = kinds
        self.known = known
        self.hops = hops
        self.extractor = SubgraphExtractor(facts, len(names), hops, max_entities,
                                           priority=[rng.random() for _ in names])
        self.by_kind: defaultdict[str, list[int]] = defaultdict(list)
        for entity, kind in enumerate(kinds):
            self.by_kind[kind].append(entity)

    def hiding(self, query: Fact) -> Hiding:
        """What the subgraphs of ``query`` and of its corruption leave out: the query itself."""
        return Hiding(facts=frozenset({query}))

    def explain(self, query: Fact, facts: list[Fact]) -> tuple[int, str]:
        """The oracle: ``(label, why)`` for ``query`` asked of a subgraph with ``facts``."""
        raise NotImplementedError

    def type_triples(self, entities: list[int]) -> tuple[list[SemanticTriple], dict[str, str]]:
        """Level-2/3 triples placing ``entities`` in a type hierarchy, with the nodes they add."""
        return [], {}

    def samples(self, queries: Iterable[Fact], rng: random.Random, taken: set[Fact]) -> list[Sample]:
        """A positive sample of every query, each followed by a corruption of it as its negative.

        ``taken`` holds the queries already asked of this graph (and gets this call's): a query
        in it is skipped, as is one that cannot be corrupted (every candidate is a known fact).
        """
        samples: list[Sample] = []
        for query in queries:
            if query in taken:
                continue
            taken.add(query)
            head, relation, tail = query
            hidden = self.hiding(query)
            positive = self.extractor.extract(head, tail, hidden)
            corruption = self.corrupt(query, hidden, positive.head_tail_distance, rng, taken)
            if corruption is None:
                continue
            negative_query, side = corruption
            taken.add(negative_query)
            negative = self.extractor.extract(negative_query[0], negative_query[2], hidden)
            samples.append(self.to_sample(query, positive))
            samples.append(self.to_sample(negative_query, negative, corrupted=side))
        return samples

    def middle_profile(self, end: int, other: int, middles: set[int],
                       hidden: Hiding) -> tuple[Counter, Counter]:
        """How ``middles``, the entities linked to both ``end`` and ``other``, link them: the
        relations between the middles and ``other``, and their kinds with the relations to ``end``.
        """
        between = self.extractor.relations_between
        to_other: Counter = Counter()
        shape: Counter = Counter()
        for middle in middles:
            to_other.update(between(middle, other, hidden, True))
            shape[self.kinds[middle]] += 1
            shape.update(between(end, middle, hidden, True))
        return to_other, shape

    def corrupt(self, query: Fact, hidden: Hiding, distance: int | None, rng: random.Random,
                taken: set[Fact]) -> tuple[Fact, str] | None:
        """A false query and the end it replaced: the head or the tail (at random; the other one
        if that end has no candidate) swapped for another entity of the same kind, neither a
        known fact nor already ``taken``.

        The candidate is at the positive's distance from the kept end, so that how far apart the
        ends are (or whether they meet within ``hops`` at all) never tells the classes apart.
        A positive whose ends do not meet gets an entity farther than ``hops`` from the kept end,
        at random. Otherwise the hardest candidate wins: among the entities within ``hops`` of
        the kept end, one whose distance to it is closest to ``distance``, then whose links
        through the entities it shares with the kept end are most like the replaced end's (first
        the same relations into it, then the same kinds and relations from the kept end; see
        ``middle_profile``), at random among equals. Only if no entity fits: any of the kind.
        """
        head, relation, tail = query
        target = self.hops + 1 if distance is None else distance
        neighbours = self.extractor.neighbours
        sides = [("head", tail, head), ("tail", head, tail)]
        rng.shuffle(sides)

        def corrupted(side: str, entity: int) -> Fact:
            return (entity, relation, tail) if side == "head" else (head, relation, entity)

        for side, kept, replaced in sides:
            around_kept = neighbours(kept, hidden)
            near = self.extractor.distances(kept, {kept: around_kept})
            if distance is None:
                far = self._any_corruption(side, replaced, rng, taken, corrupted, avoid=near)
                if far is not None:
                    return far, side
                continue
            wanted_links, wanted_shape = self.middle_profile(
                kept, replaced, around_kept & neighbours(replaced, hidden), hidden)
            gaps: dict[int, int] = {}
            for entity in near:
                if self.kinds[entity] == self.kinds[replaced] and self._is_negative(corrupted(side, entity),
                                                                                    taken):
                    # The negative hides the query relation at ``entity`` too: its other links count.
                    distance_to_kept = 1 + min((near[m] for m in neighbours(entity, hidden) if m in near),
                                               default=self.hops)
                    if distance_to_kept <= self.hops:
                        gaps[entity] = abs(distance_to_kept - target)
            if gaps:
                closest = min(gaps.values())
                ranked = []
                for entity in (e for e, gap in gaps.items() if gap == closest):
                    links, shape = self.middle_profile(kept, entity, around_kept & neighbours(entity, hidden),
                                                       hidden)
                    ranked.append((_count_gap(wanted_links, links), _count_gap(wanted_shape, shape),
                                   rng.random(), entity))
                return corrupted(side, min(ranked)[-1]), side
        for side, _, replaced in sides:  # nothing fits: any entity of the kind
            if (fact := self._any_corruption(side, replaced, rng, taken, corrupted)) is not None:
                return fact, side
        return None

    def _any_corruption(self, side: str, replaced: int, rng: random.Random, taken: set[Fact], corrupted,
                        avoid: Container[int] = ()) -> Fact | None:
        """A negative with an entity of ``replaced``'s kind not in ``avoid`` at ``side``, drawn at random."""
        pool = self.by_kind[self.kinds[replaced]]
        for entity in rng.sample(pool, min(len(pool), 64)):
            if entity not in avoid and self._is_negative(corrupted(side, entity), taken):
                return corrupted(side, entity)
        return None

    def _is_negative(self, fact: Fact, taken: set[Fact]) -> bool:
        return fact[0] != fact[2] and fact not in self.known and fact not in taken

    def to_sample(self, query: Fact, subgraph: Subgraph, corrupted: str | None = None) -> Sample:
        """The sample of ``query`` (a corruption of the ``corrupted`` end, if given) with the
        oracle's label and reason, checked against how it was made."""
        label, why = self.explain(query, subgraph.facts)
        if label != (corrupted is None):
            raise RuntimeError(f"the oracle labels {self._fact_name(query)} {label}, "
                               f"generated as {int(corrupted is None)}")
        return self._sample(query, subgraph, label, f"holds: {why}" if label else f"false: corrupted {corrupted}; {why}")

    def query_sample(self, query: Fact) -> Sample:
        """The sample of any triple, as ranking asks it: its subgraph hides the triple itself if
        it is an edge, as a positive's does, and the oracle labels it."""
        subgraph = self.extractor.extract(query[0], query[2], self.hiding(query))
        label, why = self.explain(query, subgraph.facts)
        return self._sample(query, subgraph, label, f"holds: {why}" if label else f"false: {why}")

    def query_graph(self, query: Fact, schema: DomainSchema, node_feature_dim: int) -> Data:
        """``sample_to_data(self.query_sample(query), schema, node_feature_dim)``."""
        return sample_to_data(self.query_sample(query), schema, node_feature_dim)

    def _sample(self, query: Fact, subgraph: Subgraph, label: int, reason: str) -> Sample:
        names, far = self.names, self.hops + 1
        triples = [SemanticTriple(names[h], r, names[t], 1.0, 1) for h, r, t in subgraph.facts]
        node_types = {names[e]: self.kinds[e] for e in subgraph.entities}
        extras = {names[e]: (_scaled(dh, far), _scaled(dt, far))
                  for e, dh, dt in zip(subgraph.entities, subgraph.dist_to_head, subgraph.dist_to_tail)}
        type_triples, type_nodes = self.type_triples(subgraph.entities)
        triples += type_triples
        node_types |= type_nodes
        extras |= {node: (1.0, 1.0) for node in type_nodes}
        head, relation, tail = query
        return Sample(triples=triples, node_types=node_types, label=label, reason=reason,
                      extras=extras, query=(names[head], relation, names[tail]))

    def _fact_name(self, fact: Fact) -> str:
        return f"{fact[1]}({self.names[fact[0]]}, {self.names[fact[2]]})"


def _count_gap(a: Counter, b: Counter) -> int:
    """L1 distance of two count vectors."""
    return sum(abs(a[key] - b[key]) for key in a.keys() | b.keys())


def _scaled(distance: int | None, far: int) -> float:
    return 1.0 if distance is None else min(distance, far) / far


class WorldGraph(QueryGraph):
    """A synthetic world with its queries hidden; the oracle applies ``RULES`` to a sample's facts."""

    def __init__(self, world: World, queries: Sequence[Fact], hops: int, rng: random.Random,
                 max_entities: int = MAX_SUBGRAPH_ENTITIES):
        hidden = {twin for query in queries for twin in restatements(query)}
        visible = sorted(world.kg.facts - hidden)  # sorted: set order varies with string hashing
        super().__init__(visible, world.names, world.types, world.kg.facts, hops, rng, max_entities)

    def hiding(self, query: Fact) -> Hiding:
        # Every fact of the query relation or a twin at either end: the answer is never a lookup,
        # and neither end shows how many such facts it has.
        return Hiding(relations=twin_relations(query[1]))


    def explain(self, query: Fact, facts: list[Fact]) -> tuple[int, str]:
        # Every rule body is a path of at most two facts from head to tail, so the facts at
        # either end are all the oracle needs to look at.
        ends = (query[0], query[2])
        if why := derivation(query, FactIndex(f for f in facts if f[0] in ends or f[2] in ends), self.names):
            return 1, why
        if query in self.known:
            raise RuntimeError(f"{self._fact_name(query)} holds but its rule body is not in its subgraph")
        return 0, "no rule derives it and it is not a known fact"

    def type_triples(self, entities: list[int]) -> tuple[list[SemanticTriple], dict[str, str]]:
        triples = [SemanticTriple(self.names[e], "is_a", self.kinds[e], 1.0, 2) for e in entities]
        nodes: dict[str, str] = {}
        for entity_type in sorted({self.kinds[e] for e in entities}):
            nodes[entity_type] = "entity_type"
            child, parent = entity_type, ENTITY_TYPES[entity_type]
            while parent is not None:
                triples.append(SemanticTriple(child, "subclass_of", parent, 1.0, 3))
                if parent in nodes:
                    break
                nodes[parent] = "category"
                child, parent = parent, CATEGORY_PARENTS.get(parent)
        return triples, nodes


def world_queries(world: World, count: int, rng: random.Random) -> list[Fact]:
    """Up to ``count`` facts of the query relations, taken in turn from each relation, and never
    more than half of a relation's facts (the world keeps the rest)."""
    symmetric = {rule.relation for rule in RULES if isinstance(rule, Symmetric)}
    pools = []
    for relation in QUERY_RELATIONS:
        facts = [(h, relation, t) for h in range(len(world.names))
                 for t in sorted(world.kg.tails.get((relation, h), ())) if relation not in symmetric or h < t]
        pools.append(rng.sample(facts, (len(facts) + 1) // 2))
    in_turn = [fact for round_ in zip_longest(*pools) for fact in round_ if fact is not None]
    return in_turn[:count]


def synthetic_samples(num_samples: int, num_entities: int, num_triples: int, hops: int, seed: int,
                      max_entities: int = MAX_SUBGRAPH_ENTITIES) -> dict[str, list[Sample]]:
    """Samples of every split (sizes from ``split_sizes``), each split from worlds of its own."""
    splits = {}
    for split, size in split_sizes(num_samples).items():
        samples: list[Sample] = []
        world_index = 0
        while len(samples) < size:
            rng = random.Random(f"kg/{seed}/{split}/{world_index}")
            world = generate_world(rng, num_entities, num_triples, prefix=f"{split}{world_index}")
            queries = world_queries(world, (size - len(samples)) // 2, rng)
            added = WorldGraph(world, queries, hops, rng, max_entities).samples(queries, rng, taken=set())
            if not added:
                raise NSMError(f"a world of num_entities={num_entities} has no inferable facts to query; "
                               f"use num_entities >= {MIN_WORLD_ENTITIES}")
            samples += added
            world_index += 1
        splits[split] = samples
    return splits


# --- real knowledge graphs --------------------------------------------------------------------

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
            extras[position[entity]] = [_scaled(dh, far), _scaled(dt, far)]
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
