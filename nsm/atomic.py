"""Atomic file writes: a reader (or a crash) never sees half a file."""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, IO

from nsm.faults import fault_point

# A temporary file is ``.nsm-tmp.<writer's pid>.<name>.<random>`` beside its target: the prefix and
# the pid let a sweep remove exactly the leftovers of writers that are gone (sweep_temp_files).
TEMP_PREFIX = ".nsm-tmp."
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)\.")
# The process's umask, read once (reading it means setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class UnwritableDirectory(OSError):
    """The file could not even be started: its directory cannot be created or written."""


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w",
                 before_replace: Callable[[], None] | None = None) -> Iterator[IO]:
    """Yield a temporary file beside ``path``; when the block succeeds, make it ``path``.

    The bytes are fsynced, ``before_replace`` runs (e.g. to keep the old file under another
    name), the temporary file is renamed over ``path`` and the directory fsynced so the rename
    itself survives a power cut. On any error the temporary file is removed and ``path`` is
    untouched; :class:`UnwritableDirectory` says the write could not start at all. Each step is a
    fault point (:mod:`nsm.faults`) named by the file's kind: ``checkpoint.before-replace``, ...
    """
    path = Path(path)
    kind = _kind(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{os.getpid()}.{path.name}.")
        # mkstemp makes the file private (0600); the file replacing ``path`` gets a plain open()'s mode.
        os.fchmod(fd, 0o666 & ~_UMASK)
    except OSError as exc:
        raise UnwritableDirectory(exc.errno, exc.strerror or str(exc), str(path.parent)) from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        fault_point(f"{kind}.before-replace")
        if before_replace is not None:
            before_replace()
            fault_point(f"{kind}.after-keep-previous")
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    fault_point(f"{kind}.after-replace")
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def sweep_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporary files in ``directory`` that :func:`atomic_write` left behind when its
    process was killed; return them. A file of a live writer, or not named by us, is not touched."""
    removed = []
    for candidate in Path(directory).glob(f"{TEMP_PREFIX}*"):
        match = _TEMP_NAME.match(candidate.name)
        if match and not _process_alive(int(match.group(1))):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _kind(path: Path) -> str:
    """What a write is, for its fault points: checkpoint, data (cache) or json."""
    if path.name.endswith((".json.gz", ".graphs.pt")):
        return "data"
    return "checkpoint" if path.suffix == ".pt" else "json"


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` as JSON atomically. Tensors and numpy values become lists and numbers."""
    with atomic_write(path) as f:
        json.dump(payload, f, indent=2, default=_jsonable)


def _jsonable(value: Any) -> Any:
    # Duck-typed so that writing a summary (e.g. in the Modal entrypoint) does not import torch.
    if hasattr(value, "tolist"):  # torch.Tensor, numpy arrays and scalars
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
