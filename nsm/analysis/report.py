"""Pictures of training and a Markdown report, from run directories alone (no dataset needed).

``write_report(directory)`` accepts a run directory (``history.json``, ``results.json``,
checkpoints) or a ``nsm validate`` directory (``summary.json`` and one run directory per domain).
Per run it draws ``<run>_training.png``: train (solid) and validation (dashed) total/task/cycle
loss, validation accuracy per class, learning rate and temperature per epoch. ``report.md``
embeds the plots under the table of test metrics ``nsm validate`` prints (a failed run shows as
FAILED with its error) and warns of class collapse: on the test split, and in the validation
epochs where it happened.

A run still training, or one that crashed, has no ``history.json`` yet: its history is read
from ``latest.pt`` (else ``previous.pt``), which carries it. Every file is read through
:mod:`nsm.rundir`, which checks it for the shape the report reads, so a damaged one is named in one
line, not met as a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nsm.atomic import atomic_write
from nsm.errors import NSMError
from nsm.rundir import (
    LATEST, PREVIOUS, REPORT, RESULTS, RUN_FILES, SUMMARY, check_history, format_summary, is_run_dir,
    read_failed_attempt, read_history, read_results, read_summary, training_plot,
)
from nsm.training.checkpoint import CheckpointError, load_checkpoint

LOSSES = ("total_loss", "task_loss", "cycle_loss")


def find_runs(directory: Path, summary: dict[str, Any]) -> dict[str, Path]:
    """``{name: run directory}``: the directory itself, or the domains of a validate directory
    (those of its ``summary``, else every run directory in it)."""
    if not directory.is_dir():
        raise NSMError(f"{directory} is not a directory")
    if is_run_dir(directory):
        return {directory.resolve().name: directory}
    names = list(summary) or sorted(child.name for child in directory.iterdir() if child.is_dir() and is_run_dir(child))
    if not names:
        raise NSMError(f"{directory} is neither a run directory ({', '.join(RUN_FILES)}) nor a validate "
                       f"directory ({SUMMARY}, one run directory per domain)")
    return {name: directory / name for name in names}


def load_history(run_dir: Path) -> dict[str, list[dict[str, Any]]] | None:
    """The run's per-epoch history: ``history.json``, else the newest readable checkpoint's."""
    history = read_history(run_dir)
    if history is not None:
        return history
    for name in (LATEST, PREVIOUS):
        try:
            history = load_checkpoint(run_dir / name).get("history")
        except CheckpointError:
            continue
        return None if history is None else check_history(history, f"the history in {run_dir / name}")
    return None


def load_results(name: str, run_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """The run's results: a failed attempt of its own beside the finished run's results (the
    newest thing that happened to it), else its entry in ``summary.json``, else its ``results.json``."""
    results, failure = read_results(run_dir), read_failed_attempt(run_dir)
    if failure is not None:
        return dict(failure, finished_run=results) if results else failure
    if name in summary:
        return summary[name]
    return results or {"status": "running", "error": f"no {RESULTS} yet (still training, or killed)"}


def plot_history(history: dict[str, list[dict[str, Any]]], title: str, path: Path) -> Path:
    """The 2×2 training figure of one run (see the module docstring), written to ``path``."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    train, val = history["train"], history["val"]
    figure = Figure(figsize=(11, 7.5), layout="constrained")
    (loss_ax, accuracy_ax), (lr_ax, temperature_ax) = figure.subplots(2, 2)

    def curve(ax, epochs: list[dict[str, Any]], key: str, **style) -> None:
        points = [(e["epoch"], e[key]) for e in epochs if e.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o", markersize=3, **style)

    for colour, key in zip(("tab:blue", "tab:orange", "tab:green"), LOSSES):
        curve(loss_ax, train, key, color=colour, label=f"train {key}")
        curve(loss_ax, val, key, color=colour, linestyle="--", label=f"val {key}")
    accuracy_keys = sorted({key for e in val for key in e if key.startswith("accuracy_class_")})
    for key in ("accuracy", *accuracy_keys):
        curve(accuracy_ax, val, key, label=f"val {key}")
    curve(lr_ax, train, "lr", color="tab:purple")
    curve(temperature_ax, train, "temperature", color="tab:red")
    for ax, name in ((loss_ax, "loss"), (accuracy_ax, "validation accuracy"), (lr_ax, "learning rate"),
                     (temperature_ax, "semiring temperature τ")):
        ax.set(title=name, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        if not ax.lines:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
    accuracy_ax.set_ylim(-0.02, 1.02)
    figure.suptitle(title)
    try:
        figure.savefig(path, dpi=110)
    except OSError as exc:
        raise NSMError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def collapse_warnings(name: str, results: dict[str, Any], history: dict[str, Any] | None) -> list[str]:
    """Collapse on the test split, and the validation epochs where predictions collapsed."""
    warnings = []
    if results.get("status") == "success" and results["test_metrics"].get("collapsed"):
        warnings.append(f"{name}: class collapse on the test split (the model predicts almost one class)")
    collapsed_epochs = [e["epoch"] for e in (history or {}).get("val", []) if e.get("collapsed")]
    if collapsed_epochs:
        warnings.append(f"{name}: validation predictions collapsed in epoch(s) "
                        f"{', '.join(map(str, collapsed_epochs))} of {len(history['val'])}")
    return warnings


def write_report(directory: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the plots and ``report.md`` of ``directory`` into ``out`` (default: ``directory``)."""
    directory = Path(directory)
    summary = read_summary(directory) or {}
    runs = find_runs(directory, summary)
    out = Path(out) if out is not None else directory
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NSMError(f"cannot create {out}: {exc.strerror or exc}") from None

    results_of, warnings, sections = {}, [], []
    for name, run_dir in runs.items():
        results, history = load_results(name, run_dir, summary), load_history(run_dir)
        results_of[name] = results
        warnings += [f"- {warning}" for warning in collapse_warnings(name, results, history)]
        config = results.get("config") or {}
        setting = [f"{key} {config[key]}" for key in ("model", "profile", "seed", "lr", "batch_size") if key in config]
        setting += [f"{split} {size} samples" for split, size in results.get("dataset_sizes", {}).items()]
        sections.append(f"## {name}\n")
        if setting:
            sections.append(", ".join(setting) + "\n")
        if history and history.get("train"):
            image = plot_history(history, f"{name} ({results.get('model', 'nsm')})", out / training_plot(name))
            sections.append(f"![{name} training]({image.name})\n")
        else:
            sections.append("No training history recorded.\n")

    lines = [f"# NSM report: {directory.resolve().name}\n", "Test metrics of each run's best checkpoint:\n",
             "```", format_summary(results_of), "```", "",
             "## Collapse warnings\n", *(warnings or ["None: every class is predicted."]), "", *sections]
    report = out / REPORT
    try:
        with atomic_write(report) as f:
            f.write("\n".join(lines))
    except OSError as exc:
        raise NSMError(f"cannot write {report}: {exc.strerror or exc}") from None
    return report
