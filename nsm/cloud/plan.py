"""What a cloud run will take and cost, before it is launched; read from nsm/config.py alone.

Per job (one domain, or one sweep point):

    expected    one attempt of the profile's expected runtime, on its first-choice GPU
    worst case  every attempt (1 + retries) runs until its timeout, on the dearest GPU it accepts

A container is billed for its GPU plus the CPU cores and memory it reserves, at the list prices in
nsm/config.py. With ``--keep-warm`` (``nsm cloud deploy --keep-warm``) one container (GPU included)
stays up, busy or idle, for as long as the app stays deployed so. Modal is not contacted.
"""

from __future__ import annotations

from dataclasses import dataclass

from nsm.config import (
    CLOUD, CLOUD_PROFILES, CPU_PRICE_PER_CORE_SECOND, GPU_PRICE_PER_SECOND, MEMORY_PRICE_PER_GIB_SECOND, PROFILES,
    CloudProfile,
)
from nsm.errors import NSMError

HOUR_S = 3600.0


def cloud_profile(name: str) -> CloudProfile:
    if name not in CLOUD_PROFILES:
        raise NSMError(f"profile {name!r} has no cloud settings; choose one of {', '.join(CLOUD_PROFILES)}")
    return CLOUD_PROFILES[name]


def gpu_choices(profile: CloudProfile) -> list[str]:
    """The GPU types a job accepts, in Modal's order of preference."""
    return [profile.gpu] if isinstance(profile.gpu, str) else list(profile.gpu)


def attempts(profile: CloudProfile) -> int:
    return 1 + profile.retries


def container_price_per_hour(gpu: str) -> float:
    """USD per hour of one container: the GPU, the reserved CPU cores and the reserved memory."""
    if gpu not in GPU_PRICE_PER_SECOND:
        raise NSMError(f"no price for GPU {gpu!r} in nsm/config.py GPU_PRICE_PER_SECOND")
    memory_gib = CLOUD.memory_mib / 1024
    per_second = (GPU_PRICE_PER_SECOND[gpu] + CLOUD.cpu * CPU_PRICE_PER_CORE_SECOND
                  + memory_gib * MEMORY_PRICE_PER_GIB_SECOND)
    return per_second * HOUR_S


def result_wait_s(profile: CloudProfile) -> float:
    """How long to wait for one job's result: all its attempts to their timeouts, the delays between
    them, and the time to start a container and get a GPU."""
    return (attempts(profile) * profile.timeout_minutes * 60 + sum(CLOUD.retry_delays_s(profile.retries))
            + CLOUD.startup_minutes * 60)


@dataclass(frozen=True)
class JobPlan:
    job: str
    gpus: list[str]
    timeout_minutes: float
    attempts: int
    expected_gpu_hours: float
    worst_gpu_hours: float
    expected_cost: float
    worst_cost: float


def plan_jobs(profile_name: str, jobs: list[str]) -> list[JobPlan]:
    """One :class:`JobPlan` per job name (all jobs of a run share the profile's settings)."""
    profile = cloud_profile(profile_name)
    gpus = gpu_choices(profile)
    expected_hours = profile.expected_minutes / 60
    worst_hours = attempts(profile) * profile.timeout_minutes / 60
    dearest = max(container_price_per_hour(gpu) for gpu in gpus)
    return [JobPlan(job=job, gpus=gpus, timeout_minutes=profile.timeout_minutes, attempts=attempts(profile),
                    expected_gpu_hours=expected_hours, worst_gpu_hours=worst_hours,
                    expected_cost=expected_hours * container_price_per_hour(gpus[0]),
                    worst_cost=worst_hours * dearest)
            for job in jobs]


def format_plan(profile_name: str, jobs: list[str], keep_warm: bool = False) -> str:
    profile = cloud_profile(profile_name)
    plans = plan_jobs(profile_name, jobs)
    run = PROFILES[profile_name]
    width = max([10, *(len(job) + 2 for job in jobs)])
    lines = [
        f"Modal plan, profile {profile_name} ({run.epochs} epochs per job): {CLOUD.cpu:g} CPU cores and "
        f"{CLOUD.memory_mib / 1024:.1f} GiB reserved per job; timeouts are per attempt, "
        f"{profile.timeout_minutes / profile.expected_minutes:.1f}x the expected runtime",
        f"{'job':<{width}}{'GPU':<17}{'timeout':>9}{'attempts':>10}{'GPU-h exp':>11}{'GPU-h worst':>13}"
        f"{'$ exp':>9}{'$ worst':>9}",
    ]
    lines.append("-" * len(lines[-1]))
    for plan in plans:
        lines.append(f"{plan.job:<{width}}{'|'.join(plan.gpus):<17}{plan.timeout_minutes:>5g} min{plan.attempts:>10}"
                     f"{plan.expected_gpu_hours:>11.2f}{plan.worst_gpu_hours:>13.2f}"
                     f"{plan.expected_cost:>9.2f}{plan.worst_cost:>9.2f}")
    lines.append(f"{'total':<{width}}{'':<17}{'':>9}{'':>10}{sum(p.expected_gpu_hours for p in plans):>11.2f}"
                 f"{sum(p.worst_gpu_hours for p in plans):>13.2f}{sum(p.expected_cost for p in plans):>9.2f}"
                 f"{sum(p.worst_cost for p in plans):>9.2f}")
    prices = ", ".join(f"{gpu} ${GPU_PRICE_PER_SECOND[gpu] * HOUR_S:.2f}/h" for gpu in gpu_choices(profile))
    lines.append(f"prices (nsm/config.py; check modal.com/pricing): {prices}; "
                 f"CPU ${CPU_PRICE_PER_CORE_SECOND * HOUR_S:.4f}/core-h; "
                 f"memory ${MEMORY_PRICE_PER_GIB_SECOND * HOUR_S:.4f}/GiB-h")
    # What --keep-warm (min_containers=1) adds: one container of the first-choice GPU.
    warm = container_price_per_hour(gpu_choices(profile)[0])
    if keep_warm:
        lines.append(f"--keep-warm: ON, one idle container adds ${warm:.2f} per hour while deployed so")
    else:
        lines.append(f"--keep-warm: off (nsm cloud deploy --keep-warm: one idle container would add ${warm:.2f} "
                     "per hour while deployed so)")
    return "\n".join(lines)
