"""Each cloud job's run configuration: the local one (:func:`nsm.config.make_run_config`), placed.

    run_dir      <volume>/<run>/<domain>, or <volume>/<run>/<domain>/<point> in a sweep: one
                 directory per run name and domain, where a retried attempt (or a rerun of the same
                 command) finds the checkpoints committed before it and resumes from them
    data_root    ``data_cache``, relative: in the container its own disk (a dataset is generated in
                 seconds and cached); for a downloaded run, the local cache, so ``nsm eval`` works on it
    num_workers  DataLoader worker processes for the reserved CPU cores, or 0 for a small dataset
    num_threads  the training process's torch threads (a container sees all of its host's cores)

All of them are settings of the run configuration, checked like any other (nsm.config.updated).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any

from nsm.config import CLOUD, make_run_config, updated
from nsm.errors import NSMError

# What a sweep can vary, with how to read one value of it.
SWEEPABLE = {"seed": int, "lr": float, "batch_size": int}


def default_run_name(profile: str, sweep_domain: str | None = None, now: datetime | None = None) -> str:
    """A new run's name: the profile (and a sweep's domain) and the UTC time to the second, e.g.
    ``dev-20261202-031800``, so that two launches never train in the same volume directories.
    Continuing a run takes its name (``--run``)."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    return f"{profile}-sweep-{sweep_domain}-{stamp}" if sweep_domain else f"{profile}-{stamp}"


# Settings that do not change what a job trains: where it runs, and how its data is loaded.
PLACEMENT = ("run_dir", "data_root", "device", "num_workers", "num_threads", "prefetch_factor", "resume")


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The settings (``lr``, ``data.num_samples``, ...) in which two run configurations train differently."""
    def flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        items = {}
        for key, value in config.items():
            if isinstance(value, dict):
                items.update(flat(value, f"{prefix}{key}."))
            elif not (prefix == "" and key in PLACEMENT):
                items[f"{prefix}{key}"] = value
        return items

    old_items, new_items = flat(old), flat(new)
    return sorted(key for key in old_items.keys() | new_items.keys() if old_items.get(key) != new_items.get(key))


def cloud_run_config(domain: str, profile: str, run: str, *, point: dict[str, Any] | None = None,
                     volume_dir: str = CLOUD.volume_mount) -> dict[str, Any]:
    """The configuration of one cloud job: ``domain`` at ``profile`` size, in run ``run``, with a
    sweep ``point``'s settings (e.g. ``{"seed": 1, "lr": 3e-4}``) when given. It always resumes:
    a run name is a run."""
    run_dir = PurePosixPath(volume_dir, run, domain)
    if point:
        run_dir /= point_label(point)
    config = make_run_config(domain, profile, run_dir=str(run_dir), data_root="data_cache", resume=True,
                             **(point or {}))
    # Worker processes pay off once there is enough data to keep them busy; below that the
    # training process assembles batches faster itself (the seed's advice for small datasets).
    workers = CLOUD.loader_workers if config["data"]["num_samples"] >= CLOUD.min_samples_for_workers else 0
    return updated(config, num_workers=workers, num_threads=CLOUD.torch_threads)


def sweep_points(**values: str) -> list[dict[str, Any]]:
    """Every combination of comma-separated values, e.g. ``sweep_points(seed="0,1", lr="1e-3,3e-4")``
    gives four points; an empty string leaves that setting at the profile's value.

    Raises:
        NSMError: an unknown setting, a value that is not a number, or nothing to sweep.
    """
    axes = {}
    for name, text in values.items():
        if name not in SWEEPABLE:
            raise NSMError(f"cannot sweep {name!r}; choose from {', '.join(SWEEPABLE)}")
        if not text:
            continue
        try:
            axes[name] = [SWEEPABLE[name](item) for item in text.split(",")]
        except ValueError:
            raise NSMError(f"--{name.replace('_', '-')} takes comma-separated numbers, got {text!r}") from None
    if not axes:
        raise NSMError(f"nothing to sweep: give comma-separated values for at least one of {', '.join(SWEEPABLE)}")
    return [dict(zip(axes, combination)) for combination in itertools.product(*axes.values())]


def point_label(point: dict[str, Any]) -> str:
    """A sweep point's name, also its directory: ``seed1-lr0.0003``."""
    return "-".join(f"{name}{value:g}" if isinstance(value, float) else f"{name}{value}"
                    for name, value in point.items())
