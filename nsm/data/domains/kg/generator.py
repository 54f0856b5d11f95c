"""The synthetic knowledge-graph domain's samples and their oracle, the rules.

Each split draws worlds of its own (:mod:`nsm.data.domains.kg.world`); a world hides its queries
and their twins, and :class:`WorldGraph` labels each sample by applying ``RULES`` to its facts.
The out-of-distribution split (:func:`ood_samples`) draws larger worlds and larger subgraphs.
"""

from __future__ import annotations

import random
from typing import Sequence

from nsm.data.base import split_sizes
from nsm.data.domains.kg.query_graph import QueryGraph
from nsm.data.domains.kg.rules import Fact, FactIndex, derivation, restatements, twin_relations
from nsm.data.domains.kg.schema import CATEGORY_PARENTS, ENTITY_TYPES
from nsm.data.domains.kg.subgraph import MAX_SUBGRAPH_ENTITIES, Hiding
from nsm.data.domains.kg.world import MIN_WORLD_ENTITIES, World, generate_world, world_queries
from nsm.data.graph import Sample
from nsm.data.triples import SemanticTriple
from nsm.errors import NSMError


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


# The out-of-distribution split (`--ood`) scales the world's entities and facts, and the most entities
# a subgraph keeps, by this: training's subgraphs are nearly always full (dev: 32 nodes and 131 edges
# on average), the larger worlds' hold 56 nodes and 282 edges.
OOD_SCALE = 2


def synthetic_samples(num_samples: int, num_entities: int, num_triples: int, hops: int, seed: int,
                      max_entities: int = MAX_SUBGRAPH_ENTITIES) -> dict[str, list[Sample]]:
    """Samples of every split (sizes from ``split_sizes``), each split from worlds of its own."""
    return {split: split_samples(split, size, num_entities, num_triples, hops, seed, max_entities)
            for split, size in split_sizes(num_samples).items()}


def ood_samples(size: int, num_entities: int, num_triples: int, hops: int, seed: int,
                max_entities: int = MAX_SUBGRAPH_ENTITIES) -> list[Sample]:
    """``size`` samples from worlds ``OOD_SCALE`` times as large as training's, with subgraphs of up
    to ``OOD_SCALE`` times as many entities; their worlds are the split's own, as every split's are."""
    return split_samples("ood", size, OOD_SCALE * num_entities, OOD_SCALE * num_triples, hops, seed,
                         OOD_SCALE * max_entities)


def split_samples(split: str, size: int, num_entities: int, num_triples: int, hops: int, seed: int,
                  max_entities: int) -> list[Sample]:
    """``size`` samples of one split, from worlds of its own (their names and random streams are the split's)."""
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
    return samples
