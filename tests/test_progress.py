"""Progress: the trainer's events, the bar that draws them, and what `nsm validate` shows and logs."""

import io
import json
import logging
import math

import pytest

from _resume_driver import build_run
from nsm.config import make_run_config
from nsm.runners.local import run_domains
from nsm.runners.messages import log_line, parse_line, progress_line
from nsm.training.progress import ProgressBar


def test_the_trainer_sends_each_epochs_steps_and_its_end(caplog):
    events = []
    trainer, train_loader, val_loader = build_run(None, progress=events.append)
    with caplog.at_level(logging.INFO, logger="nsm.training.trainer"):
        trainer.train(train_loader, val_loader, epochs=2)
    steps = len(train_loader)
    for epoch in range(2):
        step_events = [e for e in events if e["event"] == "step" and e["epoch"] == epoch]
        assert step_events and step_events[-1]["step"] == steps  # an epoch's last step always comes
        assert all(e["steps"] == steps and e["epochs"] == 2 and math.isfinite(e["loss"]) for e in step_events)
        assert [e["step"] for e in step_events] == sorted({e["step"] for e in step_events})
    ends = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in ends] == [0, 1]
    assert ends[-1]["val_accuracy"] == trainer.history["val"][-1]["accuracy"]
    assert ends[-1]["train_loss"] == trainer.history["train"][-1]["total_loss"]
    messages = [record.getMessage() for record in caplog.records]
    assert sum(message.startswith(("epoch 1/2 |", "epoch 2/2 |")) for message in messages) == 2
    assert not any(" step " in message for message in messages)  # the events replace the step lines


def test_without_progress_the_steps_are_log_lines(caplog):
    trainer, train_loader, val_loader = build_run(None, progress=False)
    trainer.log_interval = 2
    with caplog.at_level(logging.INFO, logger="nsm.training.trainer"):
        trainer.train(train_loader, val_loader, epochs=1)
    step_lines = [r.getMessage() for r in caplog.records if " step " in r.getMessage()]
    assert step_lines[0].startswith("epoch 1/1 step 2: loss ")
    assert len(step_lines) == len(train_loader) // 2


def test_the_bar_covers_the_whole_run_and_starts_where_a_resume_does():
    out = io.StringIO()
    bar = ProgressBar("kg", file=out)
    # A run resumed after 2 of 4 epochs of 5 steps each.
    bar({"event": "step", "epoch": 2, "epochs": 4, "step": 1, "steps": 5, "loss": 0.5})
    assert (bar.bar.total, bar.bar.initial, bar.bar.n) == (20, 10, 11)
    bar({"event": "step", "epoch": 2, "epochs": 4, "step": 5, "steps": 5, "loss": 0.4})
    bar({"event": "epoch", "epoch": 2, "epochs": 4, "train_loss": 0.4, "val_loss": 0.45, "val_accuracy": 0.75,
         "time_s": 1.0})
    assert bar.bar.n == 15
    bar({"event": "step", "epoch": 3, "epochs": 4, "step": 2, "steps": 5, "loss": 0.3})
    assert "epoch 4/4, loss 0.3000, val acc 0.750" in str(bar.bar)
    bar.close()
    assert bar.bar is None and "kg" in out.getvalue()


def test_worker_lines_are_parsed_back_and_anything_else_is_a_warning():
    event = {"event": "step", "epoch": 0, "epochs": 2, "step": 3, "steps": 9, "loss": 0.7}
    assert parse_line(progress_line(event) + "\n") == ("progress", event)
    assert parse_line(log_line("epoch 1/2 | train loss 0.7", logging.INFO)) == \
        ("log", (logging.INFO, "epoch 1/2 | train loss 0.7"))
    assert parse_line("Traceback (most recent call last):\n") == \
        ("log", (logging.WARNING, "Traceback (most recent call last):"))
    assert parse_line("[1, 2]") == ("log", (logging.WARNING, "[1, 2]"))


@pytest.mark.slow
@pytest.mark.parametrize("bars", [True, False])
def test_validate_shows_bars_or_epoch_lines_and_logs_one_line_per_epoch(tmp_path, capsys, bars):
    config = make_run_config("causal", "quick", run_dir=str(tmp_path / "causal"), data_root=str(tmp_path / "data"))
    lines = []
    summary = run_domains({"causal": config}, tmp_path, log=lines.append, progress=bars)
    assert summary["causal"]["status"] == "success"
    log = (tmp_path / "causal" / "train.log").read_text().splitlines()
    assert [line.split(" |")[0] for line in log if line.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert not any(" step " in line or line.startswith("{") for line in log)
    epoch_lines = [line for line in lines if line.startswith("[causal] epoch ")]
    shown = capsys.readouterr().out
    if bars:
        assert not epoch_lines and "causal" in shown and "epoch 2/2" in shown
    else:
        assert len(epoch_lines) == 2 and "epoch 2/2" not in shown
    assert lines[-1] == "causal: success"
    assert json.loads((tmp_path / "summary.json").read_text())["causal"]["status"] == "success"
