r"""Link-prediction ranking: each test triple's rank among corruptions of it, MRR and Hits@k.

For a query ``(h, r, t)`` and a side (head or tail), the candidates replace that side with other
entities of the evaluated graph. A candidate that is a true triple (listed in any of the graph's
files) is left out: the *filtered* setting of Bordes et al. (2013), in which no other right
answer counts against the query. Two protocols:

* ``sampled`` (GraIL's, Teru et al. 2020): ``negatives`` candidates per side, drawn uniformly
  without replacement from the filtered pool (all of it when it is smaller);
* ``full``: every entity of the filtered pool.

With scores ``s`` (higher = more plausible) of the query and of its candidates ``c``,

.. math::
    \operatorname{rank} = 1 + |\{c : s_c > s\}| + \tfrac12 |\{c : s_c = s\}|,\qquad
    \mathrm{MRR} = \tfrac1n \textstyle\sum 1/\operatorname{rank},\qquad
    \mathrm{Hits@}k = \tfrac1n |\{\operatorname{rank} \le k\}|

over the ``n`` = 2 × queries ranks (head and tail). Ties count half, so a model that scores every
candidate alike ranks at the middle, never at the top. Everything is seeded: the same graph, seed
and protocol give the same candidates.

The scorer is any ``score(facts) -> Tensor[len(facts)]``: the NSM over enclosing subgraphs or a
KG embedding. :func:`rank_queries` gathers every distinct triple it needs first and scores each
once, so a triple that is a candidate of several queries costs one subgraph.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from nsm.config import RANKING_NEGATIVES, RANKINGS
from nsm.errors import NSMError

Fact = tuple[int, str, int]
Scorer = Callable[[list[Fact]], torch.Tensor]
PROTOCOLS = tuple(r for r in RANKINGS if r != "none")
HITS_AT = (1, 3, 10)
SIDES = ("head", "tail")


@dataclass(frozen=True)
class CandidatePool:
    """What a corruption may be: ``entities`` to put in, ``known`` true triples to leave out."""

    entities: Sequence[int]
    known: frozenset[Fact] | set[Fact]

    def corruptions(self, query: Fact, side: str) -> list[Fact]:
        """Every filtered corruption of ``query``'s ``side``, in entity order."""
        head, relation, tail = query
        replaced = head if side == "head" else tail
        facts = ((e, relation, tail) if side == "head" else (head, relation, e)
                 for e in self.entities if e != replaced)
        return [fact for fact in facts if fact not in self.known]


def rank(score: float, candidate_scores: torch.Tensor) -> float:
    """``1 + #higher + #equal / 2`` (see the module docstring)."""
    higher = int((candidate_scores > score).sum())
    equal = int((candidate_scores == score).sum())
    return 1 + higher + equal / 2


def ranking_metrics(ranks: Sequence[float]) -> dict[str, float]:
    """MRR and Hits@1/3/10 of ``ranks``."""
    if not ranks:
        raise NSMError("no ranks to summarise: the evaluated split has no queries")
    values = torch.tensor(ranks, dtype=torch.double)
    metrics = {"mrr": (1 / values).mean().item()}
    metrics.update({f"hits@{k}": (values <= k).double().mean().item() for k in HITS_AT})
    return metrics


def draw_candidates(queries: Sequence[Fact], pool: CandidatePool, protocol: str, negatives: int,
                    seed: int) -> list[tuple[Fact, str, list[Fact]]]:
    """``(query, side, candidates)`` for each query and side, as the protocol says."""
    if protocol not in PROTOCOLS:
        raise NSMError(f"unknown ranking protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if protocol == "sampled" and negatives < 1:
        raise NSMError(f"the sampled protocol needs at least 1 negative per side, got {negatives}")
    rng = random.Random(f"ranking/{seed}")
    drawn = []
    for query in queries:
        for side in SIDES:
            candidates = pool.corruptions(query, side)
            if protocol == "sampled" and len(candidates) > negatives:
                candidates = rng.sample(candidates, negatives)
            drawn.append((query, side, candidates))
    return drawn


def rank_queries(queries: Sequence[Fact], score: Scorer, pool: CandidatePool, protocol: str = "sampled",
                 negatives: int = RANKING_NEGATIVES, seed: int = 0) -> dict[str, float | int | str]:
    """Rank every query's head and tail among its candidates; MRR, Hits@k and the protocol.

    A query side without any candidate (every entity makes a true triple) is skipped, and
    counted in ``sides_without_candidates``.
    """
    drawn = draw_candidates(queries, pool, protocol, negatives, seed)
    needed = list(dict.fromkeys([*queries, *(fact for _, _, candidates in drawn for fact in candidates)]))
    scores = dict(zip(needed, score(needed).tolist()))
    ranks = [rank(scores[query], torch.tensor([scores[c] for c in candidates]))
             for query, _, candidates in drawn if candidates]
    metrics: dict[str, float | int | str] = dict(ranking_metrics(ranks))
    metrics.update(protocol=protocol, negatives=negatives if protocol == "sampled" else "all",
                   queries=len(queries), ranked_sides=len(ranks), sides_without_candidates=len(drawn) - len(ranks),
                   scored_triples=len(needed))
    return metrics


def chance_metrics(queries: Sequence[Fact], pool: CandidatePool, protocol: str = "sampled",
                   negatives: int = RANKING_NEGATIVES, seed: int = 0) -> dict[str, float]:
    """MRR and Hits@k expected of a ranking in random order (a query side with ``n`` candidates
    ranks anywhere in ``1..n+1`` alike): what "chance" means for the same queries and candidates."""
    sides = [len(candidates) + 1 for _, _, candidates in draw_candidates(queries, pool, protocol, negatives, seed)
             if candidates]
    if not sides:
        raise NSMError("no ranks to summarise: the evaluated split has no queries")
    metrics = {"mrr": sum(sum(1 / r for r in range(1, n + 1)) / n for n in sides) / len(sides)}
    metrics.update({f"hits@{k}": sum(min(k, n) / n for n in sides) / len(sides) for k in HITS_AT})
    return metrics


def random_negatives(queries: Sequence[Fact], pool: CandidatePool, seed: int) -> list[Fact | None]:
    """One filtered corruption per query, of a side drawn at random (the other side if that one
    has no candidate; None if neither has): GraIL's negatives for AUC-PR."""
    rng = random.Random(f"negatives/{seed}")
    negatives: list[Fact | None] = []
    for query in queries:
        sides = list(SIDES)
        rng.shuffle(sides)
        negative = None
        for side in sides:
            candidates = pool.corruptions(query, side)
            if candidates:
                negative = rng.choice(candidates)
                break
        negatives.append(negative)
    return negatives
