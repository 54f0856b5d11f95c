"""Synthetic worlds: typed entities, random base facts, closed under the rules."""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import zip_longest

from nsm.data.domains.kg.rules import RULES, Fact, KnowledgeGraph, Symmetric
from nsm.data.domains.kg.schema import ENTITY_TYPES, QUERY_RELATIONS

# Share of a world's entities per type; people take what is left. Each type gets at least 2
# entities, so that every corruption has a candidate.
TYPE_SHARES = {"city": 0.16, "country": 0.06, "company": 0.1, "university": 0.06, "sports_team": 0.05,
               "language": 0.04}
MIN_PER_TYPE = 2
MIN_WORLD_ENTITIES = 30


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
