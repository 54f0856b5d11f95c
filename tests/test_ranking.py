"""Ranking metrics and protocols (nsm.evaluation.ranking) and AUC-PR, on hand-made scores."""

import math

import pytest
import torch

from nsm.errors import NSMError
from nsm.evaluation.metrics import average_precision, compute_classification_metrics
from nsm.evaluation.ranking import (
    CandidatePool, chance_metrics, draw_candidates, random_negatives, rank, rank_queries, ranking_metrics,
)


def test_rank_counts_ties_half():
    assert rank(0.9, torch.tensor([0.1, 0.2])) == 1
    assert rank(0.5, torch.tensor([0.9, 0.1, 0.5])) == 2.5  # one higher, one tied
    assert rank(0.0, torch.zeros(49)) == 25.5               # all tied: the middle, never the top


def test_ranking_metrics_by_hand():
    metrics = ranking_metrics([1, 2, 4, 20])
    assert metrics["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4 + 1 / 20) / 4)
    assert metrics["hits@1"] == 0.25 and metrics["hits@3"] == 0.5 and metrics["hits@10"] == 0.75
    with pytest.raises(NSMError, match="no ranks"):
        ranking_metrics([])


def test_average_precision_by_hand():
    # Ranked: + - + -: precision at the two positives 1 and 2/3.
    scores, positive = torch.tensor([0.9, 0.8, 0.7, 0.1]), torch.tensor([True, False, True, False])
    assert average_precision(scores, positive) == pytest.approx((1 + 2 / 3) / 2)
    # A tie of a positive and a negative at the top enters together: precision 1/2 there.
    assert average_precision(torch.tensor([0.5, 0.5]), torch.tensor([True, False])) == pytest.approx(0.5)
    assert math.isnan(average_precision(torch.tensor([0.3]), torch.tensor([False])))
    metrics = compute_classification_metrics(torch.logit(torch.tensor([0.9, 0.8, 0.7, 0.1])),
                                             torch.tensor([1, 0, 1, 0]), "link_prediction")
    assert metrics["auc_pr"] == pytest.approx((1 + 2 / 3) / 2)


POOL = CandidatePool(range(10), known={(0, "r", 1), (0, "r", 2), (3, "r", 1)})


def test_candidates_are_filtered_and_both_sides_are_ranked():
    full = draw_candidates([(0, "r", 1)], POOL, "full", 49, seed=0)
    (query, side, tails), (_, other_side, heads) = sorted(full, key=lambda d: d[1], reverse=True)
    assert side == "tail" and other_side == "head"
    # Every entity but the query's own and those making a known triple: tails 1 and 2, heads 0 and 3.
    assert {t for _, _, t in tails} == set(range(10)) - {1, 2}
    assert {h for h, _, _ in heads} == set(range(10)) - {0, 3}
    sampled = draw_candidates([(0, "r", 1)], POOL, "sampled", 3, seed=0)
    assert all(len(c) == 3 and set(c) <= set(POOL.corruptions(q, s)) for q, s, c in sampled)
    assert sampled == draw_candidates([(0, "r", 1)], POOL, "sampled", 3, seed=0)  # seeded
    assert sampled != draw_candidates([(0, "r", 1)], POOL, "sampled", 3, seed=1)
    with pytest.raises(NSMError, match="unknown ranking protocol"):
        draw_candidates([(0, "r", 1)], POOL, "top", 3, seed=0)


def test_rank_queries_scores_each_distinct_triple_once():
    calls = []

    def score(facts):
        calls.append(list(facts))
        return torch.tensor([1.0 if fact in POOL.known else -float(fact[0] + fact[2]) for fact in facts])

    metrics = rank_queries([(0, "r", 1), (3, "r", 1)], score, POOL, "full")
    assert len(calls) == 1 and len(calls[0]) == len(set(calls[0])) == metrics["scored_triples"]
    # Known triples score 1 and every corruption less: each query ranks first on both sides.
    assert metrics["mrr"] == 1.0 and metrics["hits@1"] == 1.0 and metrics["ranked_sides"] == 4
    constant = rank_queries([(0, "r", 1)], lambda facts: torch.zeros(len(facts)), POOL, "full")
    assert constant["mrr"] == pytest.approx((1 / (1 + 8 / 2) + 1 / (1 + 8 / 2)) / 2)  # 8 candidates a side


def test_random_negatives_are_filtered_and_seeded():
    queries = [(0, "r", 1), (3, "r", 1)]
    negatives = random_negatives(queries, POOL, seed=0)
    assert all(n not in POOL.known and n is not None for n in negatives)
    assert all(sum(a != b for a, b in zip(q, n)) == 1 for q, n in zip(queries, negatives))
    assert negatives == random_negatives(queries, POOL, seed=0)
    assert random_negatives([(0, "r", 1)], CandidatePool([0, 1], {(0, "r", 1), (1, "r", 1)}), 0) == [(0, "r", 0)]


def test_chance_is_a_random_order_of_the_same_candidates():
    # (0, r, 1): 8 tail and 8 head candidates, so each side ranks uniformly in 1..9.
    chance = chance_metrics([(0, "r", 1)], POOL, "full")
    assert chance["mrr"] == pytest.approx(sum(1 / r for r in range(1, 10)) / 9)
    assert chance["hits@1"] == pytest.approx(1 / 9) and chance["hits@10"] == 1.0
    g = torch.Generator().manual_seed(0)
    shuffled = [rank_queries([(0, "r", 1)], lambda facts: torch.rand(len(facts), generator=g), POOL, "full")["mrr"]
                for _ in range(400)]
    assert sum(shuffled) / len(shuffled) == pytest.approx(chance["mrr"], abs=0.03)
