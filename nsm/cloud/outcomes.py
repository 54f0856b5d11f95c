"""What happened to each cloud job: its results, or the cause of its failure and what to do about it.

A failed job becomes a ``status: failed`` entry whose ``error`` names one of four causes, with the
remedy for it (the seed's "why jobs stop"):

    exception       a Python error in the job: fix the code (traceback in the Modal logs, state in error.pt)
    timeout         an attempt ran past the profile's timeout, or the wait for the result ran out
    out-of-memory   the GPU's memory was exhausted
    preempted       the GPU was reclaimed, the input lost, or the job cancelled

Results are collected one job at a time, each with its own wait and its own ``try``, so one job's
failure never costs another job's results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import modal.exception

from nsm.rundir import ERROR

Log = Callable[[str], None]

REMEDIES = {
    "exception": "fix the bug: the traceback is in the Modal logs (`modal app logs`) and the run directory's "
                 f"{ERROR} holds the training state at the failure; reproduce with `--interactive` (modal run -i)",
    "timeout": "raise the profile's timeout_minutes in nsm/config.py (per attempt, 1.5-2x the expected runtime) "
               "or give each job less work; launch again with the same --run to continue from the last committed "
               "checkpoint (if only the wait for the result ran out, `nsm cloud attach RUN` again)",
    "out-of-memory": "lower batch_size, or give the profile a GPU with more memory (A100-80GB) in nsm/config.py",
    "preempted": "Modal restarts a preempted input by itself (not counted against retries), so this one was "
                 "cancelled or lost for good: launch the same run again (--run with its name), and the job "
                 "continues from its last committed checkpoint",
}


@dataclass(frozen=True)
class Failure:
    cause: str  # a key of REMEDIES
    detail: str  # the exception's type and first line

    @property
    def remedy(self) -> str:
        return REMEDIES[self.cause]

    def __str__(self) -> str:
        return f"{self.cause} ({self.detail}); {self.remedy}"


def classify(exc: BaseException) -> Failure:
    """Why a job failed, from the exception its call raised (or ``.map`` returned)."""
    message = str(exc).strip()
    detail = f"{type(exc).__name__}: {message.splitlines()[0][:200]}" if message else type(exc).__name__
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in message.lower():  # torch.OutOfMemoryError
        return Failure("out-of-memory", detail)
    if isinstance(exc, modal.exception.FunctionTimeoutError):
        return Failure("timeout", detail)
    if isinstance(exc, modal.exception.TimeoutError):  # our wait for the result ran out, not an attempt
        return Failure("timeout", f"no result in time ({detail})")
    if isinstance(exc, (modal.exception.InternalFailure, modal.exception.InputCancellation, KeyboardInterrupt)):
        return Failure("preempted", detail)
    return Failure("exception", detail)


def failed(exc: BaseException) -> dict[str, Any]:
    """A summary entry for a job that raised ``exc``."""
    failure = classify(exc)
    return {"status": "failed", "error": str(failure), "cause": failure.cause, "remedy": failure.remedy}


def describe(name: str, result: dict[str, Any]) -> str:
    if result["status"] != "success":
        return f"{name}: FAILED, {result['error']}"
    accuracy = result["test_metrics"].get("accuracy")
    return f"{name}: ok" + (f", test accuracy {accuracy:.1%}" if accuracy is not None else "")


def collect(calls: Mapping[str, Any], wait_s: float, log: Log = print) -> dict[str, dict[str, Any]]:
    """Each spawned call's result (``call.get(timeout=wait_s)``) or its failure, by name."""
    summary = {}
    for name, call in calls.items():
        try:
            summary[name] = call.get(timeout=wait_s)
        except (Exception, modal.exception.InputCancellation) as exc:  # InputCancellation is a BaseException
            summary[name] = failed(exc)
        log(describe(name, summary[name]))
    return summary


def gather(names: Iterable[str], results: Iterable[Any], log: Log = print) -> dict[str, dict[str, Any]]:
    """``.map(..., return_exceptions=True)``'s results (in input order) or failures, by name."""
    summary = {}
    for name, result in zip(names, results, strict=True):
        summary[name] = failed(result) if isinstance(result, BaseException) else result
        log(describe(name, summary[name]))
    return summary
