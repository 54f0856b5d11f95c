"""A run's directory, copied down from the checkpoint volume: ``nsm cloud download RUN [--to DIR]``.

Everything under ``<volume>/<RUN>/`` (checkpoints, history.json, results.json of each domain or
sweep point) lands under ``DIR/<RUN>/``, each file written atomically, so ``nsm eval --run-dir
DIR/<RUN>/<domain>`` works on it as on a local run.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from tqdm.auto import tqdm

from nsm.atomic import atomic_write
from nsm.errors import NSMError


def copy_run(volume: Any, run: str, dest: str | Path) -> list[Path]:
    """Copy ``run`` from ``volume`` (a ``modal.Volume``: ``listdir`` and ``read_file``) into ``dest``;
    return the local paths written.

    Raises:
        NSMError: the run is not on the volume, or names a path outside it.
    """
    from modal.exception import NotFoundError
    from modal.volume import FileEntryType

    source = PurePosixPath(run)
    if source.is_absolute() or ".." in source.parts or not source.parts:
        raise NSMError(f"a run is named by its directory on the volume, like 'dev'; got {run!r}")
    try:
        entries = [entry for entry in volume.listdir(str(source), recursive=True) if entry.type == FileEntryType.FILE]
    except (FileNotFoundError, NotFoundError):
        entries = []
    if not entries:
        raise NSMError(f"run {run!r} is not on the volume (or holds no files); `modal volume ls` lists what is")
    written = []
    with tqdm(total=sum(entry.size for entry in entries), unit="B", unit_scale=True, desc=f"download {run}") as bar:
        for entry in entries:
            relative = PurePosixPath(entry.path.lstrip("/"))  # paths are listed from the volume's root
            if ".." in relative.parts or relative.parts[:len(source.parts)] != source.parts:
                raise NSMError(f"the volume listed {entry.path!r} under run {run!r}; refusing to write it")
            target = Path(dest, *relative.parts)
            with atomic_write(target, "wb") as f:
                for chunk in volume.read_file(entry.path):
                    f.write(chunk)
                    bar.update(len(chunk))
            written.append(target)
    return written
