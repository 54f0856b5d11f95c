"""A graph that queries are asked against: their subgraphs, their negatives, their samples.

:class:`QueryGraph` is shared by the synthetic worlds (:class:`~nsm.data.domains.kg.generator.WorldGraph`)
and the real KGs (:class:`~nsm.data.domains.kg.tsv.FileGraph`); each supplies the oracle
(``explain``) and what a query's subgraph hides (``hiding``).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Container, Iterable

from torch_geometric.data import Data

from nsm.data.domains.kg.rules import Fact
from nsm.data.domains.kg.subgraph import MAX_SUBGRAPH_ENTITIES, Hiding, Subgraph, SubgraphExtractor
from nsm.data.graph import Sample, sample_to_data
from nsm.data.triples import DomainSchema, SemanticTriple


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
        extras = {names[e]: (scaled_distance(dh, far), scaled_distance(dt, far))
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


def scaled_distance(distance: int | None, far: int) -> float:
    return 1.0 if distance is None else min(distance, far) / far
