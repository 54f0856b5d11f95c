"""Matched pairs of causal scenarios, so that nothing but the mechanisms tells the label.

Neither counts nor the observed association may give the label away, so scenarios come in
pairs: one harmful, one beneficial, with the same bag of types (node-type counts and relation
counts) and the same observed rates ``P(S=1 | T=t)`` — the unmeasured part of one scenario is
set to match its partner's. Within every split each bag of types and each pair of observed rates
is then exactly 50/50, and in every pair the observed association points the wrong way for
exactly one of the two.
"""

from __future__ import annotations

import functools
import random
from collections import Counter, defaultdict
from typing import Iterator, NamedTuple

from nsm.data.domains.causal.generator import (IN_DISTRIBUTION, CausalAnswer, CausalScenario, MechanismChains,
                                             RateCalibration, random_scenario, scenario_sample)
from nsm.data.graph import Sample


class Labelled(NamedTuple):
    scenario: CausalScenario
    answer: CausalAnswer


class _Candidate:
    """A labelled scenario waiting for a partner; its rate calibration is fitted on first use."""

    def __init__(self, labelled: Labelled):
        self.labelled = labelled

    @functools.cached_property
    def calibration(self) -> RateCalibration:
        return RateCalibration.of(*self.labelled)

    def at(self, rates: tuple[float, float]) -> Labelled | None:
        """The scenario with these observed rates, or None if no unmeasured part gives them."""
        if rates == self.labelled.answer.observed_rates:
            return self.labelled
        unmeasured = self.calibration.unmeasured_part(*rates)
        return None if unmeasured is None else Labelled(*self.calibration.adjusted(*unmeasured))


def bag_of_types(sample: Sample) -> tuple:
    """What ``BagOfTypesMLP`` sees of a sample: its node-type counts and relation counts."""
    return (tuple(sorted(Counter(sample.node_types.values()).items())),
            tuple(sorted(Counter(t.predicate for t in sample.triples).items())))


def _matched(first: _Candidate, second: _Candidate, rng: random.Random) -> tuple[Labelled, Labelled] | None:
    """The two scenarios with equal observed rates: their midpoint, else one's rates (which one
    tried first is random, so being the one moved says nothing about the label); None if both
    cannot reach any of them."""
    first_rates, second_rates = first.labelled.answer.observed_rates, second.labelled.answer.observed_rates
    midpoint = ((first_rates[0] + second_rates[0]) / 2, (first_rates[1] + second_rates[1]) / 2)
    for rates in (midpoint, *rng.sample((first_rates, second_rates), 2)):
        moved_first = first.at(rates)
        moved_second = second.at(rates) if moved_first is not None else None
        if moved_second is not None:
            return moved_first, moved_second
    return None


def balanced_pairs(rng: random.Random, num_treatments: int, num_symptoms: int,
                   chains: MechanismChains = IN_DISTRIBUTION) -> Iterator[tuple[Labelled, Labelled]]:
    """Endless ``(harmful, beneficial)`` pairs of fresh scenarios (of ``chains``) whose samples have
    the same bag of types and the same observed rates; no sample's key is ever repeated."""
    seen: set[tuple] = set()
    waiting: dict[tuple, tuple[list[_Candidate], list[_Candidate]]] = defaultdict(lambda: ([], []))
    while True:
        candidate = _Candidate(Labelled(*random_scenario(rng, num_treatments, num_symptoms, chains)))
        sample = scenario_sample(*candidate.labelled)
        key = sample.key()
        if key in seen:
            continue
        seen.add(key)
        by_label = waiting[bag_of_types(sample)]
        partners = by_label[1 - sample.label]
        for i, partner in enumerate(partners):
            pair = _matched(candidate, partner, rng)
            if pair is not None:
                del partners[i]
                yield tuple(sorted(pair, key=lambda labelled: labelled.answer.beneficial))
                break
        else:
            by_label[sample.label].append(candidate)


def generate_causal_scenarios(sizes: dict[str, int], num_treatments: int, num_symptoms: int, seed: int | str,
                              chains: MechanismChains = IN_DISTRIBUTION) -> dict[str, list[Labelled]]:
    """The labelled scenarios of each split (``sizes``: split -> even count), of ``chains``, shuffled."""
    rng = random.Random(seed)
    pairs = balanced_pairs(rng, num_treatments, num_symptoms, chains)
    splits = {}
    for split, size in sizes.items():
        scenarios = [labelled for _ in range(size // 2) for labelled in next(pairs)]
        rng.shuffle(scenarios)
        splits[split] = scenarios
    return splits
