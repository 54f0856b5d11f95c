"""What the GPU does during training: TF32 matmuls, and utilisation and peak memory per epoch.

On CUDA the trainer runs each training epoch inside a :class:`GPUMonitor` and adds its
:meth:`~GPUMonitor.metrics` to the epoch's history: ``gpu_util``, the mean percentage of time a
kernel was running (NVML, sampled twice a second by a background thread; needs ``nvidia-ml-py``),
and ``gpu_mem_peak_gib``, the most memory torch's allocator held. :func:`gpu_summary` condenses a
run's epochs for its results and warns when utilisation stays under 80%: the GPU is waiting for
data, so give the DataLoader more workers or a larger prefetch factor. Off CUDA the monitor does
nothing and the history has no GPU keys.
"""

from __future__ import annotations

import logging
import statistics
import threading
from typing import Any

import torch

logger = logging.getLogger(__name__)

LOW_UTILISATION_PCT = 80.0
# Set when NVML first fails: later epochs do not ask (and warn) again.
_utilisation_unavailable = False


def enable_tf32() -> None:
    """TF32 tensor cores for float32 matmuls and convolutions (Ampere and newer GPUs)."""
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    torch.backends.cudnn.conv.fp32_precision = "tf32"


class GPUMonitor:
    """Context manager over one epoch: samples utilisation while it runs, reads peak memory after."""

    def __init__(self, device: torch.device | str, interval_s: float = 0.5):
        self.device = torch.device(device)
        self.enabled = self.device.type == "cuda"
        self.interval_s = interval_s
        self._samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak_bytes: int | None = None

    def __enter__(self) -> GPUMonitor:
        if self.enabled:
            torch.cuda.reset_peak_memory_stats(self.device)
        if self.enabled and not _utilisation_unavailable:
            self._thread = threading.Thread(target=self._sample, name="gpu-monitor", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        if self.enabled:
            self._peak_bytes = torch.cuda.max_memory_allocated(self.device)

    def _sample(self) -> None:
        global _utilisation_unavailable
        while True:
            try:
                self._samples.append(float(torch.cuda.utilization(self.device)))
            except Exception as exc:  # no NVML (nvidia-ml-py missing, driver not readable): memory only
                _utilisation_unavailable = True
                logger.warning("GPU utilisation is not recorded: %s", exc)
                return
            if self._stop.wait(self.interval_s):
                return

    def metrics(self) -> dict[str, float]:
        """``gpu_util`` (mean %, when NVML answered) and ``gpu_mem_peak_gib``; empty off CUDA."""
        metrics = {}
        if self._samples:
            metrics["gpu_util"] = statistics.fmean(self._samples)
        if self._peak_bytes is not None:
            metrics["gpu_mem_peak_gib"] = self._peak_bytes / 2**30
        return metrics


def gpu_summary(epochs: list[dict[str, Any]], device: torch.device) -> dict[str, Any] | None:
    """Peak memory and mean utilisation over a run's training epochs, and the GPU's name; ``None``
    when the epochs hold no GPU metrics (a CPU run). A ``warning`` is added (and logged) when
    utilisation averaged under 80%."""
    peaks = [epoch["gpu_mem_peak_gib"] for epoch in epochs if "gpu_mem_peak_gib" in epoch]
    if not peaks:
        return None
    summary: dict[str, Any] = {"mem_peak_gib": max(peaks)}
    if device.type == "cuda":
        summary["name"] = torch.cuda.get_device_name(device)
    utilisation = [epoch["gpu_util"] for epoch in epochs if "gpu_util" in epoch]
    if utilisation:
        summary["util_mean"] = statistics.fmean(utilisation)
        if summary["util_mean"] < LOW_UTILISATION_PCT:
            summary["warning"] = (f"GPU utilisation averaged {summary['util_mean']:.0f}% (under "
                                  f"{LOW_UTILISATION_PCT:.0f}%): the GPU waits for data; raise num_workers or "
                                  "prefetch_factor, or reserve more CPU")
            logger.warning(summary["warning"])
    return summary
