import functools
import random
from collections import Counter

import pytest
import torch
from pyperplan.grounding import ground
from pyperplan.pddl.parser import Parser

from nsm.data.base import SPLITS, split_sizes
from nsm.data.domains.planning.generator import (
    CORRUPTION_KINDS, MAX_STEPS, MIN_STEPS, TABLE, Move, Problem, check_plan, corrupt, corruption_kinds, facts_of, on,
    problem_to_sample, random_problem, sample_to_problem,
)
from nsm.data.domains.planning.schema import PLANNING_SCHEMA
from nsm.data.planning_dataset import PlanningTripleDataset
from nsm.errors import NSMError
from nsm.analysis.leakage import bag_of_types_accuracy

NUM_PROBLEMS = 400

# b1 sits on b2; b2 and b3 on the table.
START = facts_of({"b1": "b2", "b2": TABLE, "b3": TABLE})


def problem(*plan: Move, goal=(on("b2", "b1"), on("b1", "b3"))) -> Problem:
    return Problem(("b1", "b2", "b3"), START, frozenset(goal), plan)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("planning")
    return {split: PlanningTripleDataset(root, split, num_problems=NUM_PROBLEMS, seed=3) for split in SPLITS}


# --- the simulator oracle --------------------------------------------------------------------------

def test_valid_plan():
    label, reason = check_plan(problem(Move("b1", "b2", "b3"), Move("b2", TABLE, "b1")))
    assert (label, reason) == (1, "valid: goal on(b1,b3), on(b2,b1) holds after 2 steps")


@pytest.mark.parametrize("plan, reason", [
    ((Move("b2", TABLE, "b3"),), "step 1 move(b2,table,b3): b2 is not clear"),
    ((Move("b1", TABLE, "b3"),), "step 1 move(b1,table,b3): b1 is not on table"),
    ((Move("b3", TABLE, "b2"),), "step 1 move(b3,table,b2): b2 is not clear"),
    ((Move("b1", "b2", "b3"), Move("b1", "b2", TABLE)), "step 2 move(b1,b2,table): b1 is not on b2"),
    ((Move("b1", "b2", "b3"), Move("b3", TABLE, "b2")), "step 2 move(b3,table,b2): b3 is not clear"),
    ((Move("b1", "b2", "b1"),), "step 1 move(b1,b2,b1): block, source and destination must be three different things"),
    ((Move("b1", "b2", TABLE),), "goal on(b1,b3), on(b2,b1) does not hold after 1 step"),
])
def test_invalid_plans(plan, reason):
    assert check_plan(problem(*plan)) == (0, reason)


def test_random_problems_are_valid_and_their_goals_need_the_plan():
    rng = random.Random(0)
    for _ in range(200):
        p = random_problem(rng, rng.randint(3, 5), rng.randint(MIN_STEPS, MAX_STEPS))
        assert check_plan(p)[0] == 1, p
        assert p.goal - p.initial, "some goal fact must be made true by the plan"


# --- corruptions -------------------------------------------------------------------------------------

def single_edit(source: tuple[Move, ...], edited: tuple[Move, ...]) -> str | None:
    """Which one edit turns ``source`` into ``edited`` (None if no single edit does)."""
    if len(edited) == len(source):
        differ = [i for i, (a, b) in enumerate(zip(source, edited)) if a != b]
        if len(differ) == 2 and (source[differ[0]], source[differ[1]]) == (edited[differ[1]], edited[differ[0]]):
            return "swap"
        if len(differ) == 1:
            a, b = source[differ[0]], edited[differ[0]]
            if sum(x != y for x, y in zip((a.block, a.source, a.destination), (b.block, b.source, b.destination))) == 1:
                return "change"
    shorter, longer = sorted((source, edited), key=len)
    if len(longer) == len(shorter) + 1 and any(longer[:i] + longer[i + 1:] == shorter for i in range(len(longer))):
        return "delete" if longer is source else ("duplicate" if set(longer) == set(shorter) else None)
    return None


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
def test_corruptions_are_single_checked_edits(kind):
    rng = random.Random(1)
    made = 0
    for _ in range(100):
        source = random_problem(rng, rng.randint(3, 5), rng.randint(MIN_STEPS, MAX_STEPS))
        corrupted = corrupt(source, kind, rng)
        if corrupted is None:
            continue
        made += 1
        assert check_plan(corrupted)[0] == 0
        assert single_edit(source.plan, corrupted.plan) == kind, (source.plan, corrupted.plan)
        assert (corrupted.blocks, corrupted.initial, corrupted.goal) == (source.blocks, source.initial, source.goal)
    assert made >= 50, f"only {made} of 100 plans could be corrupted by {kind}"


def test_corruption_kinds_keep_plan_lengths_uniform():
    # P(L -> L') of the step count under corruption must be symmetric (hence doubly stochastic).
    shift = {"delete": -1, "duplicate": 1, "swap": 0, "change": 0}
    lengths = range(MIN_STEPS, MAX_STEPS + 1)
    moves = {(n, n + shift[k]): 0 for n in lengths for k in CORRUPTION_KINDS}
    for n in lengths:
        for kind in corruption_kinds(n):
            assert MIN_STEPS <= n + shift[kind] <= MAX_STEPS
            moves[n, n + shift[kind]] += 1
    assert all(moves[a, b] == moves.get((b, a), 0) for a, b in moves)


def test_every_invalid_sample_shares_its_split_with_its_source(datasets):
    for split, dataset in datasets.items():
        problems = [sample_to_problem(s) for s in dataset.samples]
        valid_by_setting = {}
        for p, label in zip(problems, dataset.labels):
            if label == 1:
                valid_by_setting.setdefault((p.initial, p.goal), []).append(p.plan)
        for p, label in zip(problems, dataset.labels):
            if label == 0:
                sources = valid_by_setting.get((p.initial, p.goal), [])
                assert any(single_edit(s, p.plan) for s in sources), f"{split}: no source for {p}"


# --- the dataset -------------------------------------------------------------------------------------

def test_splits_balanced_and_sized(datasets):
    for split, dataset in datasets.items():
        assert len(dataset) == split_sizes(NUM_PROBLEMS)[split]
        counts = Counter(dataset.labels)
        assert counts[0] == counts[1] == len(dataset) // 2, (split, counts)


def test_plan_lengths_alike_in_both_classes(datasets):
    steps = Counter((len(sample_to_problem(s).plan), s.label) for s in datasets["train"].samples)
    print("train (steps, label) counts:", sorted(steps.items()))
    assert {n for n, _ in steps} <= set(range(MIN_STEPS, MAX_STEPS + 1))
    mean = [sum(n * c for (n, y), c in steps.items() if y == label) / sum(c for (_, y), c in steps.items() if y == label)
            for label in (0, 1)]
    assert abs(mean[0] - mean[1]) < 0.5, mean


def test_splits_disjoint(datasets):
    keys = {split: {s.key() for s in d.samples} for split, d in datasets.items()}
    assert not keys["train"] & keys["val"] and not keys["train"] & keys["test"] and not keys["val"] & keys["test"]


def test_deterministic(datasets, tmp_path):
    again = PlanningTripleDataset(tmp_path, "test", num_problems=NUM_PROBLEMS, seed=3)
    assert [s.to_record() for s in again.samples] == [s.to_record() for s in datasets["test"].samples]
    other = PlanningTripleDataset(tmp_path, "test", num_problems=NUM_PROBLEMS, seed=4)
    assert [s.to_record() for s in other.samples] != [s.to_record() for s in datasets["test"].samples]


def test_graphs(datasets):
    dataset = datasets["val"]
    data, label = dataset[0]
    assert label.dtype == torch.long and label.shape == (1,)
    assert dataset.num_relations == 16
    for data, label in dataset:
        assert data.x.shape[1] == 64
        assert int(data.edge_type.max()) < 16
        assert set(data.node_level.tolist()) == {1, 2, 3}
        assert torch.all(data.edge_attr == 1.0)
        assert label.item() == data.y.item()


def test_fact_nodes_are_the_whole_universe(datasets):
    # Which facts exist as nodes must not depend on the plan, or their count would leak the label.
    for sample in datasets["train"].samples:
        kinds = Counter(sample.node_types.values())
        assert kinds["on_fact"] == kinds["block"] ** 2 and kinds["clear_fact"] == kinds["block"]


def test_node_features_say_type_level_and_plan_position_only(datasets):
    data, _ = datasets["val"][0]
    sample = datasets["val"].samples[0]
    one_hots = PLANNING_SCHEMA.min_feature_dim - 1
    assert torch.all(data.x[:, :one_hots].sum(1) == 2) and data.x[:, one_hots + 1:].abs().sum() == 0
    steps = [name for name, kind in sample.node_types.items() if kind == "step"]
    positions = data.x[:, one_hots]
    step_ids = [list(sample.node_types).index(step) for step in steps]
    # The i-th step (step1, step2, ... in plan order) carries i / MAX_STEPS; no other node has one.
    assert positions[step_ids].tolist() == pytest.approx([i / MAX_STEPS for i in range(1, len(steps) + 1)])
    assert positions.sum().item() == pytest.approx(sum(positions[step_ids].tolist()))


def test_triples_hold_the_whole_problem():
    rng = random.Random(2)
    for _ in range(100):
        p = random_problem(rng, rng.randint(3, 5), rng.randint(MIN_STEPS, MAX_STEPS))
        for candidate in (p, corrupt(p, "swap", rng)):
            if candidate is not None:
                sample = problem_to_sample(candidate)
                assert sample_to_problem(sample) == candidate
                assert (sample.label, sample.reason) == check_plan(candidate)


def test_bad_num_problems(tmp_path):
    with pytest.raises(NSMError, match="num_problems must be a positive integer"):
        PlanningTripleDataset(tmp_path, "train", num_problems=0)


# --- independent oracle: pyperplan --------------------------------------------------------------------

DOMAIN_PDDL = """
(define (domain blocksworld-move)
  (:requirements :strips :typing)
  (:types block)
  (:predicates (on ?x - block ?y - block) (ontable ?x - block) (clear ?x - block)
               (different ?x - block ?y - block))
  (:action move-b-to-b
    :parameters (?b - block ?from - block ?to - block)
    :precondition (and (clear ?b) (on ?b ?from) (clear ?to) (different ?b ?to) (different ?from ?to))
    :effect (and (on ?b ?to) (clear ?from) (not (on ?b ?from)) (not (clear ?to))))
  (:action move-b-to-t
    :parameters (?b - block ?from - block)
    :precondition (and (clear ?b) (on ?b ?from))
    :effect (and (ontable ?b) (clear ?from) (not (on ?b ?from))))
  (:action move-t-to-b
    :parameters (?b - block ?to - block)
    :precondition (and (clear ?b) (ontable ?b) (clear ?to) (different ?b ?to))
    :effect (and (on ?b ?to) (not (ontable ?b)) (not (clear ?to)))))
"""


@functools.cache
def pddl_domain():
    parser = Parser(None)
    parser.domInput = DOMAIN_PDDL
    return parser.parse_domain(read_from_file=False)


def pddl_atom(fact) -> str:
    if fact[0] == "on" and fact[2] == TABLE:
        return f"(ontable {fact[1]})"
    return f"({' '.join(fact)})"


def pddl_operator(move: Move) -> str:
    if move.source == TABLE:
        return f"(move-t-to-b {move.block} {move.destination})"
    if move.destination == TABLE:
        return f"(move-b-to-t {move.block} {move.source})"
    return f"(move-b-to-b {move.block} {move.source} {move.destination})"


def pyperplan_label(p: Problem) -> int:
    different = [f"(different {a} {b})" for a in p.blocks for b in p.blocks if a != b]
    parser = Parser(None)
    parser.probInput = f"""
    (define (problem check) (:domain blocksworld-move)
      (:objects {' '.join(p.blocks)} - block)
      (:init {' '.join(map(pddl_atom, sorted(p.initial)))} {' '.join(different)})
      (:goal (and {' '.join(map(pddl_atom, sorted(p.goal)))})))
    """
    task = ground(parser.parse_problem(pddl_domain(), read_from_file=False), remove_irrelevant_operators=False)
    operators = {op.name: op for op in task.operators}
    state = task.initial_state
    for move in p.plan:
        op = operators.get(pddl_operator(move))  # absent: pyperplan has no such action (e.g. table to table)
        if op is None or not op.applicable(state):
            return 0
        state = op.apply(state)
    return int(task.goal_reached(state))


def test_pyperplan_on_hand_made_cases():
    assert pyperplan_label(problem(Move("b1", "b2", "b3"), Move("b2", TABLE, "b1"))) == 1
    assert pyperplan_label(problem(Move("b1", "b2", "b3"), Move("b1", "b2", TABLE))) == 0
    assert pyperplan_label(problem(Move("b1", "b2", TABLE))) == 0


def test_labels_agree_with_pyperplan(datasets):
    samples = [s for d in datasets.values() for s in d.samples]
    agree = sum(pyperplan_label(sample_to_problem(s)) == s.label for s in samples)
    print(f"pyperplan agrees with the oracle on {agree}/{len(samples)} samples "
          f"({Counter(s.label for s in samples)[1]} valid)")
    assert len(samples) >= 200 and agree == len(samples)


# --- leakage ---------------------------------------------------------------------------------------------

@pytest.mark.rounding
@pytest.mark.slow
def test_bag_of_types_near_chance(tmp_path):
    train, test = (PlanningTripleDataset(tmp_path, split, num_problems=3000) for split in ("train", "test"))
    result = bag_of_types_accuracy(train, test)
    print(f"bag-of-types on {len(train)} train / {len(test)} test: {result}")
    assert len(train) + len(test) >= 2000 and result["best_test_accuracy"] <= 0.65
