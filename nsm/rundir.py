"""A run directory: its files, their meaning, and the lock that gives it one writer at a time.

::

    latest.pt previous.pt best.pt error.pt  checkpoints (nsm.training.checkpoint)
    history.json         the finished run's per-epoch metrics
    results.json         the finished run: status success, test metrics, config, host
    failed-attempt.json  the last attempt that failed: its error and traceback
    train.log            (nsm validate) what the domain's worker said
    .nsm-lock            held by the process running a job here

``results.json`` only ever holds a success and is replaced only by a later success: an attempt
that fails afterwards (a typo in a re-run, ``--device cuda`` without a GPU, a damaged checkpoint)
writes ``failed-attempt.json`` beside it, and the next success removes that.
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
from typing import Any, Iterator

from nsm.atomic import write_json
from nsm.errors import NSMError

RESULTS = "results.json"
FAILED_ATTEMPT = "failed-attempt.json"
HISTORY = "history.json"
TRAIN_LOG = "train.log"
LOCK = ".nsm-lock"


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


def read_json_file(path: Path) -> Any:
    """A JSON file's content; ``None`` when it is missing or unreadable (a crash never leaves half
    a file, but a person may)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
