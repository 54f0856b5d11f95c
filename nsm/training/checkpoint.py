"""Checkpoint files that survive a kill at any moment, and the RNG state an exact resume needs.

A checkpoint is a dict saved with ``torch.save`` that ``torch.load(path, weights_only=True)`` can
read back: tensors, numbers, strings, ``None``, lists, tuples and dicts only. The seed's keys keep
their meaning (``epoch`` = last completed epoch, 0-based; ``model_state_dict``;
``optimizer_state_dict``; ``best_val_loss``) so the seed's own resume code reads our files.

Writes are atomic: the state goes to a temporary file in the same directory, is flushed and
``fsync``-ed, then ``os.replace``-d over the target and the directory is ``fsync``-ed. A reader
therefore sees the old file or the new one, never half of one. ``latest.pt`` keeps its predecessor
as ``previous.pt``, the fallback when ``latest.pt`` turns out to be damaged.

``torch.load`` does not verify the data it reads, so each file also carries a ``checksum``: a
BLAKE2b digest of every tensor's bytes and every other value, checked on load.
"""

from __future__ import annotations

import hashlib
import os
import random
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nsm.atomic import UnwritableDirectory, atomic_write, sweep_temp_files
from nsm.errors import NSMError
from nsm.rundir import LATEST, PREVIOUS

FORMAT = "nsm-checkpoint/1"
REQUIRED_KEYS = ("epoch", "model_state_dict")
_PLAIN_TYPES = (str, int, float, bool, type(None), torch.dtype, torch.device)


class CheckpointError(NSMError):
    """A checkpoint file that cannot be used: unreadable, damaged, or not a checkpoint."""


def mismatch(source: str | os.PathLike, exc: Exception) -> CheckpointError:
    """A ``load_state_dict`` failure as one line (torch lists every mismatched key on its own line)."""
    reason = " ".join(str(exc).split())
    return CheckpointError(f"{source} does not fit this model/optimizer: {reason[:500]}")


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike, previous: str | os.PathLike | None = None) -> Path:
    """Write ``state`` (plus its ``checksum``) to ``path`` atomically; return ``path``.

    When ``previous`` is given and ``path`` exists, the old file becomes ``previous`` just before
    the new one takes its place, so at every moment at least one complete checkpoint is on disk.

    Raises:
        TypeError: ``state`` holds a value ``weights_only`` loading could not read back (its key
            path is named), so the mistake shows at the first save rather than at a resume.
        CheckpointError: the directory cannot be written.
    """
    path = Path(path)
    state = dict(state, checksum=state_checksum(state))

    def keep_previous() -> None:
        if previous is not None and path.exists():
            os.replace(path, previous)

    try:
        with atomic_write(path, "wb", before_replace=keep_previous) as f:
            torch.save(state, f)
    except UnwritableDirectory as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` onto the CPU and verify it.

    Raises:
        CheckpointError: the file is missing, truncated, not a torch file, holds other objects
            than plain data, fails its checksum, has another ``format``, or lacks
            ``epoch``/``model_state_dict``.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # torch reports damage as RuntimeError, EOFError, UnpicklingError, ...
        first_sentence = str(exc).strip().split(". ")[0].splitlines()[0] if str(exc).strip() else "empty file"
        reason = f"{type(exc).__name__}: {first_sentence}"
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or damaged?): {reason}") from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise CheckpointError(f"{path} is not a training checkpoint: it lacks {' or '.join(REQUIRED_KEYS)}")
    if state.get("format", FORMAT) != FORMAT:  # no format: a seed checkpoint, read as far as it goes
        raise CheckpointError(f"{path} has format {state['format']!r}; this version reads {FORMAT!r}")
    expected = state.pop("checksum", None)
    if expected is not None and expected != state_checksum(state):
        raise CheckpointError(f"checkpoint {path} is damaged: its content does not match its checksum")
    return state


def load_latest(directory: str | os.PathLike) -> tuple[dict[str, Any], Path] | None:
    """The newest usable checkpoint in ``directory`` and its path; ``None`` if there is none.

    Tries ``latest.pt`` and then ``previous.pt``, warning about a damaged one it skips. Leftover
    temporary files of writes that a kill interrupted are removed (only ours, of dead writers).

    Raises:
        CheckpointError: checkpoint files exist but none of them is usable.
    """
    directory = Path(directory)
    sweep_temp_files(directory)
    failures = []
    for path in (directory / LATEST, directory / PREVIOUS):
        if not path.exists():
            continue
        try:
            state = load_checkpoint(path)
        except CheckpointError as exc:
            failures.append(str(exc))
            continue
        if failures:
            warnings.warn(f"{failures[-1]}; resuming from {path} instead", stacklevel=2)
        return state, path
    if failures:
        raise CheckpointError(
            f"no usable checkpoint in {directory}: {'; '.join(failures)}. "
            "Delete the files to start over."
        )
    return None


def trained_temperature(state: dict[str, Any]) -> float | None:
    """The semiring temperature the checkpoint's weights were trained at (its last epoch's), if any."""
    trained = (state.get("history") or {}).get("train")
    return trained[-1].get("temperature") if trained else None


def state_checksum(state: Any) -> str:
    """BLAKE2b digest of a checkpoint's content (tensor bytes, dtypes, shapes and plain values)."""
    digest = hashlib.blake2b(digest_size=16)
    _update_digest(digest, state, "state")
    return digest.hexdigest()


def _update_digest(digest: "hashlib.blake2b", value: Any, key_path: str) -> None:
    # Exact type checks: subclasses (numpy floats, enums) pickle as classes weights_only refuses.
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif type(value) in (dict, OrderedDict):
        digest.update(b"{")
        for key, item in value.items():
            _update_digest(digest, key, key_path)
            _update_digest(digest, item, f"{key_path}[{key!r}]")
        digest.update(b"}")
    elif type(value) in (list, tuple, torch.Size):
        digest.update(b"[")
        for index, item in enumerate(value):
            _update_digest(digest, item, f"{key_path}[{index}]")
        digest.update(b"]")
    elif type(value) in _PLAIN_TYPES:
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    else:
        raise TypeError(
            f"checkpoint entry {key_path} is a {type(value).__module__}.{type(value).__qualname__}; "
            "only tensors, numbers, strings, None, lists, tuples and dicts can be loaded with weights_only=True"
        )


def capture_rng_state(loader_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random state training draws from, as plain data.

    ``python``: ``random.getstate()`` as ``[version, [625 ints], gauss_next]``; ``numpy``: the
    legacy global MT19937 state with its key as an int64 tensor; ``torch``: the CPU generator;
    ``cuda``: one state per device (empty when CUDA is unused); ``loader``: the training
    ``DataLoader``'s own shuffling generator, if it has one.
    """
    version, mt_state, gauss_next = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": [version, list(mt_state), gauss_next],
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "loader": loader_generator.get_state() if loader_generator is not None else None,
    }


def restore_rng_state(state: dict[str, Any], loader_generator: torch.Generator | None = None) -> None:
    """Put back what :func:`capture_rng_state` took, warning where that is impossible."""
    version, mt_state, gauss_next = state["python"]
    random.setstate((version, tuple(mt_state), gauss_next))
    numpy_state = state["numpy"]
    np.random.set_state({
        "bit_generator": numpy_state["bit_generator"],
        "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
        "has_gauss": numpy_state["has_gauss"],
        "gauss": numpy_state["gauss"],
    })
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(state["cuda"]):
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            warnings.warn("the checkpoint holds CUDA random states this machine cannot take; "
                          "the resumed run will not repeat the original exactly", stacklevel=2)
    if (state["loader"] is None) != (loader_generator is None):
        warnings.warn("the checkpoint and the training DataLoader disagree on having a shuffling generator "
                      "(build the loader with generator=torch.Generator() for an exact resume); "
                      "the data order will differ from the original run", stacklevel=2)
    elif loader_generator is not None:
        loader_generator.set_state(state["loader"])
