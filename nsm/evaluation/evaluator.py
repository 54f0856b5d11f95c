"""Scoring a trained model on a split: loss terms and metrics, without an optimizer or a trainer.

:func:`evaluate` is the one evaluation loop: the trainer's validation pass, the job's test pass
and ``nsm eval`` all run it. :func:`load_run` reads a run directory back (configuration, data,
model at its checkpoint's weights and semiring temperature), for ``nsm eval``, ``nsm explain``
and the benchmarks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nsm.assemble import build_datasets, build_loaders, build_model_for, resolve_device
from nsm.errors import NSMError
from nsm.evaluation.metrics import compute_classification_metrics
from nsm.evaluation.reconstruction import ReconstructionTally
from nsm.faults import fault_point
from nsm.training.batches import batch_node_types, unpack_batch
from nsm.rundir import BEST, LATEST, best_checkpoint
from nsm.training.checkpoint import load_checkpoint, mismatch, trained_temperature

MetricsFn = Callable[[torch.Tensor, torch.Tensor, str], Mapping[str, Any]]
RECON_KEYS = ("recon_error_l1", "recon_error_l2")


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The task term of the objective, a float32 scalar: the mean cross-entropy for ``[B, C >= 2]``
    logits, the mean binary cross-entropy for ``[B, 1]`` (one logit of class 1). Both task types
    (:data:`~nsm.models.inputs.TASK_TYPES`) are classifications and share it."""
    logits = logits.float()
    if logits.size(1) > 1:
        return F.cross_entropy(logits, labels)
    # sum / count, the count a device tensor: the arithmetic of earlier runs, bit for bit (a Python
    # divisor would become a multiplication by its reciprocal on CUDA).
    count = torch.ones_like(logits[:, 0]).sum()
    return F.binary_cross_entropy_with_logits(logits.view(-1), labels.float(), reduction="sum") / count


def positive_scores(logits: torch.Tensor) -> torch.Tensor:
    """``[B]`` log-odds of class 1 from ``[B, 2]`` or ``[B, 1]`` logits: what ranking orders by."""
    logits = logits.float()
    return logits[:, 1] - logits[:, 0] if logits.size(1) == 2 else logits[:, 0]


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: Iterable, device: torch.device, task_type: str = "classification",
             cycle_loss_weight: float = 0.0, *, compute_metrics: MetricsFn | None = compute_classification_metrics,
             autocast: Callable[[], AbstractContextManager] = nullcontext,
             check_logits: Callable[[Any, dict, torch.Tensor], torch.Tensor] | None = None) -> dict[str, Any]:
    """Graph-weighted mean ``total_loss``, ``task_loss``, ``cycle_loss`` over ``loader``, the
    model's mean ``recon_error_l1``/``recon_error_l2`` when it reports them, and
    ``compute_metrics(logits [N, C], labels [N], task_type)`` over the whole split; for a
    hierarchical model also the dropped nodes' reconstruction beside the predictors of
    :mod:`~nsm.evaluation.reconstruction` (``recon_dropped_l<k>``, ``recon_vs_baseline_l<k>``, ...).

    ``check_logits(output, inputs, labels)`` returns a batch's logits after checking them (the
    trainer's shape check); by default ``output['logits']``.
    """
    model.eval()
    loss_sums = torch.zeros(3, device=device)
    recon_sums: dict[str, torch.Tensor] = {}
    dropped = ReconstructionTally()  # WHAT on the dropped nodes, beside predictors that learn nothing
    all_logits, all_labels = [], []
    num_graphs = 0
    for batch in loader:
        inputs, labels = unpack_batch(batch, device)
        with autocast():
            output = model(**inputs)
        logits = (check_logits(output, inputs, labels) if check_logits else output["logits"]).float()
        cycle = output.get("cycle_loss")
        cycle = torch.zeros((), device=logits.device) if cycle is None else cycle.float()
        task = task_loss(logits, labels)
        batch_graphs = labels.size(0)
        loss_sums += torch.stack([task + cycle_loss_weight * cycle, task, cycle]) * batch_graphs
        for key in RECON_KEYS:
            if output.get(key) is not None:
                recon_sums[key] = recon_sums.get(key, 0) + output[key].float() * batch_graphs
        if output.get("reconstruction"):
            dropped.add(output, inputs["edge_index"], batch_node_types(batch, device))
        all_logits.append(logits)
        all_labels.append(labels)
        num_graphs += batch_graphs
        fault_point("eval.batch")
    if num_graphs == 0:
        raise NSMError("the evaluation loader yielded no batches")

    total, task, cycle = (loss_sums / num_graphs).tolist()
    metrics: dict[str, Any] = {"total_loss": total, "task_loss": task, "cycle_loss": cycle}
    metrics.update({key: (value / num_graphs).item() for key, value in recon_sums.items()})
    metrics.update(dropped.metrics())
    if compute_metrics is not None:
        metrics.update(compute_metrics(torch.cat(all_logits).cpu(), torch.cat(all_labels).cpu(), task_type))
    return metrics


def restore_trained(model: torch.nn.Module, state: dict[str, Any], source: Path) -> None:
    """Put a checkpoint's weights into ``model``, and the semiring temperature they were trained at."""
    try:
        model.load_state_dict(state["model_state_dict"])
    except RuntimeError as exc:  # e.g. a checkpoint of an older version of the model
        raise mismatch(source, exc) from None
    temperature = trained_temperature(state)
    if temperature is not None and hasattr(model, "temperature"):
        model.temperature = temperature


def load_trained(run_dir: str | os.PathLike, checkpoint: str = BEST) -> tuple[dict[str, Any], torch.nn.Module]:
    """A run's configuration and its model at ``checkpoint``'s weights (falling back to
    ``latest.pt``), on the best device here."""
    run_dir = Path(run_dir)
    path = best_checkpoint(run_dir, checkpoint)
    if not path.exists():
        raise NSMError(f"{run_dir} holds no checkpoint ({BEST} or {LATEST}); is it a run directory?")
    state = load_checkpoint(path)
    # The run may have been moved (e.g. downloaded from the cloud): it lives where it was found now.
    config = dict(state["run_config"], run_dir=str(run_dir))
    model = build_model_for(config).to(resolve_device("auto"))
    restore_trained(model, state, path)
    return config, model


def load_run(run_dir: str | os.PathLike, split: str = "test", checkpoint: str = BEST,
             data_root: str | None = None) -> tuple[dict[str, Any], Any, torch.nn.Module]:
    """A run's configuration, one split of its data and its model with the checkpoint's weights.

    ``data_root`` replaces the run's own data cache (a run made elsewhere: its data is
    regenerated, deterministically, from the configuration).
    """
    config, model = load_trained(run_dir, checkpoint)
    if data_root is not None:
        config["data_root"] = data_root
    return config, build_datasets(config, (split,))[split], model


def evaluate_split(config: dict[str, Any], model: torch.nn.Module, dataset: Any) -> dict[str, Any]:
    """:func:`evaluate` over ``dataset`` as the run ``config`` batches it."""
    device = next(model.parameters()).device
    loader = build_loaders(config, {"eval": dataset}, device)["eval"]
    return evaluate(model, loader, device, config["model_args"]["task_type"], config["cycle_loss_weight"])


def evaluate_run(run_dir: str | os.PathLike, split: str = "test", checkpoint: str = BEST) -> dict[str, Any]:
    """Re-evaluate a finished (or interrupted) run on one of its splits, from its own checkpoint."""
    config, dataset, model = load_run(run_dir, split, checkpoint)
    return evaluate_split(config, model, dataset)
