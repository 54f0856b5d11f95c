"""The out-of-distribution split of each generated domain, and `--ood` in the job and the CLI.

Each split must scale up exactly what its domain says (more blocks and longer plans, deeper
mechanism chains, larger subgraphs), keep the oracle's labels and the 50/50 balance, share no
sample with the in-distribution splits, and be the same every time it is generated.
"""

import json
from collections import Counter

import pytest

from nsm.cli import main
from nsm.config import make_run_config
from nsm.data import load_dataset
from nsm.data.base import OOD_SPLIT, SPLITS, split_sizes
from nsm.data.domains.causal.generator import causal_answer, scenario_from_sample
from nsm.data.domains.kg.subgraph import MAX_SUBGRAPH_ENTITIES
from nsm.data.domains.planning.generator import (
    OUT_OF_DISTRIBUTION, ProblemSizes, check_plan, corruption_kinds, sample_to_problem,
)
from nsm.errors import NSMError

SIZES = {"planning": {"num_samples": 200}, "causal": {"num_samples": 200},
         "kg": {"num_samples": 200, "num_entities": 60, "num_triples": 400}}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("ood")
    return {domain: {split: load_dataset(domain, root, split, seed=1, **params) for split in (*SPLITS, OOD_SPLIT)}
            for domain, params in SIZES.items()}


@pytest.mark.parametrize("domain", SIZES)
def test_ood_split_is_balanced_apart_and_deterministic(datasets, domain, tmp_path):
    ood = datasets[domain][OOD_SPLIT]
    assert len(ood) == split_sizes(SIZES[domain]["num_samples"])["test"]
    assert Counter(ood.labels) == {0: len(ood) // 2, 1: len(ood) // 2}
    seen = {s.key() for split in SPLITS for s in datasets[domain][split].samples}
    assert not seen & {s.key() for s in ood.samples}
    again = load_dataset(domain, tmp_path, OOD_SPLIT, seed=1, **SIZES[domain])  # generated afresh
    assert [s.key() for s in again.samples] == [s.key() for s in ood.samples]
    assert ood.ood_shift  # what it scales up, in words (results.json's ood_shift)


def test_planning_ood_has_more_blocks_and_longer_plans_and_the_oracle_labels(datasets):
    def sizes(split):
        problems = [sample_to_problem(s) for s in datasets["planning"][split].samples]
        for problem, sample in zip(problems, datasets["planning"][split].samples):
            assert check_plan(problem)[0] == sample.label
        return {len(p.blocks) for p in problems}, {len(p.plan) for p in problems}

    blocks, steps = sizes(OOD_SPLIT)
    assert blocks <= set(range(6, 9)) and steps <= set(range(9, 13)) and len(steps) > 1
    train_blocks, train_steps = sizes("train")
    assert max(train_blocks) < min(blocks) and max(train_steps) < min(steps)


def test_planning_ood_plan_lengths_say_nothing_of_the_label(datasets):
    by_label = {label: Counter() for label in (0, 1)}
    for sample in datasets["planning"][OOD_SPLIT].samples:
        by_label[sample.label][len(sample_to_problem(sample).plan)] += 1
    mean = [sum(n * c for n, c in counts.items()) / sum(counts.values()) for counts in by_label.values()]
    assert abs(mean[0] - mean[1]) < 0.75, mean
    # The corruption kinds keep every length inside the split's own range.
    shift = {"delete": -1, "duplicate": 1, "swap": 0, "change": 0}
    low, high = OUT_OF_DISTRIBUTION.steps
    for n in range(low, high + 1):
        assert all(low <= n + shift[kind] <= high for kind in corruption_kinds(n, OUT_OF_DISTRIBUTION.steps))
    assert str(ProblemSizes()) == "3-5 blocks, plans of 2-8 moves"


def mechanism_depths(sample) -> set[int]:
    """The lengths (in mechanisms) of the paths from the treatment to the symptom."""
    scenario = scenario_from_sample(sample)
    children = {}
    for effect in scenario.effects:
        children.setdefault(effect.cause, []).append(effect.effect)
    depths, frontier = set(), [(scenario.treatment, 0)]
    while frontier:
        node, depth = frontier.pop()
        for child in children.get(node, []):
            if child == scenario.symptom:
                depths.add(depth)
            elif scenario.variables[child] == "mechanism":
                frontier.append((child, depth + 1))
    return depths


def test_causal_ood_chains_are_deeper_and_the_oracle_labels(datasets):
    ood_depths = set().union(*(mechanism_depths(s) for s in datasets["causal"][OOD_SPLIT].samples))
    train_depths = set().union(*(mechanism_depths(s) for s in datasets["causal"]["train"].samples))
    assert ood_depths == {3} and train_depths == {1, 2}
    for sample in datasets["causal"][OOD_SPLIT].samples:
        assert causal_answer(scenario_from_sample(sample)).beneficial == bool(sample.label)


def test_kg_ood_subgraphs_are_larger(datasets):
    def entities(split):
        return [sum(kind not in ("entity_type", "category") for kind in s.node_types.values())
                for s in datasets["kg"][split].samples]

    assert max(entities("train")) <= MAX_SUBGRAPH_ENTITIES < max(entities(OOD_SPLIT)) <= 2 * MAX_SUBGRAPH_ENTITIES
    assert sum(entities(OOD_SPLIT)) / len(entities(OOD_SPLIT)) > 1.3 * sum(entities("train")) / len(entities("train"))


def test_your_own_data_has_no_ood_split(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({"triples": [["a", "r", f"b{i}", 1.0, 1]], "label": i % 2})
                              for i in range(20)))
    with pytest.raises(NSMError, match="no out-of-distribution split"):
        load_dataset("triples", tmp_path / "cache", OOD_SPLIT, data_path=str(path))
    with pytest.raises(NSMError, match="--ood"):
        make_run_config("triples", "quick", ood=True, data={"data_path": str(path)})
    with pytest.raises(NSMError, match="unknown split"):
        load_dataset("planning", tmp_path / "cache", "holdout")


def test_train_with_ood_reports_it_and_eval_takes_the_split(tmp_path, capsys):
    run_dir, data_root = tmp_path / "run", str(tmp_path / "data")
    assert main(["train", "--domain", "causal", "--profile", "quick", "--ood", "--run-dir", str(run_dir),
                 "--data-root", data_root]) == 0
    table = capsys.readouterr().out
    results = json.loads((run_dir / "results.json").read_text())
    assert results["dataset_sizes"][OOD_SPLIT] == results["dataset_sizes"]["test"]
    assert "3 mechanisms" in results["ood_shift"]
    accuracy = results["ood_metrics"]["accuracy"]
    header, _, row = table.splitlines()[:3]
    assert "ood acc" in header and f"{accuracy:.1%}" in row.split()
    assert main(["eval", "--run-dir", str(run_dir), "--split", OOD_SPLIT, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(accuracy)
    # Without --ood the column is empty and the split is not made.
    assert main(["train", "--domain", "causal", "--profile", "quick", "--run-dir", str(tmp_path / "plain"),
                 "--data-root", data_root, "--epochs", "1"]) == 0
    assert "ood_metrics" not in json.loads((tmp_path / "plain" / "results.json").read_text())
