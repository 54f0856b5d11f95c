"""Detached cloud runs: launched against the deployed app, recorded, and come back to.

    launch   spawn each job's call on the deployed ``TrainingJob`` (``modal.Cls.from_name``) and
             record it: ``runs/cloud/<run>/cloud-run.json`` here and ``<run>/cloud-run.json`` on the
             volume, with each job's ``FunctionCall`` id, domain, sweep point and configuration
    status   each job's state from its call (``get(timeout=0)``): done, failed with its cause, or
             running, with the last epoch its container committed (``progress.json`` on the volume)
    attach   wait for each call (``FunctionCall.from_id(id).get(timeout=...)``), then write
             ``summary.json``, failed jobs included; a result Modal no longer holds is read from
             the job's ``results.json`` (or ``failed-attempt.json``) on the volume
    cancel   cancel every call that has not finished

A spawned call of a deployed function runs on whether this process lives or not, and Modal keeps
its result; the record is written before anything waits. So a client that dies at any moment
loses nothing: ``attach`` again gives the same summary.
"""

from __future__ import annotations

import io
import json
import time
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import modal
import modal.exception

from nsm.atomic import write_json
from nsm.cloud.outcomes import Log, classify, describe, failed
from nsm.config import CLOUD
from nsm.errors import NSMError
from nsm.rundir import CLOUD_RUN, FAILED_ATTEMPT, PROGRESS, RESULTS, read_json_file, write_summary

CLASS_NAME = "TrainingJob"
Lookup = Callable[[str], Any]  # a call id -> its modal.FunctionCall


def app_name(profile: str) -> str:
    """The deployed app of a profile: one deployment each, since a class's resources are fixed at deploy."""
    return f"{CLOUD.app_name}-{profile}"


def volume_path(run_dir: str, name: str) -> str:
    """``name`` in a job's run directory, as a path on the volume (from its root, not the mount)."""
    return str(PurePosixPath(run_dir).relative_to(CLOUD.volume_mount) / name)


def read_volume_json(volume: Any, path: str) -> Any:
    """A JSON file on the volume; ``None`` if it is not there (or not JSON)."""
    try:
        return json.loads(b"".join(volume.read_file(path)))
    except (FileNotFoundError, modal.exception.NotFoundError, ValueError):
        return None


def launch(run: str, profile: str, configs: dict[str, dict[str, Any]], *, volume: Any, gpu: str | None = None,
           log: Log = print) -> dict[str, Any]:
    """Spawn one call per job on the deployed app; record and return the run."""
    training_job = modal.Cls.from_name(app_name(profile), CLASS_NAME)
    if gpu:  # one type: with_options takes no fallback list
        training_job = training_job.with_options(gpu=gpu)
    record = read_record(run, strict=False) or {"run": run, "jobs": {}}
    record.update(run=run, profile=profile, app=app_name(profile), gpu=gpu,
                  launched_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    spawned = 0
    try:
        for job, config in configs.items():
            call = training_job().run.spawn(config)
            record["jobs"][job] = {"call_id": call.object_id, "domain": config["domain"],
                                   "point": job if job != config["domain"] else None, "config": config}
            spawned += 1
            write_json(record_path(run), record)  # each call, as soon as it exists: a crash here loses none
    except modal.exception.NotFoundError:
        raise NSMError(f"the app {app_name(profile)!r} is not deployed: run `nsm cloud deploy --profile {profile}` "
                       "once (and again after changing the code)") from None
    except modal.exception.AuthError:
        raise NSMError("Modal does not know you yet: run `modal setup` once") from None
    finally:  # whatever was spawned is recorded on the volume too, for another machine
        if spawned:
            write_record(record, volume)
    log(f"launched {spawned} job(s) of run {run} on {app_name(profile)}; they run on without this terminal. "
        f"`nsm cloud status {run}`, `nsm cloud attach {run}`, `nsm cloud cancel {run}`")
    return record


def record_path(run: str) -> Path:
    return Path(CLOUD.local_dir, run, CLOUD_RUN)


def write_record(record: dict[str, Any], volume: Any) -> None:
    """The run's record, here first (atomically), then on the volume for another machine."""
    write_json(record_path(record["run"]), record)
    try:
        with volume.batch_upload(force=True) as batch:
            batch.put_file(io.BytesIO(json.dumps(record, indent=2).encode()), f"{record['run']}/{CLOUD_RUN}")
    except modal.exception.Error as exc:  # the local record suffices to come back from this machine
        print(f"warning: the run record could not be written to the volume ({type(exc).__name__}: {exc}); "
              f"{record_path(record['run'])} holds it")


def read_record(run: str, volume: Any = None, *, strict: bool = True) -> dict[str, Any] | None:
    """The run's record: here, else (with ``volume``) from the volume, as a launch on another machine left it."""
    record = read_json_file(record_path(run))
    if record is None and volume is not None:
        record = read_volume_json(volume, f"{run}/{CLOUD_RUN}")
    if isinstance(record, dict) and isinstance(record.get("jobs"), dict) and all(
            isinstance(job, dict) and "call_id" in job and isinstance(job.get("config"), dict)
            for job in record["jobs"].values()):
        return record
    if strict:
        raise NSMError(f"no record of a launched run {run!r} here ({record_path(run)}) or on the volume; "
                       f"`nsm cloud validate|train|sweep` launches one")
    return None


def _volume_outcome(volume: Any, config: dict[str, Any]) -> dict[str, Any] | None:
    """The job's results (or failed attempt) as its container committed them to the volume."""
    results = read_volume_json(volume, volume_path(config["run_dir"], RESULTS))
    failure = read_volume_json(volume, volume_path(config["run_dir"], FAILED_ATTEMPT))
    return failure if isinstance(failure, dict) else results if isinstance(results, dict) else None


def job_status(job: dict[str, Any], lookup: Lookup, volume: Any) -> str:
    """One job's state in words: done, failed (cause), or running (last committed epoch)."""
    try:
        result = lookup(job["call_id"]).get(timeout=0)
    except modal.exception.OutputExpiredError:
        kept = _volume_outcome(volume, job["config"])
        said = kept.get("status") if kept else "nothing"
        return f"finished; Modal no longer holds its result, the volume says {said}"
    except modal.exception.TimeoutError:  # no result yet
        progress = read_volume_json(volume, volume_path(job["config"]["run_dir"], PROGRESS))
        if isinstance(progress, dict) and "epoch" in progress:
            return (f"running: epoch {progress['epoch'] + 1} of {job['config']['epochs']} committed "
                    f"at {progress.get('committed_at', '?')}")
        return "running: no checkpoint committed yet (waiting for a GPU, or in its first epochs)"
    except (Exception, modal.exception.InputCancellation) as exc:
        return f"failed: {classify(exc)}"
    accuracy = (result.get("test_metrics") or {}).get("accuracy") if isinstance(result, dict) else None
    return "done" + (f", test accuracy {accuracy:.1%}" if accuracy is not None else "")


def status(record: dict[str, Any], lookup: Lookup, volume: Any, log: Log = print) -> dict[str, str]:
    states = {name: job_status(job, lookup, volume) for name, job in record["jobs"].items()}
    log(f"run {record['run']} ({record.get('app')}, launched {record.get('launched_at')}):")
    for name, state in states.items():
        log(f"  {name}: {state}")
    return states


def attach(record: dict[str, Any], lookup: Lookup, volume: Any, wait_s: float,
           log: Log = print) -> dict[str, dict[str, Any]]:
    """Wait (all together at most ``wait_s``) for every job, then write and return ``summary.json``."""
    deadline = time.monotonic() + wait_s
    summary = {}
    for name, job in record["jobs"].items():
        try:
            summary[name] = lookup(job["call_id"]).get(timeout=max(0.0, deadline - time.monotonic()))
        except modal.exception.OutputExpiredError as exc:
            summary[name] = _volume_outcome(volume, job["config"]) or failed(exc)
        except (Exception, modal.exception.InputCancellation) as exc:  # InputCancellation is a BaseException
            summary[name] = failed(exc)
        log(describe(name, summary[name]))
    write_summary(Path(CLOUD.local_dir, record["run"]), summary)
    return summary


def cancel(record: dict[str, Any], lookup: Lookup, log: Log = print) -> list[str]:
    """Cancel every job of the run that has not finished; return their names."""
    cancelled = []
    for name, job in record["jobs"].items():
        call = lookup(job["call_id"])
        try:
            call.get(timeout=0)
            continue  # finished: nothing to cancel
        except modal.exception.OutputExpiredError:
            continue  # finished long ago
        except modal.exception.TimeoutError:
            pass  # still running (or waiting for a retry)
        except (Exception, modal.exception.InputCancellation):
            continue  # failed or cancelled already
        call.cancel()
        cancelled.append(name)
        log(f"{name}: cancelled")
    if not cancelled:
        log(f"run {record['run']}: nothing left running")
    return cancelled
