"""Deterministic fault injection, for the tests of what survives a crash.

A *fault point* is a named place in the code that a crash must be survivable at: a training step,
an evaluation batch, each step of an atomic file write. With the environment variable

    NSM_FAULT=<point>:<n>[:<action>]

the process meets its fault the ``n``-th time it passes ``<point>``: ``kill`` (the default) sends
itself SIGKILL, as the kernel's OOM killer or a preempted machine would — no handler, no
``finally``, no flush; ``stop`` sends itself SIGSTOP, so that a test can act while the process
is frozen at a known place (e.g. holding its run directory) and then continue or kill it.
Without the variable :func:`fault_point` is a dictionary lookup. :func:`arm` sets the fault of a
process that was started before it was known (a fork of a process that imported NSM already).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "NSM_FAULT"
ACTIONS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}

# Every point, in the order a run meets them (the fault-injection tests draw from this list).
POINTS = (
    "data.before-replace", "data.after-replace",  # each split's cache file
    "train.step",  # after each optimiser step
    "eval.batch",  # after each batch of a validation or test evaluation
    "checkpoint.before-replace", "checkpoint.after-keep-previous", "checkpoint.after-replace",
    "json.before-replace", "json.after-replace",  # config.json, history.json, results.json
)


def _parse(text: str | None) -> tuple[str, int, signal.Signals] | None:
    if not text:
        return None
    point, _, rest = text.partition(":")
    count, _, action = rest.partition(":")
    if point not in POINTS or not count.isdigit() or int(count) < 1 or (action or "kill") not in ACTIONS:
        raise ValueError(f"{ENV}={text!r}: expected <point>:<n>[:kill|stop] with point one of {', '.join(POINTS)}")
    return point, int(count), ACTIONS[action or "kill"]


_fault: tuple[str, int, signal.Signals] | None = None
_passes: Counter[str] = Counter()


def arm(spec: str | None) -> None:
    """Meet the fault ``spec`` (``<point>:<n>[:<action>]``, as in ``NSM_FAULT``), counting passes
    from now; ``None`` disarms."""
    global _fault
    _fault = _parse(spec)
    _passes.clear()


arm(os.environ.get(ENV))


def fault_point(point: str) -> None:
    """Mark a place where a crash must be survivable (see the module docstring)."""
    if _fault is None or _fault[0] != point:
        return
    _passes[point] += 1
    if _passes[point] == _fault[1]:
        os.kill(os.getpid(), _fault[2])
