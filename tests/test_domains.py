"""The domain registry: every per-domain fact declared once, and a new domain is one folder."""

import json
import subprocess
import sys

import pytest
import toy_domain

from nsm import cli
from nsm.config import PROFILES, make_run_config
from nsm.data import load_dataset
from nsm.data.domains import DOMAINS, get_domain, register
from nsm.data.domains.causal.dataset import CausalTripleDataset
from nsm.data.domains.planning.dataset import PlanningTripleDataset
from nsm.errors import NSMError
from nsm.job import run_job
from nsm.runners.local import expected_cost


@pytest.mark.parametrize("name", ["planning", "causal", "kg"])
def test_each_domain_declares_its_facts_once(name):
    domain = DOMAINS[name]
    assert domain.name == domain.schema.name == name and domain.dataset_class.schema is domain.schema
    for profile in PROFILES:
        config = make_run_config(name, profile)
        # The model's relation budget is the schema's, the data size is the domain's declaration.
        assert config["model_args"]["num_relations"] == domain.schema.num_relations >= len(domain.schema.relations)
        assert config["data"] == dict(domain.profile_data[profile]) and config["data"]["num_samples"] > 0
        assert config["select_best_by"] == domain.select_best_by


def test_the_registry_is_read_without_torch():
    """The Modal app's local entry points and `nsm cloud plan` make run configurations from it."""
    script = ("import sys; from nsm.config import make_run_config; make_run_config('kg', 'production'); "
              "print([name for name in ('torch', 'torch_geometric') if name in sys.modules])")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stderr


def test_the_seeds_relation_budgets():
    """The seed's model configurations: 16, 20 and 66 relations."""
    assert {name: domain.num_relations for name, domain in DOMAINS.items()} == {"planning": 16, "causal": 20, "kg": 66}


def test_the_seeds_size_names_are_num_samples(tmp_path):
    seed_named = PlanningTripleDataset(tmp_path, "train", num_problems=40, seed=3)
    assert seed_named.labels == PlanningTripleDataset(tmp_path, "train", num_samples=40, seed=3).labels
    assert len(CausalTripleDataset(tmp_path, "val", num_scenarios=40)) == len(CausalTripleDataset(tmp_path, "val", 40))
    with pytest.raises(NSMError, match="num_samples and num_problems both set the number of samples"):
        PlanningTripleDataset(tmp_path, "train", num_samples=40, num_problems=40)


def test_unknown_domain_names_the_registered_ones():
    with pytest.raises(NSMError, match="unknown domain 'chess'; choose one of planning, causal, kg"):
        get_domain("chess")
    with pytest.raises(NSMError, match="registered already"):
        register(toy_domain.DOMAIN.__class__(**{**toy_domain.DOMAIN.__dict__, "name": "kg"}))


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(DOMAINS, "toy", toy_domain.DOMAIN)
    return toy_domain.DOMAIN


def test_a_new_domain_trains_through_run_job(toy, tmp_path):
    """A fourth domain is its folder (tests/toy_domain) and one registry entry: the run
    configuration, the dataset door, the job, the local runner's scheduling and the CLI take it."""
    config = make_run_config("toy", "quick", run_dir=str(tmp_path / "run"), data_root=str(tmp_path / "data"),
                             device="cpu", epochs=2)
    assert config["model_args"]["num_relations"] == 4 and config["data"] == {"num_samples": 80}
    assert expected_cost(config) == pytest.approx(0.1 * 80 * 2)
    results = run_job(config)
    assert results["status"] == "success" and results["epochs_run"] == 2
    assert results["dataset_sizes"] == {"train": 56, "val": 12, "test": 12}
    assert 0.0 <= results["test_metrics"]["accuracy"] <= 1.0
    assert json.loads((tmp_path / "run" / "results.json").read_text())["domain"] == "toy"
    assert load_dataset("toy", tmp_path / "data", "test", num_samples=80).labels.count(1) == 6  # balanced
    with pytest.raises(NSMError, match="declares no data size for profile 'dev'"):
        make_run_config("toy", "dev")


def test_a_new_domain_is_on_the_command_line(toy, tmp_path, capsys):
    assert cli.main(["data", "--domain", "toy", "--profile", "quick", "--data-root", str(tmp_path), "--show", "0"]) == 0
    assert "points_to" in capsys.readouterr().out
