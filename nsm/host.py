"""Which machine a figure came from: CPU model, cores, torch's CPU kernel set, versions.

Training results differ in their last digits between hosts (and between torch's CPU kernel sets,
``ATEN_CPU_CAPABILITY``), so every ``results.json`` and every benchmark names its host.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from typing import Any

import torch


@cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), with family and model numbers where given."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def describe_host() -> dict[str, Any]:
    """JSON-able facts about this host that change training's floating-point results or its speed."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def format_host(host: dict[str, Any]) -> str:
    """One line: ``AMD EPYC (family 25, model 1), 2 cores, AVX2 kernels, torch 2.13.0``."""
    gpu = f", {host['gpu']}" if host.get("gpu") else ""
    return f"{host['cpu']}, {host['cores']} cores, {host['cpu_capability']} kernels, torch {host['torch']}{gpu}"
