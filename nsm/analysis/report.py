"""Pictures of training and a Markdown report, from run directories alone (no dataset needed).

``write_report(directory)`` accepts a run directory (``history.json``, ``results.json``,
checkpoints) or a ``nsm validate`` directory (``summary.json`` and one run directory per domain).
Per run it draws ``<run>_training.png``: train (solid) and validation (dashed) total/task/cycle
loss, validation accuracy per class, learning rate and temperature per epoch. ``report.md``
embeds the plots under the table of test metrics ``nsm validate`` prints (a failed run shows as
FAILED with its error) and warns of class collapse: on the test split, and in the validation
epochs where it happened.

A run still training, or one that crashed, has no ``history.json`` yet: its history is read
from ``latest.pt`` (else ``previous.pt``), which carries it. Every file is checked for the shape
the report reads as it is read, so a damaged one is named in one line, not met as a traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nsm.atomic import atomic_write
from nsm.errors import NSMError
from nsm.rundir import FAILED_ATTEMPT, HISTORY, RESULTS
from nsm.runners.summary import format_summary
from nsm.training.checkpoint import LATEST, PREVIOUS, CheckpointError, load_checkpoint

LOSSES = ("total_loss", "task_loss", "cycle_loss")
RUN_FILES = (HISTORY, RESULTS, FAILED_ATTEMPT, LATEST)
SPLITS = ("train", "val")  # of a history
PLOTTED = (*LOSSES, "accuracy", "lr", "temperature")  # and accuracy_class_<k>
TABLE_METRICS = ("accuracy", "accuracy_class_0", "accuracy_class_1", "recon_error_l1", "recon_error_l2")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NSMError(f"cannot read {path}: {exc}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_history(history: Any, source: str) -> dict[str, list[dict[str, Any]]]:
    """``history`` if it is what :func:`plot_history` reads: ``{"train": [...], "val": [...]}``, one
    object per epoch with an integer ``epoch`` and numbers (or null) for the plotted figures."""
    if not (isinstance(history, dict) and all(isinstance(history.get(split), list) for split in SPLITS)):
        raise NSMError(f'{source} is malformed: expected {{"train": [...], "val": [...]}}, one object per epoch')
    for split in SPLITS:
        for epoch in history[split]:
            if not (isinstance(epoch, dict) and isinstance(epoch.get("epoch"), int)
                    and all(value is None or _is_number(value) for key, value in epoch.items()
                            if key in PLOTTED or key.startswith("accuracy_class_"))):
                raise NSMError(f'{source} is malformed: each {split} epoch needs an integer "epoch" and numbers, '
                               f"got {epoch!r:.60}")
    return history


def check_results(results: Any, source: str) -> dict[str, Any]:
    """``results`` if it is what the report reads of a run's results (results.json, or an entry of
    summary.json): an object; a successful run's ``test_metrics`` an object of numbers."""
    if not isinstance(results, dict):
        problem = f"expected an object of results, got {results!r:.60}"
    elif not all(isinstance(results.get(key) or {}, dict)
                 for key in ("config", "dataset_sizes", "gpu", "finished_run")):
        problem = "config, dataset_sizes, gpu and finished_run must be objects"
    elif not _is_number(results.get("training_time_s", 0)):
        problem = "training_time_s must be a number"
    elif results.get("status") == "success" and not (
            isinstance(results.get("test_metrics"), dict)
            and all(_is_number(results["test_metrics"].get(key, 0)) for key in TABLE_METRICS)):
        problem = "a successful run needs test_metrics, an object of numbers"
    else:
        if results.get("finished_run"):  # an earlier run's results, shown in the table as well
            check_results(results["finished_run"], f"{source}, finished_run")
        return results
    raise NSMError(f"{source} is malformed: {problem}")


def _is_run(directory: Path) -> bool:
    return any((directory / name).exists() for name in RUN_FILES)


def read_summary(directory: Path) -> dict[str, Any]:
    """A validate directory's ``summary.json`` (``{domain: results}``); empty if there is none."""
    path = directory / "summary.json"
    if not path.exists():
        return {}
    summary = _read_json(path)
    if not isinstance(summary, dict):
        raise NSMError(f"{path} is malformed: expected an object of results by domain, got {summary!r:.60}")
    return {name: check_results(results, f"{path}, entry {name!r}") for name, results in summary.items()}


def find_runs(directory: Path, summary: dict[str, Any]) -> dict[str, Path]:
    """``{name: run directory}``: the directory itself, or the domains of a validate directory
    (those of its ``summary``, else every run directory in it)."""
    if not directory.is_dir():
        raise NSMError(f"{directory} is not a directory")
    if _is_run(directory):
        return {directory.resolve().name: directory}
    names = list(summary) or sorted(child.name for child in directory.iterdir() if child.is_dir() and _is_run(child))
    if not names:
        raise NSMError(f"{directory} is neither a run directory ({', '.join(RUN_FILES)}) nor a validate "
                       f"directory (summary.json, one run directory per domain)")
    return {name: directory / name for name in names}


def load_history(run_dir: Path) -> dict[str, list[dict[str, Any]]] | None:
    """The run's per-epoch history: ``history.json``, else the newest readable checkpoint's."""
    path = run_dir / HISTORY
    if path.exists():
        return check_history(_read_json(path), str(path))
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
    results_path, failure_path = run_dir / RESULTS, run_dir / FAILED_ATTEMPT
    results = check_results(_read_json(results_path), str(results_path)) if results_path.exists() else None
    if failure_path.exists():
        failure = check_results(_read_json(failure_path), str(failure_path))
        return dict(failure, finished_run=results) if results else failure
    if name in summary:
        return summary[name]
    return results or {"status": "running", "error": "no results.json yet (still training, or killed)"}


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
    summary = read_summary(directory)
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
            image = plot_history(history, f"{name} ({results.get('model', 'nsm')})", out / f"{name}_training.png")
            sections.append(f"![{name} training]({image.name})\n")
        else:
            sections.append("No training history recorded.\n")

    lines = [f"# NSM report: {directory.resolve().name}\n", "Test metrics of each run's best checkpoint:\n",
             "```", format_summary(results_of), "```", "",
             "## Collapse warnings\n", *(warnings or ["None: every class is predicted."]), "", *sections]
    report = out / "report.md"
    try:
        with atomic_write(report) as f:
            f.write("\n".join(lines))
    except OSError as exc:
        raise NSMError(f"cannot write {report}: {exc.strerror or exc}") from None
    return report
