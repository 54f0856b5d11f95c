"""Atomic file writes: a reader (or a crash) never sees half a file."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, IO

# Temporary files are ``.<name>.<random>.tmp`` beside their target (checkpoint.load_latest sweeps them).
TEMP_SUFFIX = ".tmp"


class UnwritableDirectory(OSError):
    """The file could not even be started: its directory cannot be created or written."""


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w",
                 before_replace: Callable[[], None] | None = None) -> Iterator[IO]:
    """Yield a temporary file beside ``path``; when the block succeeds, make it ``path``.

    The bytes are fsynced, ``before_replace`` runs (e.g. to keep the old file under another
    name), the temporary file is renamed over ``path`` and the directory fsynced so the rename
    itself survives a power cut. On any error the temporary file is removed and ``path`` is
    untouched; :class:`UnwritableDirectory` says the write could not start at all.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise UnwritableDirectory(exc.errno, exc.strerror or str(exc), str(path.parent)) from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


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
