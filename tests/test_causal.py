import itertools
import logging
from collections import Counter, defaultdict

import numpy as np
import pytest
import torch

from nsm.data.base import SPLITS, split_sizes
from nsm.data.domains.causal.generator import (
    BACKGROUND, MIN_EFFECT, MODIFIER_FACTORS, CausalScenario, Effect, Modifier, causal_answer, scenario_from_sample,
    scenario_sample,
)
from nsm.data.domains.causal.schema import CAUSAL_SCHEMA
from nsm.data.domains.causal.dataset import CausalTripleDataset
from nsm.data.domains.causal.pairing import bag_of_types, generate_causal_scenarios
from nsm.errors import NSMError
from nsm.analysis.leakage import bag_of_types_accuracy

NUM_SCENARIOS = 1000


def scenario(base_rates: dict[str, float], effects: list[tuple[str, str, float]],
             modifiers: tuple[tuple[str, str, str], ...] = ()) -> CausalScenario:
    """A hand-made SCM over C (risk factor), K (condition), T, M1, M2 (mechanisms) and S."""
    kinds = {"C": "risk_factor", "K": "condition", "T": "treatment", "M1": "mechanism", "M2": "mechanism",
             "S": "symptom"}
    return CausalScenario("T", "S", {name: kinds[name] for name in base_rates}, base_rates,
                          [Effect(*e) for e in effects], [Modifier(*m) for m in modifiers])


# --- the oracle on hand-made SCMs -------------------------------------------------------------

def test_pure_confounding_reverses_the_observed_association():
    # Severity C makes treatment likely and the symptom likely; the drug itself helps (T → M ⊣ S).
    scm = scenario({"C": 0.5, "T": 0.1, "M1": 0.0, "S": 0.2},
                   [("C", "T", 0.8), ("T", "M1", 0.5), ("M1", "S", -0.2), ("C", "S", 0.6)])
    answer = causal_answer(scm)
    # do(T=t): P(S) = 0.2 + 0.6·P(C) − 0.2·0.5·t;  observed: P(C=1 | T=1) = 0.9, P(C=1 | T=0) = 0.1.
    assert answer.p_symptom_do_treat == pytest.approx(0.4, abs=1e-12)
    assert answer.p_symptom_do_untreated == pytest.approx(0.5, abs=1e-12)
    assert answer.p_symptom_given_treated == pytest.approx(0.2 + 0.6 * 0.9 - 0.2 * 0.5, abs=1e-12)
    assert answer.p_symptom_given_untreated == pytest.approx(0.2 + 0.6 * 0.1, abs=1e-12)
    assert answer.beneficial and answer.observed_difference > 0 and answer.observation_misleads
    assert answer.reason == "beneficial: P(symptom|do(treat))=0.400 < P(symptom|do(no treat))=0.500"


@pytest.mark.parametrize("inhibited_effect, expected_ate", [(0.2, 0.14), (0.6, -0.06)])
def test_two_mechanisms_with_opposite_signs(inhibited_effect, expected_ate):
    # Path 1: T activates M1 (+0.8), M1 increases S (+0.3): +0.24.
    # Path 2: T inhibits M2 (−0.5), M2 increases S (+w): a product of signs that lowers S by 0.5·w.
    scm = scenario({"T": 0.5, "M1": 0.1, "M2": 0.9, "S": 0.1},
                   [("T", "M1", 0.8), ("T", "M2", -0.5), ("M1", "S", 0.3), ("M2", "S", inhibited_effect)])
    answer = causal_answer(scm)
    assert answer.average_treatment_effect == pytest.approx(expected_ate, abs=1e-12)
    assert answer.beneficial == (expected_ate < 0)


@pytest.mark.parametrize("kind, prevalence, expected_ate", [
    ("reverses", 0.1, -0.8 * 0.5 * (1 - 2 * 0.1)),  # rarely present: the drug still helps
    ("reverses", 0.9, -0.8 * 0.5 * (1 - 2 * 0.9)),  # usually present: the mechanism now raises S
    ("blocks", 0.75, -0.8 * 0.5 * (1 - 0.75)),      # blocking weakens but cannot flip
])
def test_contraindication(kind, prevalence, expected_ate):
    scm = scenario({"K": prevalence, "T": 0.5, "M1": 0.0, "S": 0.5},
                   [("T", "M1", 0.8), ("M1", "S", -0.5)], modifiers=(("K", "M1", kind),))
    answer = causal_answer(scm)
    assert answer.average_treatment_effect == pytest.approx(expected_ate, abs=1e-12)
    assert answer.beneficial == (expected_ate < 0)
    without = causal_answer(scenario({"T": 0.5, "M1": 0.0, "S": 0.5}, [("T", "M1", 0.8), ("M1", "S", -0.5)]))
    assert without.beneficial


def test_invalid_structural_equation_is_refused():
    with pytest.raises(ValueError, match="leaves \\[0, 1\\]"):
        causal_answer(scenario({"T": 0.5, "M1": 0.5, "S": 0.5}, [("T", "M1", 0.8), ("M1", "S", 0.1)]))


def test_graph_states_the_measured_scm():
    scm = scenario({"C": 0.5, "K": 0.3, "T": 0.1, "M1": 0.0, "S": 0.35},
                   [("C", "T", 0.8), ("T", "M1", 0.5), ("M1", "S", -0.2), ("C", "S", 0.45)],
                   modifiers=(("K", "M1", "reverses"),))
    answer = causal_answer(scm)
    sample = scenario_sample(scm, answer)
    read = scenario_from_sample(sample)
    assert read.effects == scm.effects and read.modifiers == scm.modifiers and read.variables == scm.variables
    assert {k: v for k, v in read.base_rates.items() if k != "S"} == {k: v for k, v in scm.base_rates.items() if k != "S"}
    assert causal_answer(read).average_treatment_effect == pytest.approx(answer.average_treatment_effect, abs=1e-12)
    assert ("S", "occurs_without", "T") in {t.as_tuple()[:3] for t in sample.triples}
    assert sample.label == 1 and sample.reason.startswith("beneficial")


# --- the dataset ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("causal")
    return {split: CausalTripleDataset(root, split, num_scenarios=NUM_SCENARIOS, seed=0) for split in SPLITS}


@pytest.fixture(scope="module")
def labelled_scenarios():
    return generate_causal_scenarios(split_sizes(NUM_SCENARIOS), 10, 8, seed=0)


def observed_rates(sample) -> tuple[float, float]:
    confidence = {t.predicate: t.confidence for t in sample.triples}
    return confidence["co_occurs_with"], confidence["occurs_without"]


def test_splits_sizes_and_balance(datasets):
    for split, size in split_sizes(NUM_SCENARIOS).items():
        counts = Counter(datasets[split].labels)
        assert len(datasets[split]) == size and counts[0] == counts[1] == size // 2


def test_deterministic_for_a_seed(tmp_path, datasets):
    again = CausalTripleDataset(tmp_path / "a", "val", num_scenarios=NUM_SCENARIOS, seed=0)
    other = CausalTripleDataset(tmp_path / "b", "val", num_scenarios=NUM_SCENARIOS, seed=1)
    assert [s.to_record() for s in again.samples] == [s.to_record() for s in datasets["val"].samples]
    assert [s.key() for s in other.samples] != [s.key() for s in again.samples]


def test_splits_are_disjoint(datasets):
    keys = {split: {s.key() for s in datasets[split].samples} for split in SPLITS}
    assert all(len(keys[split]) == len(datasets[split]) for split in SPLITS)  # no repeats within a split either
    for a, b in itertools.combinations(SPLITS, 2):
        assert not keys[a] & keys[b]


def test_items_and_graph_layout(datasets):
    data, label = datasets["train"][0]
    assert label.dtype == torch.long and label.shape == (1,) and data.y.tolist() == label.tolist()
    assert CAUSAL_SCHEMA.num_relations == 20 and len(CAUSAL_SCHEMA.relations) < 20
    for data in datasets["train"].graphs:
        assert data.x.shape == (data.num_nodes, 64)
        assert int(data.edge_type.max()) < 20
        assert set(data.node_level.tolist()) == {1, 2, 3}
        assert set(data.edge_level.tolist()) == {1, 2, 3}
        assert 0 <= float(data.edge_attr.min()) and float(data.edge_attr.max()) <= 1
    nodes = np.mean([g.num_nodes for g in datasets["train"].graphs])
    edges = np.mean([g.num_edges for g in datasets["train"].graphs])
    print(f"\ncausal train graphs: {nodes:.2f} nodes, {edges:.2f} edges on average")


def test_labels_are_the_oracle_on_the_graph(datasets):
    """The measured SCM read back from the triples alone gives every label, with a margin."""
    for split in SPLITS:
        for sample in datasets[split].samples:
            ate = causal_answer(scenario_from_sample(sample)).average_treatment_effect
            assert abs(ate) >= MIN_EFFECT - 1e-9 and sample.label == int(ate < 0)
            assert sample.reason.startswith("beneficial" if sample.label else "harmful")


def test_observation_disagrees_with_the_label_half_the_time(datasets):
    for split in SPLITS:
        by_label = defaultdict(list)
        for sample in datasets[split].samples:
            treated, untreated = observed_rates(sample)
            by_label[sample.label].append((treated < untreated) != bool(sample.label))
        fractions = {label: float(np.mean(misleads)) for label, misleads in sorted(by_label.items())}
        print(f"\n{split}: fraction whose observed association points the wrong way, by label: {fractions}")
        assert all(0.3 <= f <= 0.7 for f in fractions.values())


def test_counts_and_observed_rates_are_each_5050(datasets):
    """Within a split, every bag of types and every pair of observed rates holds as many harmful as
    beneficial samples, so neither can tell the label."""
    for split in SPLITS:
        for view in (bag_of_types, lambda s: tuple(round(p, 9) for p in observed_rates(s))):
            labels = defaultdict(Counter)
            for sample in datasets[split].samples:
                labels[view(sample)][sample.label] += 1
            assert all(c[0] == c[1] for c in labels.values())


def test_ate_is_the_sum_over_mechanism_paths(datasets):
    """What a message-passing model has to compute: Σ over T→…→S paths of the product of signed
    strengths, each mechanism's outgoing strength scaled by its conditions' E[1 + (f − 1)·K]."""
    for sample in datasets["val"].samples:
        scm = scenario_from_sample(sample)

        def condition_scale(mechanism: str) -> float:
            return float(np.prod([1 + (MODIFIER_FACTORS[m.kind] - 1) * scm.base_rates[m.condition]
                                  for m in scm.modifiers if m.mechanism == mechanism]))

        def effect_on_symptom(node: str) -> float:
            if node == scm.symptom:
                return 1.0
            return sum(e.strength * condition_scale(node) * effect_on_symptom(e.effect)
                       for e in scm.effects if e.cause == node)

        assert effect_on_symptom(scm.treatment) == pytest.approx(causal_answer(scm).average_treatment_effect,
                                                                 abs=1e-9)


def test_bad_sizes_raise_nsm_error(tmp_path):
    for bad in ({"num_scenarios": 0}, {"num_treatments": -1}, {"num_symptoms": 2.5}):
        with pytest.raises(NSMError, match=next(iter(bad))):
            CausalTripleDataset(tmp_path, "train", **bad)


# --- independent checks -----------------------------------------------------------------------

def pgmpy_network(scm: CausalScenario):
    """The SCM as a pgmpy Bayesian network; CPTs from its structural equations."""
    from pgmpy.factors.discrete import TabularCPD
    from pgmpy.models import DiscreteBayesianNetwork

    names = list(scm.variables)
    model = DiscreteBayesianNetwork()
    model.add_nodes_from(names)
    model.add_edges_from([(parent, name) for name in names for parent in scm.parents(name)])
    for name in names:
        parents = scm.parents(name)
        # pgmpy orders CPT columns with the first evidence variable slowest, as itertools.product does.
        configurations = np.array(list(itertools.product((0, 1), repeat=len(parents))), dtype=int)
        assignments = np.zeros((2 ** len(parents), len(names)), dtype=int)
        for j, parent in enumerate(parents):
            assignments[:, names.index(parent)] = configurations[:, j]
        p_one = scm.probabilities_of_one(assignments)[:, names.index(name)]
        model.add_cpds(TabularCPD(name, 2, [1 - p_one, p_one], evidence=parents or None,
                                  evidence_card=[2] * len(parents) or None))
    model.check_model()
    return model


def pgmpy_ate(scm: CausalScenario) -> float:
    from pgmpy.inference import CausalInference

    inference = CausalInference(pgmpy_network(scm))
    p_symptom = [inference.query([scm.symptom], do={scm.treatment: t}, show_progress=False).values[1]
                 for t in (1, 0)]
    return float(p_symptom[0] - p_symptom[1])


@pytest.mark.slow
def test_labels_agree_with_pgmpy(datasets, labelled_scenarios):
    from pgmpy.inference import VariableElimination

    logging.getLogger("pgmpy").setLevel(logging.ERROR)
    checked = 0
    for labelled, sample in zip(labelled_scenarios["train"][:200], datasets["train"].samples):
        assert scenario_sample(*labelled).to_record() == sample.to_record()  # the dataset's own scenarios
        scm, answer = labelled
        assert BACKGROUND in scm.variables
        ate = pgmpy_ate(scm)
        assert ate == pytest.approx(answer.average_treatment_effect, abs=1e-6)
        assert int(ate < 0) == sample.label
        # What the graph states gives the same effect: the measured SCM read back from the triples.
        assert pgmpy_ate(scenario_from_sample(sample)) == pytest.approx(ate, abs=1e-6)
        # The co-occurrence edges are the full SCM's observational rates.
        elimination = VariableElimination(pgmpy_network(scm))
        observed = [elimination.query([scm.symptom], evidence={scm.treatment: t}, show_progress=False).values[1]
                    for t in (1, 0)]
        assert observed == pytest.approx(list(observed_rates(sample)), abs=1e-6)
        checked += 1
    print(f"\npgmpy agrees on the ATE, the label and the observed rates of {checked} samples")
    assert checked == 200


@pytest.mark.rounding
@pytest.mark.slow
def test_bag_of_types_stays_near_chance(tmp_path):
    train = CausalTripleDataset(tmp_path, "train", num_scenarios=2400, seed=0)
    test = CausalTripleDataset(tmp_path, "test", num_scenarios=2400, seed=0)
    result = bag_of_types_accuracy(train, test)
    print(f"\nbag-of-types on causal ({len(train)} train / {len(test)} test): {result}")
    assert len(train) + len(test) >= 2000
    assert result["best_test_accuracy"] <= 0.65
