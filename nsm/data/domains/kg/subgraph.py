"""GraIL's enclosing subgraph of a query triple, over instance facts with undirected distances
(see :mod:`nsm.data.domains.kg` for what is hidden, kept and capped)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Sequence

from nsm.data.domains.kg.rules import Fact

MAX_SUBGRAPH_ENTITIES = 24


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
