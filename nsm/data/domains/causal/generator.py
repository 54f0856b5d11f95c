"""The causal domain: does a treatment lower a symptom, or does it only look that way?

A scenario is a structural causal model (SCM) over the binary variables of one patient::

    risk factor C ──prompts / discourages──▶ treatment T ◀── background U (unmeasured)
    risk factor C ──increases / reduces──▶ symptom S ◀──────── background U
    T ──activates / inhibits──▶ mechanism M (──▶ mechanism M′) ──increases / reduces──▶ S
    condition K ──reverses / blocks──▶ M        (when K is present, M's effect flips sign / vanishes)

Every variable ``X`` has a base rate ``b_X`` and each cause ``Y`` a signed strength ``w_YX``::

    P(X=1 | pa_X) = b_X + Σ_Y w_YX · y · Π_{K modifies Y} (1 + (f_K − 1) · k),   f = −1 reverses, 0 blocks

(a root's base rate is its prevalence); the generator keeps every such probability in [0, 1].

The oracle enumerates all ``2^n`` assignments and applies the truncated factorisation::

    P(S=1 | do(T=t)) = Σ_{v: T=t, S=1} Π_{X ≠ T} P(x | pa_X),     ATE = P(S=1|do(T=1)) − P(S=1|do(T=0)),

and labels the treatment beneficial (1) iff ATE < 0. Because S's equation is additive, the ATE is
the sum over mechanism paths of the products of their strengths, each mechanism's effect on S
scaled by ``E[Π (1 + (f_K − 1) k)]`` over its conditions: confounders do not enter it. The
out-of-distribution split (:data:`OUT_OF_DISTRIBUTION`) asks the question of mechanism chains
one mechanism deeper than any in training.

The graph shows the *measured* part of the SCM and the observed rates ``P(S=1 | T=t)``. Those
rates are confounded by the risk factors and by the unmeasured background U (which, with S's
base rate, is left out of the graph), so they cannot be adjusted back to the ATE; the
mechanisms identify it (the front-door situation). :func:`scenario_from_sample` reads the
measured SCM back; its ATE is the label's. The answer — the ATE or anything computed from it —
is never in the graph.

Triples, by level (confidence in brackets):

* L1 ``patient --has_risk_factor--> C`` [P(C=1)], ``patient --has_condition--> K`` [P(K=1)],
  ``patient --base_rate--> T`` [b_T], ``T --co_occurs_with--> S`` [P(S=1|T=1)],
  ``S --occurs_without--> T`` [P(S=1|T=0)];
* L2 ``patient --base_rate--> M`` [b_M], ``C --prompts/discourages--> T``,
  ``T, M --activates/inhibits--> M``, ``M, C --increases/reduces--> S`` [|w|], ``K --reverses/blocks--> M`` [1];
* L3 ``question --asks_about--> T``, ``question --concerns--> S`` [1].
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass, replace

import numpy as np

from nsm.data.graph import Sample
from nsm.data.domains.causal.schema import CAUSAL_SCHEMA
from nsm.data.triples import SemanticTriple

# The relation naming a signed effect, by the node type of its target: (positive, negative).
EFFECT_RELATIONS = {
    "treatment": ("prompts", "discourages"),
    "mechanism": ("activates", "inhibits"),
    "symptom": ("increases", "reduces"),
}
# What a present condition multiplies a modified mechanism's effects by.
MODIFIER_FACTORS = {"reverses": -1.0, "blocks": 0.0}
# The relation stating a root's prevalence; other measured variables' base rates are `base_rate`.
PREVALENCE_RELATIONS = {"risk_factor": "has_risk_factor", "condition": "has_condition"}

PATIENT = "patient"
QUESTION = "question"
# The unmeasured background: a variable of every scenario (kind and name), never in the graph.
BACKGROUND = "background"
# |ATE| below this is resampled, so that no label hangs on a rounding error.
MIN_EFFECT = 0.05
# Sizes of the name pools of the other variables; names only make samples distinct, never features.
NUM_MECHANISM_NAMES = 24
NUM_RISK_FACTOR_NAMES = 8
NUM_CONDITION_NAMES = 8


@dataclass(frozen=True)
class Effect:
    """``cause`` present raises P(``effect``=1) by ``strength`` (lowers it when negative)."""

    cause: str
    effect: str
    strength: float


@dataclass(frozen=True)
class Modifier:
    """When ``condition`` is present, the effects of ``mechanism`` are reversed or blocked."""

    condition: str
    mechanism: str
    kind: str


@dataclass
class CausalScenario:
    """An SCM of the form in the module docstring.

    ``variables`` maps each variable to its kind — a node type, or ``BACKGROUND`` — with causes
    before effects; ``base_rates`` gives ``b_X``; ``effects`` and ``modifiers`` are the edges.
    """

    treatment: str
    symptom: str
    variables: dict[str, str]
    base_rates: dict[str, float]
    effects: list[Effect]
    modifiers: list[Modifier]

    def parents(self, name: str) -> list[str]:
        """The variables ``P(name | ·)`` depends on: its causes, then the conditions modifying them."""
        causes = [e.cause for e in self.effects if e.effect == name]
        conditions = [m.condition for m in self.modifiers if m.mechanism in causes]
        return list(dict.fromkeys(causes + conditions))

    def probabilities_of_one(self, assignments: np.ndarray) -> np.ndarray:
        """``P(X=1 | pa_X)`` ``[A, n]`` of every variable (columns in ``variables`` order) under each
        row of ``assignments`` ``[A, n]``, 0/1 values of the variables."""
        column = {name: j for j, name in enumerate(self.variables)}
        p_one = np.tile([self.base_rates[name] for name in self.variables], (len(assignments), 1))
        for effect in self.effects:
            weight = effect.strength * assignments[:, column[effect.cause]]
            for modifier in self.modifiers:
                if modifier.mechanism == effect.cause:
                    factor = MODIFIER_FACTORS[modifier.kind]
                    weight = weight * (1.0 + (factor - 1.0) * assignments[:, column[modifier.condition]])
            p_one[:, column[effect.effect]] += weight
        return p_one

    def symptom_swing(self) -> tuple[float, float]:
        """How far S's causes can pull ``P(S=1)`` below and above its base rate."""
        into_symptom = [e for e in self.effects if e.effect == self.symptom]
        flips = {m.mechanism for m in self.modifiers if m.kind == "reverses"}
        return _swing([e.strength for e in into_symptom], [e.cause in flips for e in into_symptom])


@dataclass(frozen=True)
class CausalAnswer:
    """The symptom's probability under intervention and under observation, for T = 1 and T = 0."""

    p_symptom_do_treat: float
    p_symptom_do_untreated: float
    p_symptom_given_treated: float
    p_symptom_given_untreated: float

    @property
    def average_treatment_effect(self) -> float:
        return self.p_symptom_do_treat - self.p_symptom_do_untreated

    @property
    def observed_difference(self) -> float:
        return self.p_symptom_given_treated - self.p_symptom_given_untreated

    @property
    def observed_rates(self) -> tuple[float, float]:
        """``(P(S=1 | T=1), P(S=1 | T=0))``."""
        return self.p_symptom_given_treated, self.p_symptom_given_untreated

    @property
    def beneficial(self) -> bool:
        return self.average_treatment_effect < 0

    @property
    def observation_misleads(self) -> bool:
        """Whether the observed association alone would give the wrong label."""
        return (self.observed_difference < 0) != self.beneficial

    @property
    def reason(self) -> str:
        treat, untreated = self.p_symptom_do_treat, self.p_symptom_do_untreated
        if self.beneficial:
            return f"beneficial: P(symptom|do(treat))={treat:.3f} < P(symptom|do(no treat))={untreated:.3f}"
        return f"harmful: P(symptom|do(treat))={treat:.3f} >= P(symptom|do(no treat))={untreated:.3f}"


@functools.cache
def _assignments(num_variables: int) -> np.ndarray:
    """All ``2^n`` assignments of ``n`` binary variables, ``[2^n, n]``."""
    return (np.arange(2 ** num_variables)[:, None] >> np.arange(num_variables)) & 1


def causal_answer(scenario: CausalScenario) -> CausalAnswer:
    """Exact interventional and observational symptom rates by enumerating every assignment."""
    names = list(scenario.variables)
    assignments = _assignments(len(names))  # [2^n, n]
    p_one = scenario.probabilities_of_one(assignments)
    if p_one.min() < -1e-12 or p_one.max() > 1 + 1e-12:
        raise ValueError("a structural equation leaves [0, 1]: some P(X=1 | parents) is not a probability")
    factors = np.where(assignments == 1, p_one, 1.0 - p_one)
    t, s = names.index(scenario.treatment), names.index(scenario.symptom)
    # Truncated factorisation: do(T=t) deletes T's own factor and fixes T=t.
    treatment_factor = factors[:, t].copy()
    factors[:, t] = 1.0
    without_treatment = factors.prod(axis=1)
    joint = without_treatment * treatment_factor
    treated, symptom = assignments[:, t] == 1, assignments[:, s] == 1
    p_treated = joint[treated].sum()
    if not 0 < p_treated < 1:
        raise ValueError(f"P({scenario.treatment}=1) = {p_treated}: the observational rates are undefined")
    return CausalAnswer(
        p_symptom_do_treat=float(without_treatment[treated & symptom].sum()),
        p_symptom_do_untreated=float(without_treatment[~treated & symptom].sum()),
        p_symptom_given_treated=float(joint[treated & symptom].sum() / p_treated),
        p_symptom_given_untreated=float(joint[~treated & symptom].sum() / (1 - p_treated)),
    )


def scenario_sample(scenario: CausalScenario, answer: CausalAnswer) -> Sample:
    """The measured scenario as triples (see the module docstring), labelled by ``answer``."""
    measured = {name: kind for name, kind in scenario.variables.items() if kind != BACKGROUND}
    levels = CAUSAL_SCHEMA.node_types
    triples = [
        SemanticTriple(PATIENT, PREVALENCE_RELATIONS.get(kind, "base_rate"), name,
                       scenario.base_rates[name], levels[kind])
        for name, kind in measured.items() if name != scenario.symptom
    ]
    triples += [
        SemanticTriple(e.cause, EFFECT_RELATIONS[measured[e.effect]][e.strength < 0], e.effect, abs(e.strength), 2)
        for e in scenario.effects if e.cause in measured
    ]
    triples += [SemanticTriple(m.condition, m.kind, m.mechanism, 1.0, 2) for m in scenario.modifiers]
    triples += [
        SemanticTriple(scenario.treatment, "co_occurs_with", scenario.symptom, answer.p_symptom_given_treated, 1),
        SemanticTriple(scenario.symptom, "occurs_without", scenario.treatment, answer.p_symptom_given_untreated, 1),
        SemanticTriple(QUESTION, "asks_about", scenario.treatment, 1.0, 3),
        SemanticTriple(QUESTION, "concerns", scenario.symptom, 1.0, 3),
    ]
    node_types = {PATIENT: "patient", **measured, QUESTION: "treatment_question"}
    return Sample(triples=triples, node_types=node_types, label=int(answer.beneficial), reason=answer.reason)


def scenario_from_sample(sample: Sample) -> CausalScenario:
    """The measured SCM a sample states; it has the full scenario's ATE.

    The graph leaves out the background and S's base rate. Dropping the background's additive
    terms and taking S's base rate mid-way in the range that keeps its equation a probability
    shift P(S=1 | do(T=t)) by the same amount for both t, so the ATE — the label — is unchanged.
    """
    variables = {name: kind for name, kind in sample.node_types.items() if kind not in ("patient", "treatment_question")}
    by_kind = {kind: name for name, kind in variables.items()}
    base_rates, effects, modifiers = {}, [], []
    for t in sample.triples:
        if t.subject == PATIENT:
            base_rates[t.object] = t.confidence
        elif t.predicate in MODIFIER_FACTORS:
            modifiers.append(Modifier(t.subject, t.object, t.predicate))
        elif t.object in variables and t.predicate in EFFECT_RELATIONS.get(variables[t.object], ()):
            sign = -1.0 if t.predicate == EFFECT_RELATIONS[variables[t.object]][1] else 1.0
            effects.append(Effect(t.subject, t.object, sign * t.confidence))
    scenario = CausalScenario(by_kind["treatment"], by_kind["symptom"], variables, base_rates, effects, modifiers)
    down, up = scenario.symptom_swing()
    base_rates[scenario.symptom] = (down + 1.0 - up) / 2
    return scenario


def _swing(strengths: list[float], flippable: list[bool]) -> tuple[float, float]:
    """How far signed effects can pull ``P(X=1)`` below and above the base rate.

    A flippable effect (its cause has a reversing condition) may act with either sign.
    """
    down = sum(abs(w) for w, flip in zip(strengths, flippable) if w < 0 or flip)
    up = sum(abs(w) for w, flip in zip(strengths, flippable) if w > 0 or flip)
    return down, up


def _structural_equation(rng: random.Random, raw: list[float], flippable: list[bool],
                         usage: tuple[float, float]) -> tuple[float, list[float]]:
    """A base rate and rescaled strengths keeping ``b + Σ w·y`` in [0, 1] for all parent values.

    The strengths' total swing is a fraction in ``usage`` (low, high) of the unit interval; the
    base rate sits where the swing fits.
    """
    down, up = _swing(raw, flippable)
    scale = rng.uniform(*usage) / (down + up)
    return rng.uniform(down * scale, 1.0 - up * scale), [w * scale for w in raw]


def _sign(rng: random.Random) -> float:
    return rng.choice((-1.0, 1.0))


@dataclass(frozen=True)
class MechanismChains:
    """The mechanism paths from T to S a scenario draws: how many (an inclusive range) and how
    long each is (a draw from ``lengths``)."""

    paths: tuple[int, int] = (1, 3)
    lengths: tuple[int, ...] = (1, 1, 2)

    def __str__(self) -> str:
        return f"{self.paths[0]}-{self.paths[1]} mechanism paths of {'/'.join(map(str, sorted(set(self.lengths))))} mechanisms"


IN_DISTRIBUTION = MechanismChains()
# The out-of-distribution split (`--ood`): every path one mechanism deeper than any in training, and
# at most two of them, so that a scenario has no more mechanisms (3 or 6) than training's (1-6).
OUT_OF_DISTRIBUTION = MechanismChains(paths=(1, 2), lengths=(3,))


def random_scenario(rng: random.Random, num_treatments: int, num_symptoms: int,
                    chains: MechanismChains = IN_DISTRIBUTION) -> tuple[CausalScenario, CausalAnswer]:
    """A random SCM with the oracle's answer, resampled until |ATE| >= ``MIN_EFFECT``.

    ``chains`` competing mechanism paths (by default 1–3, each 1 or 2 mechanisms long) lead from
    T to S, 1–2 risk factors and the background confound T and S, 0–2 conditions reverse or block
    a mechanism.
    """
    while True:
        treatment = f"treatment_{rng.randrange(num_treatments)}"
        symptom = f"symptom_{rng.randrange(num_symptoms)}"
        path_lengths = [rng.choice(chains.lengths) for _ in range(rng.randint(*chains.paths))]
        mechanism_names = iter(f"mechanism_{i}" for i in rng.sample(range(NUM_MECHANISM_NAMES), sum(path_lengths)))
        paths = [[next(mechanism_names) for _ in range(length)] for length in path_lengths]
        mechanisms = [m for path in paths for m in path]
        risk_factors = [f"risk_factor_{i}" for i in rng.sample(range(NUM_RISK_FACTOR_NAMES), rng.randint(1, 2))]
        conditions = [f"condition_{i}"
                      for i in rng.sample(range(NUM_CONDITION_NAMES), rng.randint(0, min(2, len(mechanisms))))]
        modifiers = [Modifier(c, m, rng.choice(tuple(MODIFIER_FACTORS)))
                     for c, m in zip(conditions, rng.sample(mechanisms, len(conditions)))]
        flips = {m.mechanism for m in modifiers if m.kind == "reverses"}

        confounders = [BACKGROUND] + risk_factors
        base_rates = {name: rng.uniform(0.2, 0.8) for name in confounders + conditions}
        effects = []

        def add_equation(target: str, causes: list[str], raw: list[float], usage: tuple[float, float]) -> None:
            base_rates[target], strengths = _structural_equation(rng, raw, [c in flips for c in causes], usage)
            effects.extend(Effect(cause, target, w) for cause, w in zip(causes, strengths))

        # Confounders steer the prescription strongly, the background most, so the observed rates
        # can be set through it (see RateCalibration) with a moderate effect on S.
        prompting = ([_sign(rng) * rng.uniform(1.0, 2.0)]
                     + [_sign(rng) * rng.uniform(0.5, 1.0) for _ in risk_factors])
        add_equation(treatment, confounders, prompting, usage=(0.85, 0.98))
        for path in paths:
            for cause, mechanism in zip([treatment] + path, path):
                add_equation(mechanism, [cause], [_sign(rng) * rng.uniform(0.5, 1.0)], usage=(0.6, 0.95))
        # All confounders bias the observed association the same way (`bias` = +1: the treated look
        # worse off), so their biases add up instead of cancelling; `bias` is drawn blind to the paths.
        # S's causes use at most 80% of the unit interval, leaving room to reset the background's effect.
        bias = _sign(rng)
        symptom_causes = [path[-1] for path in paths] + confounders
        raw_symptom_effects = ([_sign(rng) * rng.uniform(0.3, 1.0) for _ in paths]
                               + [bias * math.copysign(rng.uniform(1.0, 2.0), prompting[0])]
                               + [bias * math.copysign(rng.uniform(0.5, 1.0), p) for p in prompting[1:]])
        add_equation(symptom, symptom_causes, raw_symptom_effects, usage=(0.5, 0.8))

        variables = {BACKGROUND: BACKGROUND, **{r: "risk_factor" for r in risk_factors},
                     **{c: "condition" for c in conditions}, treatment: "treatment",
                     **{m: "mechanism" for m in mechanisms}, symptom: "symptom"}
        scenario = CausalScenario(treatment, symptom, variables, base_rates, effects, modifiers)
        answer = causal_answer(scenario)
        if abs(answer.average_treatment_effect) >= MIN_EFFECT:
            return scenario, answer


def _with_symptom_background(scenario: CausalScenario, strength: float, base_rate: float) -> CausalScenario:
    """The scenario with the background's effect on S and S's base rate replaced."""
    effects = [replace(e, strength=strength) if e.cause == BACKGROUND and e.effect == scenario.symptom else e
               for e in scenario.effects]
    return replace(scenario, effects=effects, base_rates={**scenario.base_rates, scenario.symptom: base_rate})


@dataclass(frozen=True)
class RateCalibration:
    """How a scenario's observed rates ``P(S=1 | T=t)`` depend on the unmeasured part of S's
    equation — the background's effect ``w`` and S's base rate ``b``:

        P(S=1 | T=t) = intercept_t + b + w · slope_t

    (S's equation is affine in both, and the background reaches S only directly). Changing
    ``w`` and ``b`` changes nothing in the graph but those two rates, and leaves the ATE alone.
    ``swing`` is how far S's other causes pull ``P(S=1)`` below and above ``b``.
    """

    scenario: CausalScenario
    intercept_treated: float
    intercept_untreated: float
    slope_treated: float
    slope_untreated: float
    swing: tuple[float, float]

    @classmethod
    def of(cls, scenario: CausalScenario, answer: CausalAnswer) -> RateCalibration:
        """Fit from the scenario's own answer and one probe at ``w = 0``."""
        [strength] = [e.strength for e in scenario.effects if e.cause == BACKGROUND and e.effect == scenario.symptom]
        base_rate = scenario.base_rates[scenario.symptom]
        without_background = _with_symptom_background(scenario, 0.0, base_rate)
        probe = causal_answer(without_background)
        return cls(
            scenario,
            intercept_treated=probe.p_symptom_given_treated - base_rate,
            intercept_untreated=probe.p_symptom_given_untreated - base_rate,
            slope_treated=(answer.p_symptom_given_treated - probe.p_symptom_given_treated) / strength,
            slope_untreated=(answer.p_symptom_given_untreated - probe.p_symptom_given_untreated) / strength,
            swing=without_background.symptom_swing(),
        )

    def unmeasured_part(self, p_symptom_given_treated: float,
                        p_symptom_given_untreated: float) -> tuple[float, float] | None:
        """``(w, b)`` giving the observed rates these values; None if S's equation would leave [0, 1]."""
        strength = ((p_symptom_given_treated - p_symptom_given_untreated
                     - self.intercept_treated + self.intercept_untreated)
                    / (self.slope_treated - self.slope_untreated))
        base_rate = p_symptom_given_treated - self.intercept_treated - strength * self.slope_treated
        down, up = self.swing
        if not down + max(-strength, 0.0) <= base_rate <= 1.0 - up - max(strength, 0.0):
            return None
        return strength, base_rate

    def adjusted(self, strength: float, base_rate: float) -> tuple[CausalScenario, CausalAnswer]:
        """The scenario with ``w = strength`` and ``b = base_rate``, with the oracle's answer."""
        scenario = _with_symptom_background(self.scenario, strength, base_rate)
        return scenario, causal_answer(scenario)
