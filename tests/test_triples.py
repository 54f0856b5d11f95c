"""Your own labelled triple graphs (``--domain triples --data PATH``): reading, splits, vocabularies,
the cache, the export of the generated domains, and a run trained and read back.

The one-line refusals of bad files are cases of tests/test_bad_input.py (and README's table).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import torch

from nsm.cli import main
from nsm.data import load_dataset
from nsm.data.domains.triples import dataset as triples_dataset
from nsm.data.domains.triples import jsonl as triples_jsonl
from nsm.data.domains.triples.export import export_jsonl
from nsm.errors import NSMError
from nsm.evaluation.evaluator import load_run

CAUSAL_QUICK = {"num_samples": 120}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def chain(length: int, label: int, **extra) -> dict:
    """A graph of ``length`` ``next`` triples, a --> n1 --> ..., with ``label``."""
    names = ["a", *(f"n{i}" for i in range(1, length + 1))]
    return {"triples": [[s, "next", o, 0.9, 1] for s, o in zip(names, names[1:])], "label": label, **extra}


def triples(tmp_path: Path, path: Path, split: str = "train", seed: int = 0):
    return load_dataset("triples", tmp_path / "cache", split, seed=seed, data_path=str(path))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    """causal at the quick size, exported to JSONL; and the cache that holds the built-in splits."""
    root = tmp_path_factory.mktemp("export")
    path, counts = export_jsonl("causal", root / "out", root / "cache", 0, CAUSAL_QUICK)
    assert sum(counts.values()) == 120
    return path, root / "cache"


def test_an_exported_domain_reads_back_as_the_same_graphs(exported, tmp_path):
    path, cache = exported
    for split in ("train", "val", "test"):
        built_in = load_dataset("causal", cache, split, seed=0, **CAUSAL_QUICK)
        mine = triples(tmp_path, path, split)
        assert len(mine) == len(built_in) > 0
        for ours, theirs in zip(mine.samples, built_in.samples):
            assert ours.label == theirs.label
            assert list(ours.node_types) == list(theirs.node_types)  # node ids follow
            assert [t.as_tuple() for t in ours.triples] == [t.as_tuple() for t in theirs.triples]
        for ours, theirs in zip(mine.graphs, built_in.graphs):
            assert ours.edge_index.tolist() == theirs.edge_index.tolist()
            assert ours.edge_attr.tolist() == theirs.edge_attr.tolist()
            # Ids differ (the data's order of first appearance), the names behind them do not.
            assert ([mine.schema.relations[r] for r in ours.edge_type.tolist()]
                    == [built_in.schema.relations[r] for r in theirs.edge_type.tolist()])


def test_kg_export_carries_the_query_as_a_level_3_triple(tmp_path):
    path, _ = export_jsonl("kg", tmp_path / "out", tmp_path / "cache", 0,
                           {"num_entities": 60, "num_triples": 400, "num_samples": 40})
    record = json.loads(path.read_text().splitlines()[0])
    queries = [t for t in record["triples"] if t[1].startswith("query:")]
    assert len(queries) == 1 and queries[0][4] == 3
    assert len(triples(tmp_path, path, "test")) == 6


@pytest.mark.parametrize("domain, params", [
    ("planning", {"num_samples": 40}), ("kg", {"num_entities": 60, "num_triples": 400, "num_samples": 40})])
def test_a_domains_node_extras_come_back_as_node_features(domain, params, tmp_path):
    """Planning's step positions, kg's distances: the same numbers, after the one-hot type and level."""
    path, _ = export_jsonl(domain, tmp_path / "out", tmp_path / "cache", 0, params)
    built_in = load_dataset(domain, tmp_path / "cache", "test", seed=0, **params)
    mine = triples(tmp_path, path, "test")
    width = len(built_in.schema.extra_features)
    assert len(mine.schema.extra_features) == width > 0
    for ours, theirs in zip(mine.graphs, built_in.graphs, strict=True):
        start, their_start = len(mine.schema.node_types) + 3, len(built_in.schema.node_types) + 3
        assert torch.equal(ours.x[:, start:start + width], theirs.x[:, their_start:their_start + width])


def test_without_split_the_samples_are_split_70_15_15_per_class_by_the_seed(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [chain(1 + i, label=i % 3, id=f"g{i}") for i in range(200)])
    sizes = {split: Counter(s.label for s in triples(tmp_path, path, split).samples) for split in ("train", "val", "test")}
    for label in range(3):
        total = sum(sizes[split][label] for split in sizes)
        assert sizes["val"][label] == sizes["test"][label] == round(0.15 * total)
    ids = {seed: [s.reason for s in triples(tmp_path, path, "test", seed).samples] for seed in (0, 1)}
    assert ids[0] != ids[1]
    assert ids[0] == [s.reason for s in triples(tmp_path, path, "test", 0).samples]


def test_vocabularies_come_from_the_data(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [
        {"triples": [["x", "causes", "y", 0.5, 1], ["y", "serves", "goal", 1.0, 3]], "label": 7, "split": "train"},
        {"triples": [["x", "blocks", "y", 1.0, 2]], "label": 3, "split": "val",
         "node_types": {"x": "drug", "y": "symptom"}},
        {"triples": [["p", "causes", "q", 1.0, 1]], "label": 3, "split": "test"},
    ])
    train = triples(tmp_path, path)
    assert train.schema.relations == ("causes", "serves", "blocks")
    # Without node_types a node's type is its lowest level; a type sits at its nodes' lowest level.
    assert dict(train.schema.node_types) == {"L1": 1, "L3": 3, "drug": 2, "symptom": 2}
    assert train.classes == [3, 7] and train.samples[0].label == 1  # class id: the label's rank
    assert triples(tmp_path, path, "val").samples[0].label == 0


def test_a_dry_run_shows_the_model_sized_to_the_data_and_writes_nothing(tmp_path, capsys):
    path = write_jsonl(tmp_path / "g.jsonl", [
        {"triples": [["x", "causes", "y", 0.5, 1], ["y", "serves", "goal", 1.0, 3]], "label": label}
        for label in (0, 1, 2) for _ in range(4)])
    cache = tmp_path / "cache"
    assert main(["train", "--domain", "triples", "--data", str(path), "--data-root", str(cache), "--dry-run"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["relations"] == ["causes", "serves"] and config["classes"] == [0, 1, 2]
    assert config["model_args"]["num_relations"] == 2 and config["model_args"]["num_classes"] == 3
    assert not cache.exists()


def test_many_node_types_widen_the_node_features(tmp_path):
    types = {f"v{i}": f"type{i}" for i in range(80)}
    path = write_jsonl(tmp_path / "g.jsonl", [
        {"triples": [[f"v{j}", "r", f"v{j + 1}", 1.0, 1] for j in range(79)][g:], "label": g % 2, "node_types": types}
        for g in range(20)])
    assert {tuple(graph.x.shape) for graph in triples(tmp_path, path).graphs} == {(80, 83)}  # 80 types, 3 levels


def test_a_cached_load_reads_only_the_vocabulary_and_the_graphs(tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "g.jsonl", [chain(2 + i, label=i % 2) for i in range(40)])
    first = triples(tmp_path, path)
    first_keys = [s.key() for s in first.samples]
    triples_jsonl.forget_read()

    def refuse(*_):
        raise AssertionError("the data was read again")

    with monkeypatch.context() as patched:
        for name in ("read_files", "read_labelled_triples"):
            patched.setattr(triples_dataset, name, refuse)
        again = triples(tmp_path, path)
        assert again.schema == first.schema and again.labels == first.labels
        assert [g.edge_index.tolist() for g in again.graphs] == [g.edge_index.tolist() for g in first.graphs]
        # Changed content is another dataset: read, not served from the old cache.
        write_jsonl(path, [chain(2 + i, label=i % 2) for i in range(41)])
        with pytest.raises(AssertionError, match="read again"):
            triples(tmp_path, path)
    # The samples are not cached: asked for, they are read from the files again.
    write_jsonl(path, [chain(2 + i, label=i % 2) for i in range(40)])
    assert [s.key() for s in triples(tmp_path, path).samples] == first_keys


def test_a_graph_in_two_splits_is_warned_about(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [chain(2, label=0, split="train"), chain(2, label=0, split="test"),
                                              chain(3, label=1, split="val")])
    with pytest.warns(UserWarning, match="1 graph.s. of the test split are also in the train split"):
        triples(tmp_path, path)


def test_bad_data_caches_nothing(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [chain(2, label=0), chain(3, label=1)])
    with path.open("a") as f:
        f.write('{"triples": [["a", "r", "b", 2.0, 1]], "label": 1}\n')
    with pytest.raises(NSMError, match=r"g.jsonl line 3: triple 1 has confidence 2.0"):
        triples(tmp_path, path)
    assert not list((tmp_path / "cache").rglob("*.*"))


@pytest.mark.parametrize("bad, message", [
    (["b", "r", "c", 0.5, True], "triple 3 has level True; expected 1, 2 or 3"),
    (["b", "r", "c", True, 1], "triple 3 has confidence True; expected a number in [0, 1]"),
    (["b", "r", "", 0.5, 1], "triple 3 has object ''; expected a non-empty string"),
    (["b", "r", "c", 0.5], "triple 3 has 4 fields"),
])
def test_the_first_bad_triple_of_a_graph_is_named(tmp_path, bad, message):
    record = {"triples": [["a", "r", "b", 1.0, 1], ["a", "r", "c", 0.5, 2], bad, ["c", "r", "d", 2.0, 1]], "label": 1}
    path = write_jsonl(tmp_path / "g.jsonl", [chain(2, label=0), record])
    with pytest.raises(NSMError, match=rf"g.jsonl line 2: {re.escape(message)}"):
        triples(tmp_path, path)


def test_a_run_on_your_own_data_saves_its_vocabulary_and_reads_back(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "g.jsonl", [chain(2 + i, label=10 + i % 2) for i in range(60)])
    assert main(["train", "--domain", "triples", "--data", "g.jsonl", "--profile", "quick", "--run-dir", "run"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    config = results["config"]
    assert config["data"]["data_path"] == str(tmp_path / "g.jsonl")  # absolute: found from anywhere
    assert config["relations"] == ["next"] and config["classes"] == [10, 11]
    assert config["model_args"]["num_relations"] == 1 and config["model_args"]["num_classes"] == 2
    assert results["dataset_sizes"] == {"train": 44, "val": 8, "test": 8}  # 30 a class: 22/4/4
    _, test_set, _ = load_run(tmp_path / "run")
    assert len(test_set) == 8
    capsys.readouterr()
    assert main(["explain", "--run-dir", "run", "--index", "0"]) == 0
    assert "next" in capsys.readouterr().out
    # Data changed under the run: its relations no longer match the model's.
    write_jsonl(tmp_path / "g.jsonl", [{**chain(2, label=10 + i % 2), "triples": [["a", "other", f"b{i}", 1.0, 1]]}
                                       for i in range(60)])
    with pytest.raises(NSMError, match="other relations than the run was trained on"):
        load_run(tmp_path / "run")


def test_the_readmes_example_runs_as_shown(tmp_path, monkeypatch, capsys):
    """README's "Bring your own data": its file and its three commands, as written there."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## Bring your own data", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    heredoc, commands = block.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)
    assert len(heredoc.splitlines()) == 3
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.jsonl").write_text(heredoc + "\n")
    lines = [line.split() for line in commands.strip().splitlines()]
    assert [line[:2] for line in lines] == [["nsm", "data"], ["nsm", "data"], ["nsm", "train"]]
    for line in lines:
        assert main(line[1:]) == 0, line
    assert "label: 1" in capsys.readouterr().out
    assert json.loads((tmp_path / "runs" / "mine" / "results.json").read_text())["status"] == "success"
