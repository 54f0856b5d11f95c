"""Blocksworld plan validation: problems, the simulator oracle, minimal corruptions, triples.

A problem is an initial arrangement of 3–5 blocks, a goal (a set of ``on`` facts, usually
partial) and a candidate plan of 2–8 moves. The question: does the plan work? The
out-of-distribution split (:func:`generate_ood`) asks it of 6–8 blocks and plans of 9–12 moves.

Action model — one STRIPS action ``move(block, source, destination)``, where ``source`` and
``destination`` are blocks or the table:

* preconditions: ``clear(block)``, ``on(block, source)``, ``clear(destination)`` (the table is
  always clear, so that fact is only required of a block); and block, source and destination
  are three different things;
* adds ``on(block, destination)`` and ``clear(source)`` (for a block source);
* deletes ``on(block, source)`` and ``clear(destination)`` (for a block destination).

The oracle (:func:`check_plan`) simulates the plan on the fact set: label 1 iff every move's
preconditions hold when it runs and every goal fact holds at the end.

Valid plans are random walks over applicable moves from a random initial state; the goal is
then drawn from the final state's ``on`` facts (at least one the plan made true). Invalid
plans are minimal corruptions of valid ones (:func:`corrupt`): swap two steps, delete a step,
duplicate a step or change one argument, each checked invalid by the oracle. Every invalid
sample comes with the valid plan it was made from, in the same split, and the corruption kind
is drawn so that plan lengths have the same distribution in both classes (see
:func:`corruption_kinds`).

Graph (:func:`problem_to_sample`). Fact nodes are the whole universe of ``on``/``clear``
facts over the problem's blocks, so their number depends on the block count alone and never
on which facts the plan mentions; a step links to the very fact nodes it requires, adds and
deletes, so "is this precondition true now?" is a question about one fact node and the steps
touching it, and the ``before`` edges order those steps. A step node also carries its position
in the plan as a number (``plan_position``, :math:`i / 8` for the i-th step), so that ordering two
steps is a comparison of their features rather than a count of edges.

======  ============================  ==================================================
level   nodes                         triples
======  ============================  ==================================================
L1      block, table, step,           step -moves/from/to-> block|table,
        initial_state                 step -next-> following step, step -before-> every
                                      later step, initial_state -initially-> fact
L2      on_fact, clear_fact           fact -fact_block-> its block, on_fact -fact_support->
                                      block|table; step -requires/adds/deletes-> fact
                                      (the action schema's declared preconditions/effects)
L3      goal                          on_fact -subgoal_of-> goal
======  ============================  ==================================================

The plan flows up the hierarchy along the edges: steps and the initial state point into facts
(L1 → L2), subgoal facts into the goal (L2 → L3); a fact points to its own arguments. Every
confidence is 1.0: all triples are stated facts.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

from nsm.data.base import SPLITS, split_sizes
from nsm.data.graph import Sample
from nsm.data.triples import SemanticTriple

TABLE = "table"
MIN_BLOCKS, MAX_BLOCKS = 3, 5
MIN_STEPS, MAX_STEPS = 2, 8
MAX_GOAL_FACTS = 3
CORRUPTION_KINDS = ("swap", "delete", "duplicate", "change")

# A ground fact: ("on", block, support) or ("clear", block).
Fact = tuple[str, ...]


@dataclass(frozen=True)
class ProblemSizes:
    """The block counts and plan lengths a split draws from, each an inclusive range."""

    blocks: tuple[int, int] = (MIN_BLOCKS, MAX_BLOCKS)
    steps: tuple[int, int] = (MIN_STEPS, MAX_STEPS)

    def __str__(self) -> str:
        return f"{self.blocks[0]}-{self.blocks[1]} blocks, plans of {self.steps[0]}-{self.steps[1]} moves"


IN_DISTRIBUTION = ProblemSizes()
# The out-of-distribution split (`--ood`): more blocks and longer plans than any training problem.
# Its steps' plan_position runs past 1 (i / MAX_STEPS), a value training never showed.
OUT_OF_DISTRIBUTION = ProblemSizes(blocks=(6, 8), steps=(9, 12))


def on(block: str, support: str) -> Fact:
    return ("on", block, support)


def clear(block: str) -> Fact:
    return ("clear", block)


@functools.cache
def fact_name(fact: Fact) -> str:
    return f"{fact[0]}({','.join(fact[1:])})"


@dataclass(frozen=True)
class Move:
    """``move(block, source, destination)``; its preconditions and effects are the action schema."""

    block: str
    source: str
    destination: str

    def __str__(self) -> str:
        return f"move({self.block},{self.source},{self.destination})"

    @property
    def preconditions(self) -> tuple[Fact, ...]:
        """In the order the oracle checks (and reports) them."""
        required = (clear(self.block), on(self.block, self.source))
        return required + ((clear(self.destination),) if self.destination != TABLE else ())

    @property
    def add_effects(self) -> tuple[Fact, ...]:
        return (on(self.block, self.destination),) + ((clear(self.source),) if self.source != TABLE else ())

    @property
    def delete_effects(self) -> tuple[Fact, ...]:
        return (on(self.block, self.source),) + ((clear(self.destination),) if self.destination != TABLE else ())

    def renamed(self, names: dict[str, str]) -> Move:
        return Move(names[self.block], names[self.source], names[self.destination])


@dataclass(frozen=True)
class Problem:
    """A blocksworld problem with a candidate plan. ``initial`` holds every true on/clear fact."""

    blocks: tuple[str, ...]
    initial: frozenset[Fact]
    goal: frozenset[Fact]
    plan: tuple[Move, ...]

    def renamed(self, names: dict[str, str]) -> Problem:
        """The same problem with blocks renamed by ``names`` (the table keeps its name)."""
        names = {**names, TABLE: TABLE}

        def rename(facts: frozenset[Fact]) -> frozenset[Fact]:
            return frozenset((fact[0], *(names[arg] for arg in fact[1:])) for fact in facts)

        return Problem(
            blocks=tuple(sorted(names[b] for b in self.blocks)),
            initial=rename(self.initial),
            goal=rename(self.goal),
            plan=tuple(m.renamed(names) for m in self.plan),
        )


def facts_of(support: dict[str, str]) -> frozenset[Fact]:
    """The on/clear facts of the state where each block sits on ``support[block]``."""
    covered = set(support.values())
    return frozenset([on(b, s) for b, s in support.items()] + [clear(b) for b in support if b not in covered])


def check_plan(problem: Problem) -> tuple[int, str]:
    """The oracle: simulate the plan on the initial facts; ``(label, reason)``.

    Label 1 iff each move's preconditions hold when it runs and the goal holds after the last.
    """
    state = set(problem.initial)
    objects = {*problem.blocks, TABLE}
    for number, move in enumerate(problem.plan, start=1):
        where = f"step {number} {move}"
        if {move.block, move.source, move.destination} - objects:
            return 0, f"{where}: unknown object"
        if move.block == TABLE or len({move.block, move.source, move.destination}) < 3:
            return 0, f"{where}: block, source and destination must be three different things"
        for fact in move.preconditions:
            if fact not in state:
                what = f"is not on {fact[2]}" if fact[0] == "on" else "is not clear"
                return 0, f"{where}: {fact[1]} {what}"
        state.difference_update(move.delete_effects)
        state.update(move.add_effects)
    steps = f"{len(problem.plan)} step{'' if len(problem.plan) == 1 else 's'}"
    missing = sorted(fact_name(f) for f in problem.goal if f not in state)
    if missing:
        return 0, f"goal {', '.join(missing)} does not hold after {steps}"
    return 1, f"valid: goal {', '.join(sorted(map(fact_name, problem.goal)))} holds after {steps}"


# --- valid problems ------------------------------------------------------------------------------

def random_problem(rng: random.Random, num_blocks: int, num_steps: int) -> Problem:
    """A random initial state, a random walk of ``num_steps`` applicable moves, and a goal of
    1–3 ``on`` facts of the final state, at least one of them made true by the plan.

    Blocks are named ``b1, b2, ...`` in order of first mention in the plan (then the goal, then
    the rest), so problems that differ only by a renaming of blocks mostly share one name.
    """
    while True:
        blocks = [f"x{i}" for i in range(num_blocks)]
        rng.shuffle(blocks)
        # Cut the shuffled blocks into towers; each block sits on its predecessor in the tower.
        support = {blocks[0]: TABLE}
        for below, block in zip(blocks, blocks[1:]):
            support[block] = TABLE if rng.random() < 0.5 else below
        initial = facts_of(support)
        plan: list[Move] = []
        for _ in range(num_steps):
            covered = set(support.values())
            free = [b for b in blocks if b not in covered]
            moves = [Move(b, support[b], d) for b in free for d in (*free, TABLE)
                     if d != b and d != support[b]]
            move = rng.choice(moves)
            plan.append(move)
            support[move.block] = move.destination
        final = sorted(on(b, s) for b, s in support.items())
        achieved = [f for f in final if f not in initial]
        if not achieved:
            continue
        first = rng.choice(achieved)
        others = [f for f in final if f != first]
        goal = [first, *rng.sample(others, rng.randint(0, min(MAX_GOAL_FACTS, num_blocks) - 1))]
        mention = [arg for m in plan for arg in (m.block, m.source, m.destination)]
        mention += [arg for f in sorted(goal) for arg in f[1:]] + sorted(blocks)
        order = [b for b in dict.fromkeys(mention) if b != TABLE]
        names = {b: f"b{i}" for i, b in enumerate(order, start=1)}
        return Problem(tuple(blocks), initial, frozenset(goal), tuple(plan)).renamed(names)


# --- minimal corruptions -------------------------------------------------------------------------

def edits(problem: Problem, kind: str) -> Iterator[tuple[Move, ...]]:
    """Every plan one edit of ``kind`` away from ``problem.plan`` (one per distinct result).

    ``change`` replaces one argument of one move by another block (or the table, for a source
    or destination), keeping the move well formed: three different things, a block moved.
    """
    plan = problem.plan
    if kind == "swap":
        for i in range(len(plan)):
            for j in range(i + 1, len(plan)):
                if plan[i] != plan[j]:
                    yield plan[:i] + (plan[j],) + plan[i + 1:j] + (plan[i],) + plan[j + 1:]
    elif kind == "delete":
        for i in range(len(plan)):
            yield plan[:i] + plan[i + 1:]
    elif kind == "duplicate":
        for i in range(len(plan)):
            for j in range(len(plan) + 1):
                if j != i + 1:  # a copy just after step i is the same plan as one just before it
                    yield plan[:j] + (plan[i],) + plan[j:]
    elif kind == "change":
        places = (*problem.blocks, TABLE)
        for i, move in enumerate(plan):
            for field in ("block", "source", "destination"):
                for value in places:
                    changed = replace(move, **{field: value})
                    if (value != getattr(move, field) and changed.block != TABLE
                            and len({changed.block, changed.source, changed.destination}) == 3):
                        yield plan[:i] + (changed,) + plan[i + 1:]
    else:
        raise ValueError(f"unknown corruption kind {kind!r}; known: {', '.join(CORRUPTION_KINDS)}")


def corrupt(problem: Problem, kind: str, rng: random.Random) -> Problem | None:
    """A random one-edit variant of ``problem`` of ``kind`` that the oracle rejects, or ``None``
    when every such edit leaves the plan valid."""
    candidates = list(edits(problem, kind))
    rng.shuffle(candidates)
    for plan in candidates:
        corrupted = replace(problem, plan=plan)
        if check_plan(corrupted)[0] == 0:
            return corrupted
    return None


def corruption_kinds(num_steps: int, steps: tuple[int, int] = (MIN_STEPS, MAX_STEPS)) -> tuple[str, ...]:
    """The kinds to draw from (uniformly) to corrupt a valid plan of ``num_steps`` moves, plan
    lengths ranging over ``steps``.

    Delete and duplicate shift the length by -1 and +1 with equal probability (1/4) wherever
    the result stays within ``steps``, and a length-preserving kind takes their
    place at the ends. The length transition is then symmetric, hence doubly stochastic, so
    corrupting valid plans of uniformly distributed length yields invalid plans of uniformly
    distributed length: the step count says nothing about the label.
    """
    shorter = "delete" if num_steps > steps[0] else "change"
    longer = "duplicate" if num_steps < steps[1] else "swap"
    return ("swap", "change", shorter, longer)


def random_pair(rng: random.Random, sizes: ProblemSizes = IN_DISTRIBUTION) -> tuple[Problem, Problem]:
    """A valid problem of ``sizes`` and a minimal corruption of it that the oracle rejects."""
    num_blocks = rng.randint(*sizes.blocks)
    num_steps = rng.randint(*sizes.steps)
    kind = rng.choice(corruption_kinds(num_steps, sizes.steps))
    while True:
        valid = random_problem(rng, num_blocks, num_steps)
        invalid = corrupt(valid, kind, rng)
        if invalid is not None:
            return valid, invalid


# --- triples -------------------------------------------------------------------------------------

@functools.cache
def fact_universe(blocks: tuple[str, ...]) -> tuple[dict[str, str], tuple[SemanticTriple, ...]]:
    """Nodes and triples every problem over ``blocks`` shares: the blocks, the table and every
    on/clear fact over them with its arguments. (Cached: generation builds few distinct sets.)"""
    node_types = {b: "block" for b in blocks} | {TABLE: "table"}
    triples = []
    for b in blocks:
        for support in (*blocks, TABLE):
            if support != b:
                name = fact_name(on(b, support))
                node_types[name] = "on_fact"
                triples += [SemanticTriple(name, "fact_block", b, 1.0, 2),
                            SemanticTriple(name, "fact_support", support, 1.0, 2)]
        name = fact_name(clear(b))
        node_types[name] = "clear_fact"
        triples.append(SemanticTriple(name, "fact_block", b, 1.0, 2))
    return node_types, tuple(triples)


@functools.cache
def step_order(num_steps: int) -> tuple[SemanticTriple, ...]:
    """``next`` from each step to the following one and ``before`` to every later one."""
    steps = [f"step{i}" for i in range(1, num_steps + 1)]
    return tuple(
        [SemanticTriple(a, "next", b, 1.0, 1) for a, b in zip(steps, steps[1:])]
        + [SemanticTriple(a, "before", b, 1.0, 1) for i, a in enumerate(steps) for b in steps[i + 1:]]
    )


def problem_to_sample(problem: Problem) -> Sample:
    """The problem's graph (see the module docstring), labelled by :func:`check_plan`."""
    universe_nodes, universe_triples = fact_universe(problem.blocks)
    steps = [f"step{i}" for i in range(1, len(problem.plan) + 1)]
    node_types = universe_nodes | {"initial_state": "initial_state"} | dict.fromkeys(steps, "step") | {"goal": "goal"}
    triples = [*universe_triples, *step_order(len(steps))]
    triples += [SemanticTriple("initial_state", "initially", fact_name(f), 1.0, 1) for f in sorted(problem.initial)]
    for step, move in zip(steps, problem.plan):
        triples += [SemanticTriple(step, "moves", move.block, 1.0, 1),
                    SemanticTriple(step, "from", move.source, 1.0, 1),
                    SemanticTriple(step, "to", move.destination, 1.0, 1)]
        for relation, facts in (("requires", move.preconditions), ("adds", move.add_effects),
                                ("deletes", move.delete_effects)):
            triples += [SemanticTriple(step, relation, fact_name(f), 1.0, 2) for f in facts]
    triples += [SemanticTriple(fact_name(f), "subgoal_of", "goal", 1.0, 3) for f in sorted(problem.goal)]
    label, reason = check_plan(problem)
    # A step's place in the plan, as a number: "did this step come before that one?" is then a
    # comparison, not a count of `before` edges (the order itself is in the triples already).
    positions = {step: (i / MAX_STEPS,) for i, step in enumerate(steps, start=1)}
    return Sample(triples=triples, node_types=node_types, label=label, reason=reason, extras=positions)


def sample_to_problem(sample: Sample) -> Problem:
    """Read the problem back from a sample's triples alone (the graph holds all of it)."""
    by_relation: dict[str, list[SemanticTriple]] = {}
    for t in sample.triples:
        by_relation.setdefault(t.predicate, []).append(t)
    fact_of: dict[str, Fact] = {}
    for t in by_relation.get("fact_block", []):
        kind = "on" if sample.node_types[t.subject] == "on_fact" else "clear"
        fact_of[t.subject] = (kind, t.object)
    for t in by_relation.get("fact_support", []):
        fact_of[t.subject] += (t.object,)
    args = {(t.subject, t.predicate): t.object for r in ("moves", "from", "to") for t in by_relation.get(r, [])}
    following = {t.subject: t.object for t in by_relation.get("next", [])}
    steps = [n for n, kind in sample.node_types.items() if kind == "step"]
    plan = []
    if steps:
        step = (set(steps) - set(following.values())).pop()
        while step is not None:
            plan.append(Move(args[step, "moves"], args[step, "from"], args[step, "to"]))
            step = following.get(step)
    return Problem(
        blocks=tuple(sorted(n for n, kind in sample.node_types.items() if kind == "block")),
        initial=frozenset(fact_of[t.object] for t in by_relation.get("initially", [])),
        goal=frozenset(fact_of[t.subject] for t in by_relation.get("subgoal_of", [])),
        plan=tuple(plan),
    )


# --- splits --------------------------------------------------------------------------------------

def generate_splits(num_samples: int, seed: int) -> dict[str, list[Sample]]:
    """``num_samples`` samples over the splits of :func:`split_sizes`, each split half valid
    plans and half their corruptions (a pair never straddles splits), no problem twice."""
    rng = random.Random(seed)
    seen: set[Problem] = set()
    return {split: problem_samples(rng, split_sizes(num_samples)[split], IN_DISTRIBUTION, seen) for split in SPLITS}


def generate_ood(num_samples: int, seed: int) -> list[Sample]:
    """``num_samples`` (even) samples of :data:`OUT_OF_DISTRIBUTION`'s sizes, drawn as
    :func:`generate_splits` draws each split; no training problem has as many blocks."""
    return problem_samples(random.Random(f"planning/ood/{seed}"), num_samples, OUT_OF_DISTRIBUTION, set())


def problem_samples(rng: random.Random, count: int, sizes: ProblemSizes, seen: set[Problem]) -> list[Sample]:
    """``count`` samples, valid plans and their corruptions in pairs, shuffled; no problem in
    ``seen`` (which gains the new ones)."""
    samples = []
    while len(samples) < count:
        pair = random_pair(rng, sizes)
        if seen.isdisjoint(pair):
            seen.update(pair)
            samples += map(problem_to_sample, pair)
    rng.shuffle(samples)
    return samples
