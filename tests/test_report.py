"""`nsm report`: plots and report.md from run directories alone."""

import json
import shutil

import pytest
from matplotlib.image import imread

from nsm.analysis.report import collapse_warnings
from nsm.cli import main
from nsm.config import make_run_config
from nsm.runners.local import run_domains


@pytest.fixture(scope="module")
def validate_dir(tmp_path_factory):
    """A quick validate directory in which causal succeeded and kg failed (no such KG directory)."""
    root = tmp_path_factory.mktemp("validate")
    data_root = str(tmp_path_factory.mktemp("data_cache"))
    configs = {domain: make_run_config(domain, "quick", run_dir=str(root / domain), data_root=data_root)
               for domain in ("causal", "kg")}
    configs["kg"]["kg_dir"] = str(root / "no-such-kg")
    run_domains(configs, root, log=lambda line: None)
    return root


def assert_image(path):
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert pixels[..., :3].std() > 0.05  # something was drawn


def test_validate_directory_report(capsys, validate_dir, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(validate_dir), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out / 'report.md'}"
    report = (out / "report.md").read_text()
    summary = json.loads((validate_dir / "summary.json").read_text())

    assert "![causal training](causal_training.png)" in report
    assert_image(out / "causal_training.png")
    metrics = summary["causal"]["test_metrics"]
    for key in ("accuracy", "accuracy_class_0", "accuracy_class_1"):
        assert f"{metrics[key]:.1%}" in report
    assert f"{metrics['recon_error_l1']:.3f}" in report
    # The failed domain: in the table with its error, and no plot.
    kg_row = next(line for line in report.splitlines() if line.startswith("kg "))
    assert "FAILED" in kg_row and "no-such-kg" in kg_row
    assert not (out / "kg_training.png").exists() and "## Collapse warnings" in report


def test_single_run_report_written_beside_the_run(validate_dir, tmp_path):
    run = shutil.copytree(validate_dir / "causal", tmp_path / "causal")
    assert main(["report", str(run)]) == 0
    assert "![causal training](causal_training.png)" in (run / "report.md").read_text()
    assert_image(run / "causal_training.png")


def test_a_run_still_training_is_reported_from_its_checkpoint(validate_dir, tmp_path):
    # No history.json and no results.json yet: the history comes from latest.pt.
    run = shutil.copytree(validate_dir / "causal", tmp_path / "causal")
    (run / "history.json").unlink()
    (run / "results.json").unlink()
    assert main(["report", str(run)]) == 0
    report = (run / "report.md").read_text()
    assert "no results.json yet" in report and "causal_training.png" in report
    assert_image(run / "causal_training.png")


def test_collapse_warnings_name_the_test_split_and_the_validation_epochs():
    results = {"status": "success", "test_metrics": {"collapsed": True}}
    history = {"val": [{"epoch": 0, "collapsed": True}, {"epoch": 1, "collapsed": False},
                       {"epoch": 2, "collapsed": True}]}
    assert collapse_warnings("planning", results, history) == [
        "planning: class collapse on the test split (the model predicts almost one class)",
        "planning: validation predictions collapsed in epoch(s) 0, 2 of 3",
    ]
    healthy = {"status": "success", "test_metrics": {"collapsed": False}}
    assert collapse_warnings("planning", healthy, {"val": [{"epoch": 0, "collapsed": False}]}) == []


@pytest.mark.parametrize("make_dir, message", [
    (lambda tmp: tmp / "missing", "is not a directory"),
    (lambda tmp: tmp, "is neither a run directory"),
])
def test_bad_directory_is_one_line(capsys, tmp_path, make_dir, message):
    assert main(["report", str(make_dir(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
