"""The run directory and the validate directory: every file's name, its readers and writers, and
the lock that gives a run directory one writer at a time. The rest of the package reaches these
files only through this module.

A **run directory** (``nsm train --run-dir``, ``runs/<domain>`` by default) holds one job::

    config.json          the run configuration the job was started with, resolved from its
                         profile, --config file, --set and flags (nsm.job, write_config)
    latest.pt            the newest epoch's training state, written every checkpoint_every epochs
                         and at the last one by NSMTrainer (nsm.training); resumes start here
    previous.pt          the latest.pt it replaced: the fallback when latest.pt is damaged
    best.pt              the state of the best validation epoch (NSMTrainer; a KG embedding's
                         only checkpoint, nsm.job): what the test metrics, nsm eval and nsm
                         explain use, else latest.pt (best_checkpoint)
    error.pt             the state at a failure (a NaN, an exception), for a post-mortem
    history.json         the finished run's per-epoch metrics, {"train": [...], "val": [...]}:
                         losses, accuracy (per class too), lr, temperature (nsm.job, write_history)
    results.json         the finished run: status success, domain, model, config, host, start,
                         test metrics, dataset sizes, GPU use, timings (nsm.job, write_results)
    failed-attempt.json  the last attempt that failed: the same fields with status failed, its
                         error and traceback (nsm.job, write_failed_attempt)
    train.log            (nsm validate) what the domain's worker said (nsm.runners.local)
    tensorboard/         (--tensorboard) the per-epoch figures as TensorBoard events (NSMTrainer)
    progress.json        (the cloud) the newest committed checkpoint's epoch, for nsm cloud status
    .nsm-lock            held by the process running a job here; names it (run_lock)
    .nsm-tmp.<pid>.*     a write in flight (nsm.atomic), swept when its writer is gone

``results.json`` only ever holds a success and is replaced only by a later success: an attempt
that fails afterwards (a typo in a re-run, ``--device cuda`` without a GPU, a damaged checkpoint)
writes ``failed-attempt.json`` beside it, and the next success removes that. A run still training,
or killed, has checkpoints but no ``history.json`` or ``results.json`` yet; the checkpoints carry
the history so far.

A **validate directory** (``nsm validate --run-dir``, ``runs/cloud/<run>`` of ``nsm cloud ...``)
holds several jobs::

    summary.json         {job: its results.json, or its failure (with finished_run: the results
                         an earlier success left; from the cloud: cause and remedy)}, written when
                         every job has ended (nsm.runners.local, nsm.cloud.app, nsm cloud attach;
                         write_summary)
    cloud-run.json       (nsm cloud) the launched run: profile, app, and per job its Modal call id,
                         domain, sweep point and configuration; here and on the volume at
                         <run>/cloud-run.json (nsm.cloud.runs)
    <job>/               one run directory per domain (or sweep point; in the cloud they stay on
                         the volume until nsm cloud download)

``nsm report DIR`` writes ``report.md`` and one ``<job>_training.png`` per job into either kind
(or into ``--out``). ``format_summary`` renders ``summary.json`` (or one run's results) as the
table ``nsm train``, ``nsm validate``, ``nsm cloud`` and the report print.

The readers return ``None`` for a missing file and otherwise raise a one-line :class:`NSMError`
naming the file when it cannot be read or does not have the shape the package reads;
``strict=False`` is the runner's look, which never raises (see :func:`read_results`).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from nsm.atomic import write_json
from nsm.errors import NSMError

# A run directory's files.
LATEST = "latest.pt"
PREVIOUS = "previous.pt"
BEST = "best.pt"
ERROR = "error.pt"
HISTORY = "history.json"
RESULTS = "results.json"
CONFIG = "config.json"
FAILED_ATTEMPT = "failed-attempt.json"
TRAIN_LOG = "train.log"
TENSORBOARD = "tensorboard"
LOCK = ".nsm-lock"
# Any of these makes a directory a run directory, whatever state its run is in.
RUN_FILES = (HISTORY, RESULTS, FAILED_ATTEMPT, LATEST)

# A cloud job's progress note, beside its checkpoints on the volume.
PROGRESS = "progress.json"

# A validate directory's own files (beside its run directories).
SUMMARY = "summary.json"
CLOUD_RUN = "cloud-run.json"

# What nsm report writes into either kind of directory.
REPORT = "report.md"


def training_plot(job: str) -> str:
    """The file name of ``job``'s training figure in a report."""
    return f"{job}_training.png"


# The shapes the readers check: a history's splits and the figures of its epochs that must be
# numbers (or null), and the test metrics of a successful run that must be numbers.
HISTORY_SPLITS = ("train", "val")
HISTORY_NUMBERS = ("total_loss", "task_loss", "cycle_loss", "accuracy", "lr", "temperature")  # + accuracy_class_<k>
TABLE_METRICS = ("accuracy", "accuracy_class_0", "accuracy_class_1", "recon_error_l1", "recon_error_l2",
                 "recon_vs_baseline_l1", "recon_vs_baseline_l2")


class RunDirectoryBusy(NSMError):
    """Another process is running a job in this run directory."""


@contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block, or raise :class:`RunDirectoryBusy` naming its holder.

    An ``flock`` on ``.nsm-lock``: the kernel releases it when its process ends in any way,
    ``kill -9`` included, so a crashed run never leaves its directory locked. The file names the
    holder (pid, host, command, start) for the message another process gets.
    """
    run_dir = Path(run_dir)
    path = run_dir / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise NSMError(f"cannot write to run directory {run_dir}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirectoryBusy(f"run directory {run_dir} is in use by {_holder(path)}; wait for it to "
                                   "finish, or give this run another --run-dir") from None
        except OSError as exc:  # a file system without locks (some network mounts)
            warnings.warn(f"cannot lock {path} ({exc.strerror or exc}): nothing stops a second run here")
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200],
                  "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(holder).encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text())
        return f"process {holder['pid']} on {holder['host']} ({holder['command']}, since {holder['since']})"
    except (OSError, ValueError, KeyError, TypeError):  # caught between its lock and its note
        return "another process"


def is_run_dir(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a run (any of :data:`RUN_FILES`), finished or not."""
    return any((Path(directory) / name).exists() for name in RUN_FILES)


def best_checkpoint(run_dir: str | os.PathLike, name: str = BEST) -> Path:
    """The checkpoint a run is evaluated from: ``name`` (``best.pt``) where it exists, else
    ``latest.pt``, which may be missing too (the caller says what that means)."""
    path = Path(run_dir) / name
    return path if path.exists() else Path(run_dir) / LATEST


# Writers.

def write_config(run_dir: str | os.PathLike, config: dict[str, Any]) -> None:
    """Record the configuration a job starts with: ``config.json``. A record, not a need of the
    run: where it cannot be written, a warning says so and the job goes on (its results hold the
    config as well)."""
    try:
        write_json(Path(run_dir) / CONFIG, config)
    except OSError as exc:
        warnings.warn(f"cannot write {Path(run_dir) / CONFIG}: {exc.strerror or exc}; the run goes on")


def write_history(run_dir: str | os.PathLike, history: dict[str, Any]) -> None:
    """Record a finished run's per-epoch metrics: ``history.json``."""
    write_json(Path(run_dir) / HISTORY, history)


def write_results(run_dir: str | os.PathLike, results: dict[str, Any]) -> None:
    """Record a finished run: ``results.json``, superseding any failed attempt."""
    try:
        write_json(Path(run_dir) / RESULTS, results)
    except OSError as exc:
        raise NSMError(f"the run finished, but {Path(run_dir) / RESULTS} could not be written: "
                       f"{exc.strerror or exc}") from None
    (Path(run_dir) / FAILED_ATTEMPT).unlink(missing_ok=True)


def write_failed_attempt(run_dir: str | os.PathLike, failure: dict[str, Any], exc: BaseException) -> None:
    """Record a failed attempt beside the finished run's results (if any), which stay as they were.
    Where even that cannot be written, ``exc`` (the failure itself) says so in a note."""
    try:
        write_json(Path(run_dir) / FAILED_ATTEMPT, failure)
    except OSError as write_error:
        exc.add_note(f"and {FAILED_ATTEMPT} could not be written: {write_error.strerror or write_error}")


def write_summary(directory: str | os.PathLike, summary: dict[str, Any]) -> Path:
    """Record the outcome of every job of a validate directory: ``summary.json``; return its path."""
    path = Path(directory) / SUMMARY
    write_json(path, summary)
    return path


# Readers.

def read_json_file(path: Path) -> Any:
    """A JSON file's content; ``None`` when it is missing or unreadable (a crash never leaves half
    a file, but a person may)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read(path: Path, check: Callable[[Any, str], Any], strict: bool) -> Any:
    if not strict:
        content = read_json_file(path)
        return content if isinstance(content, dict) else None
    if not path.exists():
        return None
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NSMError(f"cannot read {path}: {exc}") from None
    return check(content, str(path))


def read_results(run_dir: str | os.PathLike, *, strict: bool = True) -> dict[str, Any] | None:
    """The run's ``results.json`` (:func:`check_results`); ``None`` if there is none.

    ``strict=False`` is a look that never raises, for a runner that must not fail over a job's
    files: the file's JSON object as it is, ``None`` where it is missing, unreadable or no object.
    """
    return _read(Path(run_dir) / RESULTS, check_results, strict)


def read_failed_attempt(run_dir: str | os.PathLike, *, strict: bool = True) -> dict[str, Any] | None:
    """The run's ``failed-attempt.json`` (:func:`check_results`); ``None`` if there is none.
    ``strict`` as for :func:`read_results`."""
    return _read(Path(run_dir) / FAILED_ATTEMPT, check_results, strict)


def read_history(run_dir: str | os.PathLike, *, strict: bool = True) -> dict[str, list[dict[str, Any]]] | None:
    """The run's ``history.json`` (:func:`check_history`); ``None`` if there is none.
    ``strict`` as for :func:`read_results`."""
    return _read(Path(run_dir) / HISTORY, check_history, strict)


def read_summary(directory: str | os.PathLike, *, strict: bool = True) -> dict[str, dict[str, Any]] | None:
    """A validate directory's ``summary.json``, ``{job: results}`` (each entry as
    :func:`check_results` checks it); ``None`` if there is none. ``strict`` as for :func:`read_results`."""
    return _read(Path(directory) / SUMMARY, check_summary, strict)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_history(history: Any, source: str) -> dict[str, list[dict[str, Any]]]:
    """``history`` if it is what a history is read as: ``{"train": [...], "val": [...]}``, one
    object per epoch with an integer ``epoch`` and numbers (or null) for :data:`HISTORY_NUMBERS`
    and ``accuracy_class_<k>``; else a one-line :class:`NSMError` naming ``source``."""
    if not (isinstance(history, dict) and all(isinstance(history.get(split), list) for split in HISTORY_SPLITS)):
        raise NSMError(f'{source} is malformed: expected {{"train": [...], "val": [...]}}, one object per epoch')
    for split in HISTORY_SPLITS:
        for epoch in history[split]:
            if not (isinstance(epoch, dict) and isinstance(epoch.get("epoch"), int)
                    and all(value is None or _is_number(value) for key, value in epoch.items()
                            if key in HISTORY_NUMBERS or key.startswith("accuracy_class_"))):
                raise NSMError(f'{source} is malformed: each {split} epoch needs an integer "epoch" and numbers, '
                               f"got {epoch!r:.60}")
    return history


def check_results(results: Any, source: str) -> dict[str, Any]:
    """``results`` if it is what a run's results are read as (results.json, failed-attempt.json,
    an entry of summary.json): an object; a successful run's ``test_metrics`` an object of
    numbers; else a one-line :class:`NSMError` naming ``source``."""
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
    elif not (isinstance(results.get("ood_metrics", {}), dict)
              and _is_number(results.get("ood_metrics", {}).get("accuracy", 0))):
        problem = "ood_metrics must be an object of numbers"
    else:
        if results.get("finished_run"):  # an earlier run's results, shown in the table as well
            check_results(results["finished_run"], f"{source}, finished_run")
        return results
    raise NSMError(f"{source} is malformed: {problem}")


def check_summary(summary: Any, source: str) -> dict[str, dict[str, Any]]:
    """``summary`` if it is an object of results by job, each as :func:`check_results` wants it."""
    if not isinstance(summary, dict):
        raise NSMError(f"{source} is malformed: expected an object of results by domain, got {summary!r:.60}")
    return {name: check_results(results, f"{source}, entry {name!r}") for name, results in summary.items()}


def format_summary(summary: dict) -> str:
    """The table a researcher reads first, of ``summary.json`` (or of one run's results, as
    ``{name: results}``): accuracy per class, collapse, reconstruction (overall, and on the dropped
    nodes over the better predictor that learns nothing, ``L1/base``: :mod:`nsm.evaluation.reconstruction`),
    a KG run's sampled-protocol MRR and Hits@10, accuracy on the out-of-distribution split
    (``--ood``), time; then warnings for class collapse and for a GPU left waiting for data."""
    width = max([10, *(len(name) + 2 for name in summary)])  # sweep points have longer names than domains
    header = f"{'job':<{width}}{'status':<9}{'acc':>7}{'acc c0':>8}{'acc c1':>8}" \
             f"{'collapse':>10}{'recon L1':>10}{'recon L2':>10}{'L1/base':>9}{'L2/base':>9}{'MRR':>7}{'H@10':>7}" \
             f"{'ood acc':>9}{'time s':>9}"
    rows = [header, "-" * len(header)]
    for name, result in summary.items():
        if result.get("status") != "success":
            rows.append(f"{name:<{width}}{'FAILED':<9}  {result.get('error', '')}")
            finished = result.get("finished_run")
            if finished and finished.get("status") == "success":
                accuracy = finished.get("test_metrics", {}).get("accuracy")
                rows.append(f"{'':<{width}}{'':<9}  ({RESULTS} keeps the finished run of {finished.get('started_at')}"
                            + (f", test acc {accuracy:.1%})" if accuracy is not None else ")"))
            continue
        m = result["test_metrics"]

        def pct(key, metrics=m):
            return f"{metrics[key]:.1%}" if key in metrics else "-"

        def num(key, metrics=m):
            return f"{metrics[key]:.3f}" if key in metrics else "-"

        ranking = m.get("link_prediction") or {}
        rows.append(f"{name:<{width}}{'ok':<9}{pct('accuracy'):>7}{pct('accuracy_class_0'):>8}"
                    f"{pct('accuracy_class_1'):>8}{('YES' if m.get('collapsed') else 'no'):>10}"
                    f"{num('recon_error_l1'):>10}{num('recon_error_l2'):>10}{num('recon_vs_baseline_l1'):>9}"
                    f"{num('recon_vs_baseline_l2'):>9}{num('mrr', ranking):>7}"
                    f"{num('hits@10', ranking):>7}{pct('accuracy', result.get('ood_metrics') or {}):>9}"
                    f"{result.get('training_time_s', 0):>9.1f}")
    succeeded = {name: result for name, result in summary.items() if result.get("status") == "success"}
    collapsed = [name for name, result in succeeded.items() if result["test_metrics"].get("collapsed")]
    if collapsed:
        rows.append(f"WARNING: class collapse in {', '.join(collapsed)}: the model predicts (almost) one class")
    for name, result in succeeded.items():
        if (result.get("gpu") or {}).get("warning"):
            rows.append(f"WARNING: {name}: {result['gpu']['warning']}")
    return "\n".join(rows)
