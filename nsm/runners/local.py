"""Run several domains on this machine, in parallel processes, each with its own fate.

Each domain trains in its own Python process (``python -m nsm.runners.worker``), so a failure of
any kind — an exception, a NaN, even a hard crash of the interpreter — stays in that process: the
other domains go on, every domain's results and checkpoints stay on disk, and the summary says
what happened to each. With more jobs than cores the longest jobs start first (by
:attr:`~nsm.data.domain.Domain.cost_per_sample`), so the short ones fill the gaps at the end.

What each worker says (:mod:`nsm.runners.messages`) is kept in ``<run_dir>/train.log``: one line
per epoch, the first batch's shapes, warnings and errors. On a terminal each domain has one live
progress bar (epoch, step, loss, validation accuracy, ETA), and only warnings and errors are
printed above the bars; elsewhere (CI, a pipe) the log lines are printed, prefixed with the domain.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from nsm.config import updated
from nsm.data.domains import get_domain
from nsm.rundir import FAILED_ATTEMPT, TRAIN_LOG, read_failed_attempt, read_results, write_summary
from nsm.runners.messages import parse_line
from nsm.training.progress import ProgressBar


def parallel_plan(num_jobs: int, cores: int | None = None) -> tuple[int, int]:
    """(processes, torch threads per process) that keep ``cores`` busy without oversubscribing."""
    cores = cores or os.cpu_count() or 1
    processes = max(1, min(num_jobs, cores))
    return processes, max(1, cores // processes)


def expected_cost(config: dict[str, Any]) -> float:
    """A job's training work in arbitrary units, to start the longest first (LPT scheduling)."""
    return get_domain(config["domain"]).cost_per_sample * config["data"]["num_samples"] * config["epochs"]


class _Relay(threading.Thread):
    """Routes one worker's lines: progress events to its bar, log lines to its train.log (when the
    run directory takes one) and the console. Keeps the last error line, the worker's last word."""

    def __init__(self, domain: str, stream, log_path: Path, log: Callable[[str], None], bar: ProgressBar | None):
        super().__init__(daemon=True)
        self.domain, self.stream, self.log_path, self.log, self.bar = domain, stream, log_path, log, bar
        self.last_error: str | None = None

    def run(self) -> None:
        try:
            log_file = open(self.log_path, "a")
        except OSError:  # e.g. the run directory is a file: the worker will say so itself
            log_file = None
        with log_file or open(os.devnull, "w") as sink:
            for line in self.stream:
                kind, payload = parse_line(line)
                if kind == "progress":
                    if self.bar is not None:
                        self.bar(payload)
                    continue
                level, text = payload
                sink.write(text + "\n")
                sink.flush()
                if level >= logging.ERROR:
                    self.last_error = text.removeprefix("error: ")
                if self.bar is None or level >= logging.WARNING:
                    self.log(f"[{self.domain}] {text}")


def _file_version(path: Path) -> tuple[int, int] | None:
    """Tells two versions of a file apart: an atomic write always makes a new inode."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _outcome(domain: str, config: dict[str, Any], returncode: int, failure_before: tuple[int, int] | None,
             last_error: str | None) -> dict[str, Any]:
    """What this attempt did: its results, or its failure beside the results an earlier success left.
    ``failure_before`` is the version of failed-attempt.json before the attempt (an older failure's)."""
    run_dir = Path(config["run_dir"])
    results = read_results(run_dir, strict=False)  # never fails over the job's files
    if returncode == 0 and results is not None and results.get("status") == "success":
        return results
    failure = read_failed_attempt(run_dir, strict=False)
    if not (failure is not None and _file_version(run_dir / FAILED_ATTEMPT) != failure_before):
        # No record of its own: it was refused (e.g. the directory was busy) or died (killed, out of memory).
        failure = {"domain": domain, "status": "failed", "config": config,
                   "error": last_error or f"worker exited with code {returncode} without writing {FAILED_ATTEMPT}"}
    return dict(failure, finished_run=results) if results is not None else failure


def run_domains(configs: dict[str, dict[str, Any]], root: Path, max_processes: int | None = None,
                log: Callable[[str], None] | None = None, progress: bool | None = None) -> dict[str, Any]:
    """Run every config (keyed by domain), write ``root/summary.json`` and return the summary.

    ``progress`` draws a bar per domain on stdout (default: when stdout is a terminal); ``log``
    receives the console lines (default: printed, above the bars).
    Never raises for a job: a failed domain is a ``status: failed`` entry with its error.
    """
    if progress is None:
        progress = sys.stdout.isatty()
    if log is None:
        log = (lambda line: tqdm.write(line, file=sys.stdout)) if progress else print
    width = max(len(domain) for domain in configs)
    bars = {domain: ProgressBar(f"{domain:<{width}}", position=i, file=sys.stdout)
            for i, domain in enumerate(configs)} if progress else {}
    processes, threads = parallel_plan(len(configs))
    if max_processes:
        processes = min(processes, max_processes)
    pending = sorted(configs.items(), key=lambda item: -expected_cost(item[1]))
    log(f"running {', '.join(domain for domain, _ in pending)} (longest first) in {processes} process(es) "
        f"at a time, {threads} torch thread(s) each")
    running: dict[str, tuple[subprocess.Popen, _Relay, dict[str, Any], tuple[int, int] | None]] = {}
    summary: dict[str, Any] = {}
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        while pending or running:
            while pending and len(running) < processes:
                domain, config = pending.pop(0)
                config = updated(config, num_threads=threads)
                run_dir = Path(config["run_dir"])
                try:  # for train.log; the worker reports a directory it cannot use, as its failure
                    run_dir.mkdir(parents=True, exist_ok=True)
                except OSError:
                    pass
                failure_before = _file_version(run_dir / FAILED_ATTEMPT)
                process = subprocess.Popen(
                    [sys.executable, "-m", "nsm.runners.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, text=True, env=env,
                )
                process.stdin.write(json.dumps(config))
                process.stdin.close()
                relay = _Relay(domain, process.stdout, run_dir / TRAIN_LOG, log, bars.get(domain))
                relay.start()
                running[domain] = (process, relay, config, failure_before)
            for domain, (process, relay, config, failure_before) in list(running.items()):
                if process.poll() is None:
                    continue
                relay.join()
                if domain in bars:
                    bars[domain].finish()
                del running[domain]
                summary[domain] = _outcome(domain, config, process.returncode, failure_before, relay.last_error)
                status = summary[domain]["status"]
                log(f"{domain}: {status}" + (f" — {summary[domain]['error']}" if status == "failed" else ""))
            time.sleep(0.2)
    finally:  # interrupted (Ctrl-C) or failing here: no worker may outlive this process
        for process, *_ in running.values():
            process.kill()
            process.wait()
    for bar in bars.values():  # all at the end, in order: tqdm redraws open bars below each printed line
        bar.close()
    ordered = {domain: summary[domain] for domain in configs}
    write_summary(root, ordered)
    return ordered
