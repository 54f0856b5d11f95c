"""The Modal app: NSM's job function (:func:`nsm.job.run_job`) in GPU containers, and nothing else.

    NSM_CLOUD_PROFILE=dev modal deploy -m nsm.cloud.app          (nsm cloud deploy --profile dev: app nsm-dev)

``nsm cloud validate|train|train-all|sweep`` spawn calls of the deployed ``TrainingJob.run`` and
return (nsm.cloud.runs). The profile (run size from ``PROFILES``, GPU, timeout and retries from
``CLOUD_PROFILES``, nsm/config.py) is read from ``NSM_CLOUD_PROFILE`` (default dev) when this module
is imported, because Modal takes a class's resources from its decorator: one deployed app per
profile. ``NSM_CLOUD_KEEP_WARM=1`` keeps one container up (``min_containers=1``).

The local entry points run the same jobs in an ephemeral app, which ends with the terminal
(``nsm cloud ... --interactive`` uses them under ``modal run -i``, for a live shell):

    modal run -m nsm.cloud.app::validate_all [--run NAME] [--domains planning,causal,kg]
    modal run -m nsm.cloud.app::train_all    [--run NAME] [--domains ...]     (one .map over the domains)
    modal run -m nsm.cloud.app::train        --domain kg [--run NAME]
    modal run -m nsm.cloud.app::sweep        --domain planning --seed 0,1,2 [--lr 1e-3,3e-4] [--batch-size 32,64]

A run name is a run: each job trains in ``/checkpoints/<run>/<domain>`` on the ``nsm-checkpoints``
volume, commits the volume whenever it has written ``latest.pt`` (every ``checkpoint_every`` epochs
and at the end, with ``progress.json`` naming the epoch), on a failure and when its container exits,
and resumes from the newest committed checkpoint. So a retried attempt, in a fresh container,
continues where the last one stopped, and launching the same run again continues it (a new
``--run`` name starts afresh). Each entry point prints the summary table, writes it to
``runs/cloud/<run>/summary.json`` here, and returns it, failed jobs included with their cause.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import modal

from nsm.atomic import write_json
from nsm.cloud.jobs import cloud_run_config, default_run_name, point_label, sweep_points
from nsm.cloud.outcomes import collect, gather
from nsm.cloud.plan import cloud_profile, result_wait_s
from nsm.cloud.runs import app_name
from nsm.config import CLOUD, DEFAULT_PROFILE, DOMAINS, parse_domains
from nsm.rundir import PROGRESS, format_summary, write_summary

PROFILE = os.environ.get("NSM_CLOUD_PROFILE", DEFAULT_PROFILE)
KEEP_WARM = os.environ.get("NSM_CLOUD_KEEP_WARM") == "1"
SETTINGS = cloud_profile(PROFILE)
# Only a path: modal reads the file when it builds the image (locally), never at import, so this
# module imports anywhere, in a container or from a non-editable install, without pyproject.toml.
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# The CUDA build of torch, from PyTorch's wheel index for one CUDA version, never PyPI's default
# (whose CUDA may be newer than the hosts' driver, and then every job fails at resolve_device("cuda")).
# CUDA 12.8 needs a driver >= 570; Modal's GPU hosts run drivers of that branch or newer, and a newer
# driver runs older CUDA. The pin matches pyproject.toml's (tests/test_cloud.py checks), so the
# project's own install afterwards finds it satisfied and keeps this wheel.
TORCH_VERSION = "2.13.0"
TORCH_CUDA = "12.8"
TORCH_INDEX = f"https://download.pytorch.org/whl/cu{TORCH_CUDA.replace('.', '')}"

# The container's Python is this one's: configs, results and exceptions travel between them pickled.
image = (
    modal.Image.debian_slim(python_version=f"{sys.version_info.major}.{sys.version_info.minor}")
    .pip_install(f"torch=={TORCH_VERSION}", index_url=TORCH_INDEX)
    # The build fails, rather than every job, if the index served another CUDA build.
    .run_commands(f"python -c \"import torch; assert torch.version.cuda == '{TORCH_CUDA}', torch.version.cuda\"")
    .pip_install_from_pyproject(str(PYPROJECT), optional_dependencies=["gpu"])  # nvidia-ml-py: GPU utilisation
    .add_local_python_source("nsm")  # /root/nsm: `import nsm` works in the container
)

# The code reaches the container once, through the image (not also as the entry point's package).
# One deployed app per profile (nsm-dev, nsm-production, ...): its class's resources are fixed at deploy.
app = modal.App(app_name(PROFILE), include_source=False)
volume = modal.Volume.from_name(CLOUD.volume, create_if_missing=True)


def commit_volume(reason: str) -> None:
    """Make the files written so far durable: a retry, a rerun or a download sees only committed
    files. A no-op outside a container (``.local()`` runs), where no volume is mounted."""
    if modal.is_local():
        return
    print(f"committing the volume: {reason}", flush=True)
    volume.commit()


def flush_checkpoints() -> None:
    """Whenever a container stops (done, failed, preempted, timed out): commit the volume."""
    commit_volume("container exit")


def reload_volume() -> None:
    """See the files other containers (an earlier attempt) committed; a no-op outside a container."""
    if not modal.is_local():
        volume.reload()


def function_options(profile: str, keep_warm: bool = False) -> dict[str, Any]:
    """What ``@app.cls`` gives Modal for ``profile``'s training jobs (tests/test_cloud.py checks each)."""
    settings = cloud_profile(profile)
    return dict(
        gpu=settings.gpu if isinstance(settings.gpu, str) else list(settings.gpu),  # a list: tried in order
        cpu=CLOUD.cpu,
        memory=CLOUD.memory_mib,
        timeout=int(settings.timeout_minutes * 60),  # per attempt
        # 15 s, 30 s, 60 s, ... capped at the 60 s modal accepts: a fault that lasts gets more time.
        retries=modal.Retries(max_retries=settings.retries, backoff_coefficient=CLOUD.retry_backoff,
                              initial_delay=CLOUD.retry_delay_s, max_delay=CLOUD.retry_max_delay_s),
        volumes={CLOUD.volume_mount: volume},
        enable_memory_snapshot=True,
        # Each attempt in a fresh container: a sticky CUDA error cannot fail the retry too.
        single_use_containers=True,
        min_containers=1 if keep_warm else None,
        # The container imports this module too, and must build the same decorator.
        env={"NSM_CLOUD_PROFILE": profile, "NSM_CLOUD_KEEP_WARM": "1" if keep_warm else "0"},
    )


@app.cls(image=image, **function_options(PROFILE, KEEP_WARM))
class TrainingJob:
    """A GPU container that runs one job (a run configuration from :mod:`nsm.cloud.jobs`, through
    :func:`nsm.job.run_job`) per call of :meth:`run`."""

    @modal.enter(snap=True)
    def import_training_code(self) -> None:
        """The heavy imports (torch, PyG, the models and data generators), once: the memory snapshot
        keeps them for later cold starts. CPU only: touching CUDA here would spoil the snapshot."""
        from nsm.job import run_job

        logging.basicConfig(level=logging.INFO, format="%(message)s")  # the trainer's first-batch shapes, epochs
        self.run_job = run_job

    @modal.enter(snap=False)
    def set_up_device(self) -> None:
        """After a snapshot restore, with the GPU attached: the device (CUDA required in a
        container, where a CPU fallback would be a silent waste). NSMTrainer turns on TF32 itself."""
        import torch

        from nsm.assemble import resolve_device

        self.device = resolve_device("auto" if modal.is_local() else "cuda")
        if self.device.type == "cuda":
            print(f"GPU: {torch.cuda.get_device_name(self.device)}", flush=True)

    @modal.exit()
    def on_exit(self) -> None:
        flush_checkpoints()

    @modal.method()
    def run(self, config: dict[str, Any]) -> dict[str, Any]:
        """Train ``config``'s job, resuming from its newest committed checkpoint; return its results."""
        reload_volume()

        def commit_checkpoint(epoch: int) -> None:  # the trainer has just written latest.pt
            # What `nsm cloud status` reads while the job runs: the epoch this commit makes durable.
            write_json(Path(config["run_dir"], PROGRESS), {
                "epoch": epoch, "committed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
            commit_volume(f"checkpoint after epoch {epoch}")

        try:
            results = self.run_job(dict(config, device=self.device.type), on_checkpoint=commit_checkpoint)
        except BaseException:  # a preemption arrives as KeyboardInterrupt: keep its checkpoints too
            # The trainer has saved error.pt (the state at the failure) and run_job failed-attempt.json.
            commit_volume("after a failure")
            raise
        commit_volume("job done")
        return results


def _domain_configs(run: str, domains: str) -> dict[str, dict[str, Any]]:
    return {domain: cloud_run_config(domain, PROFILE, run) for domain in parse_domains(domains)}


def _spawn_and_collect(run: str, domains: str) -> dict[str, Any]:
    run = run or default_run_name(PROFILE)
    calls = {domain: TrainingJob().run.spawn(config) for domain, config in _domain_configs(run, domains).items()}
    return _finish(run, collect(calls, wait_s=result_wait_s(SETTINGS)))


def _map(run: str, configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    results = TrainingJob().run.map(list(configs.values()), return_exceptions=True)
    return _finish(run, gather(configs, results))


def _finish(run: str, summary: dict[str, Any]) -> dict[str, Any]:
    path = write_summary(Path(CLOUD.local_dir, run), summary)
    print(format_summary(summary))
    print(f"summary: {path}; checkpoints and results: nsm cloud download {run}")
    return summary


@app.local_entrypoint()
def validate_all(run: str = "", domains: str = ",".join(DOMAINS)) -> dict[str, Any]:
    """Every domain at once: one spawned job each, each collected with its own timeout and error
    handling, so the summary (and the return value) keeps every result that came back."""
    return _spawn_and_collect(run, domains)


@app.local_entrypoint()
def train(domain: str = "planning", run: str = "") -> dict[str, Any]:
    """One domain."""
    return _spawn_and_collect(run, domain)


@app.local_entrypoint()
def train_all(run: str = "", domains: str = ",".join(DOMAINS)) -> dict[str, Any]:
    """Every domain through one ``.map``: failed jobs come back as exceptions, in the summary."""
    run = run or default_run_name(PROFILE)
    return _map(run, _domain_configs(run, domains))


@app.local_entrypoint()
def sweep(domain: str = "planning", seed: str = "", lr: str = "", batch_size: str = "",
          run: str = "") -> dict[str, Any]:
    """Every combination of the comma-separated values, one container each through ``.map``: as
    many GPUs at once as there are points. Each point trains in <run>/<domain>/<point>."""
    run = run or default_run_name(PROFILE, sweep_domain=domain)
    points = sweep_points(seed=seed, lr=lr, batch_size=batch_size)
    return _map(run, {point_label(point): cloud_run_config(domain, PROFILE, run, point=point) for point in points})
