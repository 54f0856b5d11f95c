"""Link prediction on KGs in the TSV layout: ranking a run's test queries, evaluating it on an
entity-disjoint graph (GraIL's inductive setting), and the baselines that must fail.

The graphs are the project's own synthetic pairs (``nsm data --domain kg --export-tsv``).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from nsm.cli import main
from nsm.config import make_run_config
from nsm.data import load_dataset
from nsm.data.domains.kg.tsv import FileGraph, read_kg_dir
from nsm.data.domains.kg.export import export_synthetic_kg
from nsm.errors import NSMError
from nsm.evaluation.link_prediction import evaluate_kg_dir, split_queries
from nsm.job import run_job
from nsm.analysis.leakage import distance_baselines

RANKING_KEYS = ("accuracy", "auroc", "auc_pr", "mrr", "hits@1", "hits@3", "hits@10", "protocol", "negatives", "queries")


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    return export_synthetic_kg(tmp_path_factory.mktemp("kg") / "syn", num_entities=60, num_triples=400, seed=0)


@pytest.fixture(scope="module")
def trained(pair, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("run")
    config = make_run_config("kg", "quick", kg_dir=str(pair[0]), run_dir=str(root / "run"),
                             data_root=str(root / "cache"))
    run_job(config)
    return root / "run"


def test_a_kg_dir_run_saves_its_vocabulary_and_ranks_its_test_queries(pair, trained):
    results = json.loads((trained / "results.json").read_text())
    relations = read_kg_dir(pair[0]).relations
    assert results["config"]["relations"] == relations
    assert results["config"]["model_args"]["num_relations"] == len(relations)
    ranking = results["test_metrics"]["link_prediction"]
    assert set(RANKING_KEYS) <= set(ranking)
    assert ranking["protocol"] == "sampled" and ranking["negatives"] == 49
    assert ranking["ranked_sides"] == 2 * ranking["queries"] > 0
    assert 1 / 50 <= ranking["mrr"] <= 1 and 0 <= ranking["hits@1"] <= ranking["hits@3"] <= ranking["hits@10"] <= 1


@pytest.mark.slow
def test_inductive_evaluation_on_an_entity_disjoint_graph(pair, trained, capsys):
    main_graph, inductive = pair
    assert main(["eval", "--run-dir", str(trained), "--kg-dir", str(inductive), "--format", "json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert set(RANKING_KEYS) <= set(first)
    assert first["entities_seen_in_training"] == 0 and first["split"] == "test"
    assert first["queries"] == len(split_queries(read_kg_dir(inductive), "test"))
    # Seeded and deterministic: the same candidates and the same scores.
    few = evaluate_kg_dir(trained, inductive, max_queries=4)
    assert evaluate_kg_dir(trained, inductive, max_queries=4) == few and few["queries"] == 4
    full = evaluate_kg_dir(trained, inductive, ranking="full", max_queries=4)
    assert full["negatives"] == "all" and full["scored_triples"] > few["scored_triples"]
    # Its own graph by default: transductive, every entity seen.
    own = evaluate_kg_dir(trained, ranking="none", max_queries=4)
    assert own["entities_seen_in_training"] == len(read_kg_dir(main_graph).entities) and "mrr" not in own


def test_an_evaluation_graph_with_an_unknown_relation_is_refused(pair, trained, tmp_path, capsys):
    other = Path(shutil.copytree(pair[1], tmp_path / "other"))
    with open(other / "test.txt", "a") as test:
        head, _, tail = (other / "train.txt").read_text().splitlines()[0].split("\t")
        test.write(f"{head}\tinvented_relation\t{tail}\n")
    assert main(["eval", "--run-dir", str(trained), "--kg-dir", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "relation 'invented_relation' is not one of the" in err


def test_a_synthetic_kg_run_cannot_read_a_tsv_graph(pair, tmp_path):
    (tmp_path / "run").mkdir()
    run_config = make_run_config("kg", "quick", run_dir=str(tmp_path / "run"))
    from nsm.assemble import build_model_for
    from nsm.training.checkpoint import save_checkpoint

    save_checkpoint({"model_state_dict": build_model_for(run_config).state_dict(), "run_config": run_config,
                     "epoch": 0}, tmp_path / "run" / "best.pt")
    with pytest.raises(NSMError, match="was not trained on a knowledge graph in the TSV layout"):
        evaluate_kg_dir(tmp_path / "run", pair[1])


@pytest.mark.slow
def test_distance_and_reachability_cannot_tell_the_classes_apart(pair, tmp_path):
    """Negatives keep their positive's head-tail distance: fitted on the training samples, a
    classifier of the distance alone (or of whether the ends meet) is at chance on the test samples
    and ranks no better than chance. (Hiding every fact of the query relation at both ends, and
    choosing negatives near the kept end, made "the ends do not meet" a 90% rule on real KGs.)"""
    train, test = (load_dataset("kg", tmp_path, split, num_samples=1200, kg_dir=str(pair[0]))
                   for split in ("train", "test"))
    graph = FileGraph(train.files, 2, random.Random("kg-files/0"))
    for name, result in distance_baselines(train, test, graph, len(train.files.entities)).items():
        print(name, result)
        assert result["test_accuracy"] <= 0.6, name
        assert result["mrr"] <= result["chance_mrr"] + 0.02 and result["hits_at_10"] <= result["chance_hits_at_10"] + 0.05, name


def test_the_kg_embedding_baseline_is_ranked_by_the_same_evaluator(pair, tmp_path):
    config = make_run_config("kg", "quick", model="complex", kg_dir=str(pair[0]), run_dir=str(tmp_path / "complex"))
    results = run_job(config)
    ranking = results["test_metrics"]["link_prediction"]
    # The same queries as an NSM run on this graph (same seed and size), and no accuracy: its scores are not log-odds.
    nsm_queries = split_queries(read_kg_dir(pair[0]), "test", 9, seed=0)
    assert ranking["queries"] == len(nsm_queries) and "accuracy" not in ranking and 0 < ranking["mrr"] <= 1
    assert results["config"]["model_args"]["num_entities"] == len(read_kg_dir(pair[0]).entities)
    assert evaluate_kg_dir(tmp_path / "complex", ranking="none", max_queries=9)["auroc"] == ranking["auroc"]
    with pytest.raises(NSMError, match="transductive and cannot score"):
        evaluate_kg_dir(tmp_path / "complex", pair[1])
