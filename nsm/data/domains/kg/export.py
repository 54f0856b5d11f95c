"""Write synthetic knowledge graphs as TSV files that any link-prediction code can read.

``export_synthetic_kg(directory)`` writes two synthetic worlds (see :mod:`nsm.data.domains.kg`) in the
FB15k-237 / WN18RR layout: ``train.txt``, ``valid.txt`` and ``test.txt``, one
``head<TAB>relation<TAB>tail`` triple per line, UTF-8, sorted. The first world goes to
``directory``, the second to ``directory_ind``: GraIL's inductive pair, where a model trains on X
and is evaluated on X_ind.

The two worlds share the relation vocabulary but no entity (their names have different prefixes),
so scoring X_ind's queries needs what a model learned about relations, not about entities. In each
world the queries (facts of ``QUERY_RELATIONS``, which a two-fact rule body in train.txt derives)
are split between valid.txt and test.txt, and train.txt is every other fact: neither a query nor a
restatement of one (its symmetric twin or inverse) is an edge of train.txt, as in ``WorldGraph``.
"""

from __future__ import annotations

import random
from pathlib import Path

from nsm.atomic import atomic_write, sweep_temp_files
from nsm.data.domains.kg.rules import Fact, restatements
from nsm.data.domains.kg.schema import QUERY_RELATIONS
from nsm.data.domains.kg.tsv import SPLIT_FILES
from nsm.data.domains.kg.world import MIN_WORLD_ENTITIES, World, generate_world, world_queries
from nsm.errors import NSMError

QUERY_SHARE = 0.2  # of a world's query-relation facts, by default (world_queries takes at most half)
# Entity-name prefixes of the two worlds: different, so that no name is in both.
WORLD_PREFIXES = {"main": "w", "ind": "ind"}


def export_synthetic_kg(directory: str | Path, num_entities: int = 200, num_triples: int = 2500, seed: int = 0,
                        queries: int | None = None) -> tuple[Path, Path]:
    """Write a synthetic world to ``directory`` and an entity-disjoint one to ``directory_ind``.

    ``queries`` is each world's number of valid plus test triples (fewer where a query is dropped
    because train.txt would lack its relation); by default ``QUERY_SHARE`` of the world's
    query-relation facts. A directory holding anything but a previous export is refused.
    """
    if num_entities < MIN_WORLD_ENTITIES:
        raise NSMError(f"a synthetic world needs num_entities >= {MIN_WORLD_ENTITIES}, got {num_entities}")
    if queries is not None and queries < 2:
        raise NSMError(f"queries must be at least 2 (one for valid.txt, one for test.txt), got {queries}")
    main = Path(directory)
    targets = {"main": main, "ind": main.parent / f"{main.name}_ind"}
    for target in targets.values():
        _check_target(target)
    splits = {}
    for name, target in targets.items():
        rng = random.Random(f"kg-export/{seed}/{name}")
        world = generate_world(rng, num_entities, num_triples, prefix=WORLD_PREFIXES[name])
        splits[name] = _split(world, queries, rng, target)
    # The model trained on main knows main's train relations only; the _ind files may use no other.
    train_relations = {line.split("\t")[1] for line in splits["main"]["train"]}
    foreign = sorted({line.split("\t")[1] for lines in splits["ind"].values() for line in lines} - train_relations)
    if foreign:
        raise NSMError(f"the {targets['ind'].name} world uses relations that {targets['main'] / 'train.txt'} "
                       f"lacks ({', '.join(foreign)}); use a larger num_entities or num_triples")
    for name, target in targets.items():
        for split, lines in splits[name].items():
            with atomic_write(target / SPLIT_FILES[split], "wb") as f:
                f.write("".join(line + "\n" for line in lines).encode("utf-8"))
    return targets["main"], targets["ind"]


def _check_target(target: Path) -> None:
    """Refuse ``target`` unless it is absent, empty or holds only a previous export's files."""
    if target.exists() and not target.is_dir():
        raise NSMError(f"cannot export a knowledge graph to {target}: it is a file, not a directory")
    if target.is_dir():
        sweep_temp_files(target)  # the leftovers of an export that was killed mid-write
        foreign = sorted(p.name for p in target.iterdir() if p.name not in SPLIT_FILES.values())
        if foreign:
            raise NSMError(f"will not export a knowledge graph into {target}: it holds files other than "
                           f"{', '.join(SPLIT_FILES.values())} ({', '.join(foreign[:3])}"
                           f"{', ...' if len(foreign) > 3 else ''}); use a new or empty directory")


def _split(world: World, count: int | None, rng: random.Random, target: Path) -> dict[str, list[str]]:
    """The sorted lines of train.txt, valid.txt and test.txt for ``world``, keyed by split."""
    facts = world.kg.facts
    if count is None:
        count = max(2, round(QUERY_SHARE * sum(1 for fact in facts if fact[1] in QUERY_RELATIONS)))
    drawn = world_queries(world, count, rng)
    # A query whose relation (or entity) only its hidden facts have would name something train.txt
    # lacks, which readers refuse; it is dropped and stays in train.txt.
    without_all = facts - _restatements(drawn)
    entities = {e for h, _, t in without_all for e in (h, t)}
    relations = {r for _, r, _ in without_all}
    kept = [q for q in drawn if q[0] in entities and q[1] in relations and q[2] in entities]
    if len(kept) < 2:
        raise NSMError(f"a synthetic world for {target} has {len(kept)} usable queries, too few for both "
                       f"valid.txt and test.txt; use a larger num_entities or num_triples")
    names = world.names

    def lines(triples) -> list[str]:
        return sorted(f"{names[h]}\t{r}\t{names[t]}" for h, r, t in triples)

    # world_queries takes the relations in turn, so alternate queries give both files every relation.
    return {"train": lines(facts - _restatements(kept)), "val": lines(kept[0::2]), "test": lines(kept[1::2])}


def _restatements(queries: list[Fact]) -> set[Fact]:
    """The queries with every fact that restates one (their symmetric twins and inverses)."""
    return {fact for query in queries for fact in restatements(query)}
