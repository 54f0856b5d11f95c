"""The `nsm` command and the job it runs, end to end on the `quick` profile."""

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime

import pytest
import torch

from nsm.cli import main
from nsm.config import PROFILES, make_run_config, updated
from nsm.errors import NSMError
from nsm.evaluation.evaluator import load_run
from nsm.runners.local import expected_cost, parallel_plan, run_domains


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("data_cache"))


def test_data_stats_prints_balanced_classes(capsys, data_root):
    assert main(["data", "--domain", "planning", "--profile", "quick", "--stats", "--json",
                 "--data-root", data_root]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["samples"] == sum(stats["class_counts"].values()) > 0
    assert stats["class_counts"]["0"] == stats["class_counts"]["1"]
    assert set(stats["node_levels"]) == {"1", "2", "3"}


def test_data_show_prints_triples_label_and_reason(capsys, data_root):
    assert main(["data", "--domain", "causal", "--profile", "quick", "--show", "0", "--data-root", data_root]) == 0
    out = capsys.readouterr().out
    assert "L1 (" in out and "label:" in out and "reason:" in out


def test_data_export_tsv_writes_the_profiles_world_and_its_inductive_twin(tmp_path, capsys):
    assert main(["data", "--domain", "kg", "--profile", "quick", "--export-tsv", str(tmp_path / "kg")]) == 0
    printed = capsys.readouterr().out.splitlines()
    for path, line in zip((tmp_path / "kg", tmp_path / "kg_ind"), printed):
        assert line.startswith(f"{path}: train.txt ")
        for name in ("train.txt", "valid.txt", "test.txt"):
            triples = (path / name).read_text().splitlines()
            assert triples and all(len(t.split("\t")) == 3 for t in triples)
            assert f"{name} {len(triples)} triples" in line


def test_bad_input_is_one_line_not_a_traceback(capsys, data_root):
    assert main(["data", "--domain", "causal", "--profile", "quick", "--show", "100000",
                 "--data-root", data_root]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["data", "--domain", "planning", "--kg-dir", "x", "--stats", "--data-root", data_root]) == 2
    assert "--kg-dir only applies" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "--domain", "chess", "--stats"])
    assert exit_info.value.code == 2


def test_run_config_profiles_and_overrides():
    config = make_run_config("kg", "quick", epochs=5, seed=None)
    assert config["epochs"] == 5 and config["seed"] == 0  # None falls through to the default
    assert config["model_args"]["num_relations"] == 66 and config["model_args"]["task_type"] == "link_prediction"
    assert config["data"] == {"num_entities": 60, "num_triples": 400, "num_samples": 120}  # kg declares it
    json.dumps(config)  # plain data: it travels to worker processes and cloud containers
    for bad in ({"epochs": 0}, {"model": "gpt"}, {"device": "tpu"}, {"nonsense": 1}):
        with pytest.raises(NSMError):
            make_run_config("planning", "quick", **bad)
    with pytest.raises(NSMError, match="unknown domain"):
        make_run_config("chess")


def test_parallel_plan_never_oversubscribes():
    assert parallel_plan(3, cores=2) == (2, 1)
    assert parallel_plan(1, cores=2) == (1, 2)
    assert parallel_plan(3, cores=16) == (3, 5)


def test_longest_jobs_start_first():
    configs = {domain: make_run_config(domain) for domain in ("planning", "causal", "kg")}
    costs = {domain: expected_cost(config) for domain, config in configs.items()}
    # dev: planning's twice as many samples outweigh kg's costlier ones; causal's are the cheapest.
    assert costs["causal"] < costs["kg"] < costs["planning"]
    # Twice the data, or twice the epochs, is twice the work.
    assert expected_cost(make_run_config("causal", epochs=20)) == pytest.approx(2 * costs["causal"])
    assert expected_cost(make_run_config("causal", data={"num_samples": 20000})) == pytest.approx(2 * costs["causal"])


def test_runner_settings_are_checked_like_any_other():
    """The local runner's thread count and the cloud's loader workers go through the same checks."""
    config = make_run_config("planning", "quick")
    assert updated(config, num_threads=3)["num_threads"] == 3 and config["num_threads"] == 0
    with pytest.raises(NSMError, match="num_threads must be a non-negative integer, got -1"):
        updated(config, num_threads=-1)
    with pytest.raises(NSMError, match="unknown run setting"):
        updated(config, threads=2)
    with pytest.raises(NSMError, match="num_workers must be a non-negative integer"):
        make_run_config("planning", num_workers=1.5)


@pytest.mark.slow
@pytest.mark.rounding
def test_train_then_eval(tmp_path, capsys, data_root):
    run_dir = tmp_path / "run"
    assert main(["train", "--domain", "planning", "--profile", "quick", "--run-dir", str(run_dir),
                 "--data-root", data_root]) == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "success" and results["epochs_run"] == PROFILES["quick"].epochs
    # Which host made these figures: their last digits depend on it.
    assert results["host"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert results["host"]["cores"] == os.cpu_count() and results["host"]["torch"] == torch.__version__
    assert datetime.fromisoformat(results["started_at"]).tzinfo is not None
    metrics = results["test_metrics"]
    for key in ("accuracy", "accuracy_class_0", "accuracy_class_1", "collapsed", "recon_error_l1", "recon_error_l2"):
        assert key in metrics
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["train"]) == len(history["val"]) == PROFILES["quick"].epochs
    for name in ("latest.pt", "best.pt"):
        state = torch.load(run_dir / name, weights_only=True)
        assert {"epoch", "model_state_dict", "optimizer_state_dict", "best_val_loss"} <= set(state)
    assert torch.load(run_dir / "latest.pt", weights_only=True)["epoch"] == PROFILES["quick"].epochs - 1
    capsys.readouterr()

    assert main(["eval", "--run-dir", str(run_dir), "--format", "json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["accuracy"] == pytest.approx(metrics["accuracy"])
    assert main(["eval", "--run-dir", str(run_dir)]) == 0
    assert f"accuracy: {metrics['accuracy']:.4f}" in capsys.readouterr().out.splitlines()

    # Asking for more epochs resumes where the run ended instead of starting over.
    assert main(["train", "--domain", "planning", "--profile", "quick", "--epochs", "3", "--run-dir",
                 str(run_dir), "--data-root", data_root]) == 0
    history = json.loads((run_dir / "history.json").read_text())
    assert [e["epoch"] for e in history["train"]] == [0, 1, 2]

    # A moved run (e.g. downloaded from the cloud) is evaluated where it is now, at the temperature
    # its weights were trained at, and its old directory is not recreated.
    moved = tmp_path / "moved"
    shutil.move(run_dir, moved)
    _, _, model = load_run(moved, checkpoint="latest.pt")  # the last epoch's weights (best.pt may be older)
    assert model.temperature == history["train"][-1]["temperature"] != 1.0
    capsys.readouterr()
    assert main(["eval", "--run-dir", str(moved), "--format", "json"]) == 0
    assert "accuracy" in json.loads(capsys.readouterr().out)
    assert not run_dir.exists()


@pytest.mark.slow
def test_validate_keeps_other_domains_when_one_fails(tmp_path, data_root):
    configs = {domain: make_run_config(domain, "quick", run_dir=str(tmp_path / domain), data_root=data_root)
               for domain in ("planning", "causal", "kg")}
    configs["kg"]["kg_dir"] = str(tmp_path / "no-such-kg")  # fails on purpose
    lines = []
    summary = run_domains(configs, tmp_path, log=lines.append)
    assert summary["planning"]["status"] == "success" and summary["causal"]["status"] == "success"
    assert summary["kg"]["status"] == "failed" and "no-such-kg" in summary["kg"]["error"]
    assert json.loads((tmp_path / "summary.json").read_text()).keys() == {"planning", "causal", "kg"}
    for domain in ("planning", "causal"):
        assert json.loads((tmp_path / domain / "results.json").read_text())["status"] == "success"
    assert any(line.startswith("[planning]") for line in lines)


@pytest.mark.slow
def test_validate_exit_code_is_nonzero_when_a_domain_fails(tmp_path):
    # The CLI's own path: a domain that cannot even build its data (an unwritable cache) fails fast.
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the data cache should be")
    result = subprocess.run(
        [sys.executable, "-m", "nsm", "validate", "--profile", "quick", "--domains", "causal",
         "--run-dir", str(tmp_path / "runs"), "--data-root", str(blocker)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout and "cannot write the data cache" in result.stdout
    summary = json.loads((tmp_path / "runs" / "summary.json").read_text())
    assert summary["causal"]["status"] == "failed"
