"""Run settings from the command line and from a file: the hyperparameter flags, ``--set``,
``--config`` and ``--dry-run``, their precedence and their checks (nsm.config.apply_settings)."""

import json
import math
import warnings
from pathlib import Path

import pytest

from nsm.cli import main
from nsm.config import apply_settings, make_run_config, parse_setting_value, read_settings_file
from nsm.data.domains.kg.tsv import read_kg_dir
from nsm.errors import NSMError
from nsm.models import build_model

TRAIN = ["train", "--domain", "planning", "--profile", "quick"]
TINY_KG = Path(__file__).parent / "data" / "tiny_kg"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("data_cache"))


def dry_run(capsys, *argv: str) -> dict:
    assert main([*TRAIN, "--dry-run", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_flags_set_the_common_hyperparameters(capsys):
    config = dry_run(capsys, "--lr", "3e-4", "--batch-size", "8", "--hidden", "16", "--pool-ratio", "0.25",
                     "--cycle-weight", "0", "--num-levels", "2", "--saliency-weight", "0.5")
    assert config["lr"] == 3e-4 and config["batch_size"] == 8 and config["cycle_loss_weight"] == 0
    assert config["saliency_loss_weight"] == 0.5
    assert config["model_args"] | {"hidden": 16, "pool_ratio": 0.25, "num_levels": 2} == config["model_args"]


def test_set_reaches_nested_fields_and_keeps_types(capsys):
    config = dry_run(capsys, "--set", "model_args.num_bases=4", "--set", "temperature.final_temp=0.5",
                     "--set", "weight_decay=0", "--set", "device=cpu", "--set", "tensorboard=true",
                     "--set", "lr=.5", "--set", "epochs=4")
    assert config["model_args"]["num_bases"] == 4 and config["device"] == "cpu" and config["tensorboard"] is True
    assert config["weight_decay"] == 0.0 and isinstance(config["weight_decay"], float)  # a number takes an int
    assert config["lr"] == 0.5 and config["epochs"] == 4
    # The schedule follows the run's epochs and its final temperature: τ reaches 0.5 at the last epoch.
    schedule = config["temperature"]
    assert schedule["final_temp"] == 0.5
    assert schedule["initial_temp"] * schedule["decay_rate"] ** (4 - 1 - schedule["warmup_epochs"]) \
        == pytest.approx(0.5)


def test_set_shapes_the_model_it_builds(capsys):
    """The issue's own example: --set model_args.concrete_convs=2 (and dropout) reach NSMModel."""
    config = dry_run(capsys, "--set", "model_args.concrete_convs=2", "--set", "model_args.dropout=0.1")
    model = build_model(config["model"], **config["model_args"])
    assert len(model.concrete_convs) == 2 and model.dropout.p == 0.1
    assert len(build_model("nsm", **make_run_config("planning", "quick")["model_args"]).concrete_convs) == 3


def test_precedence_is_profile_file_set_flags(tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text('lr = 0.01\nbatch_size = 16\nepochs = 3\n\n[model_args]\nnum_bases = 2\npool_ratio = 0.3\n')
    config = dry_run(capsys, "--config", str(toml), "--set", "lr=0.02", "--set", "batch_size=4",
                     "--batch-size", "2")
    assert config["epochs"] == 3 and config["model_args"]["num_bases"] == 2  # the file over the profile
    assert config["model_args"]["pool_ratio"] == 0.3
    assert config["lr"] == 0.02  # --set over the file
    assert config["batch_size"] == 2  # a flag over --set
    assert config["data"] == make_run_config("planning", "quick")["data"]  # untouched tables stay whole


def test_dry_run_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = dry_run(capsys, "--run-dir", "run", "--data-root", "cache")
    assert config["run_dir"] == "run" and list(tmp_path.iterdir()) == []


def test_validate_takes_the_same_settings(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("nsm.runners.local.run_domains", lambda configs, root: seen.update(configs) or {})
    assert main(["validate", "--profile", "quick", "--domains", "planning,kg", "--run-dir", str(tmp_path),
                 "--set", "model_args.num_bases=3", "--lr", "0.002"]) == 0
    assert all(c["model_args"]["num_bases"] == 3 and c["lr"] == 0.002 for c in seen.values())
    assert seen["kg"]["run_dir"] == str(tmp_path / "kg")


@pytest.mark.parametrize("settings, message", [
    ({"lr": "abc"}, "lr takes a number, got 'abc'"),
    ({"epochs": 2.5}, "epochs takes an integer, got 2.5"),
    ({"seed": True}, "seed takes an integer, got true"),
    ({"device": 1}, "device takes a string, got 1"),
    ({"tensorboard": "yes"}, "tensorboard takes true or false, got 'yes'"),
    ({"model_args": 3}, "model_args takes a table of settings"),
    ({"model_args.nonsense": 1}, "unknown run setting model_args.nonsense (model_args has num_bases, pool_ratio"),
    ({"nonsense": 1}, "unknown run setting nonsense (the run config has model, seed"),
    ({"lr.x": 1}, "unknown run setting lr.x (lr is not a table)"),
    ({"data.hops": 3}, "unknown run setting data.hops (data has num_samples)"),  # kg only
    ({"domain": "kg"}, "domain cannot be set here: give --domain"),
    ({"profile": "dev"}, "profile cannot be set here: give --profile"),
    ({"relations": "a"}, "relations cannot be set here: the job reads them"),
    ({"model_args.num_classes": 3}, "model_args.num_classes cannot be set here: the domain fixes it"),
])
def test_settings_must_name_a_field_and_match_its_type(settings, message):
    with pytest.raises(NSMError) as error:
        apply_settings(make_run_config("planning", "quick"), settings)
    assert message in str(error.value)


@pytest.mark.parametrize("settings, message", [
    ({"model_args.pool_ratio": 0}, "model_args.pool_ratio must be in (0, 1), got 0"),
    ({"model_args.pool_ratio": 1.0}, "model_args.pool_ratio must be in (0, 1), got 1.0"),
    ({"model_args.dropout": 1}, "model_args.dropout must be in [0, 1), got 1"),
    ({"model_args.concrete_convs": 0}, "model_args.concrete_convs must be a positive integer"),
    ({"temperature.decay_rate": 1.5}, "temperature.decay_rate must be in (0, 1], got 1.5"),
    ({"model_args.num_levels": 4}, "model_args.num_levels must be an integer from 2 to 3"),
    ({"model_args.node_features": 0}, "model_args.node_features must be a positive integer"),
    ({"cycle_loss_weight": -0.1}, "cycle_loss_weight must be non-negative and finite"),
    ({"weight_decay": math.nan}, "weight_decay must be non-negative and finite"),
    ({"lr": math.inf}, "lr must be positive and finite, got inf"),
    ({"temperature.final_temp": 0.0}, "temperature.final_temp must be positive and finite"),
    ({"kg_dir": "x"}, "kg_dir only applies to the kg domain"),
])
def test_settings_are_checked_like_any_other(settings, message):
    """The ranges are validate_run_config's, whichever way a value came in."""
    with pytest.raises(NSMError) as error:
        make_run_config("planning", "quick", [("--set x", settings)])
    assert str(error.value) == f"--set x: {message}" or message in str(error.value)


def test_set_values_are_toml_literals():
    assert [parse_setting_value(t) for t in ("4", "1e-3", ".5", "true", '"4"', "cpu", "inf")] == \
        [4, 1e-3, 0.5, True, "4", "cpu", math.inf]


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = 0.01\nepochs = \n")
    with pytest.raises(NSMError, match=r"bad.toml is not valid TOML: .*line 2"):
        read_settings_file(str(bad))
    with pytest.raises(NSMError, match="cannot read .*missing.toml"):
        read_settings_file(str(tmp_path / "missing.toml"))
    typed = tmp_path / "typed.toml"
    typed.write_text('[model_args]\nnum_bases = "four"\n')
    with pytest.raises(NSMError, match=r"typed.toml: model_args.num_bases takes an integer, got 'four'"):
        make_run_config("planning", "quick", [(str(typed), read_settings_file(str(typed)))])


def test_kg_takes_its_subgraph_settings():
    config = make_run_config("kg", "quick", [("--set", {"data.hops": 3, "data.max_entities": 10})])
    assert config["data"]["hops"] == 3 and config["data"]["max_entities"] == 10


@pytest.mark.slow
def test_a_run_saves_its_config_and_a_changed_resume_warns(tmp_path, capsys, data_root):
    run_dir = tmp_path / "run"
    argv = [*TRAIN, "--epochs", "2", "--run-dir", str(run_dir), "--data-root", data_root, "--device", "cpu",
            "--set", "model_args.num_bases=4"]
    assert main(argv) == 0
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["model_args"]["num_bases"] == 4 and saved["epochs"] == 2
    assert saved == json.loads((run_dir / "results.json").read_text())["config"]
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*argv[:5], "--epochs", "3", *argv[7:], "--lr", "0.002"]) == 0
    assert any("configured differently" in str(w.message) and "lr" in str(w.message) for w in caught)
    assert json.loads((run_dir / "config.json").read_text())["lr"] == 0.002


def test_a_file_may_choose_a_kg_embedding_that_a_flag_completes():
    """A layer is checked field by field; what needs two settings (a KG embedding and its --kg-dir)
    is checked once all layers are in."""
    config = make_run_config("kg", "quick", [("run.toml", {"model": "complex", "model_args.hidden_channels": 8})],
                             kg_dir="kg")
    assert config["model"] == "complex" and config["model_args"] == {"task_type": "link_prediction",
                                                                     "hidden_channels": 8}
    with pytest.raises(NSMError, match="needs --domain kg --kg-dir DIR"):
        make_run_config("kg", "quick", [("run.toml", {"model": "complex"})])


@pytest.mark.parametrize("choice", [["--model", "rotate"], ["--set", "model=complex"]])
def test_hidden_is_a_kg_embeddings_width(capsys, choice):
    assert main(["train", "--domain", "kg", "--profile", "quick", "--kg-dir", str(TINY_KG), "--dry-run",
                 "--hidden", "12", *choice]) == 0
    # Sized to the files, as the job sizes it: their entities and relations.
    model_args = json.loads(capsys.readouterr().out)["model_args"]
    assert model_args["task_type"] == "link_prediction" and model_args["hidden_channels"] == 12
    files = read_kg_dir(TINY_KG)
    assert model_args["num_entities"] == len(files.entities) and model_args["num_relations"] == len(files.relations)
