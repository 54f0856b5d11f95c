"""One training job, the same wherever it runs: ``run_job(config) -> results``.

The CLI calls it in-process (``nsm train``) or in worker processes (``nsm validate``); the Modal app
calls it inside a GPU container. It reads a run configuration from :mod:`nsm.config`, trains with
:class:`~nsm.training.trainer.NSMTrainer` (resuming from ``run_dir/latest.pt`` when asked), evaluates
the best checkpoint on the held-out test split and writes, in ``run_dir`` (see :mod:`nsm.rundir`)::

    latest.pt  best.pt  history.json  results.json

A failure writes ``failed-attempt.json`` instead (the error and its traceback), beside its last
checkpoint and the results of any earlier success, which stay. One job at a time holds a run
directory; a second gets a clear error naming the first.
"""

from __future__ import annotations

import os
import random
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR
from torch_geometric.loader import DataLoader

from nsm.atomic import sweep_temp_files, write_json
from nsm.data import load_dataset
from nsm.errors import NSMError
from nsm.host import describe_host
from nsm.models import NSMModel, build_model
from nsm.models.confidence.temperature import TemperatureScheduler
from nsm.rundir import HISTORY, run_lock, write_failed_attempt, write_results
from nsm.training.checkpoint import BEST, LATEST, load_checkpoint, mismatch, trained_temperature
from nsm.training.gpu import gpu_summary
from nsm.training.metrics import compute_classification_metrics
from nsm.training.progress import ProgressFn
from nsm.training.trainer import NSMTrainer

CheckpointHook = Callable[[int], None]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise NSMError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_datasets(config: dict[str, Any], splits: tuple[str, ...] = ("train", "val", "test")) -> dict[str, Any]:
    """The run's datasets (generated once, then served from the data cache)."""
    extra = {"kg_dir": config["kg_dir"]} if config["domain"] == "kg" and config.get("kg_dir") else {}
    return {
        split: load_dataset(config["domain"], config["data_root"], split, seed=config["seed"],
                            node_feature_dim=config["model_args"]["node_features"], **config["data"], **extra)
        for split in splits
    }


def build_loaders(config: dict[str, Any], datasets: dict[str, Any], device: torch.device) -> dict[str, DataLoader]:
    """DataLoaders: train shuffled with its own generator (saved in checkpoints for exact resume)."""
    workers = config["num_workers"]
    common = {"batch_size": config["batch_size"], "num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers > 0:
        common.update(persistent_workers=True, prefetch_factor=config.get("prefetch_factor", 2))
    return {
        split: DataLoader(dataset, shuffle=True, generator=torch.Generator().manual_seed(config["seed"]), **common)
        if split == "train" else DataLoader(dataset, shuffle=False, **common)
        for split, dataset in datasets.items()
    }


def build_model_for(config: dict[str, Any]) -> torch.nn.Module:
    return build_model(config["model"], **config["model_args"])


def parameter_groups(model: torch.nn.Module, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The optimiser's groups: the NSM's reconstruction networks at ``reconstruction_lr_scale``
    times the learning rate (see :class:`nsm.config.Profile`), every other parameter at it."""
    reconstruction = model.reconstruction_parameters() if isinstance(model, NSMModel) else []
    if not reconstruction:
        return [{"params": list(model.parameters())}]
    apart = {id(parameter) for parameter in reconstruction}
    return [{"params": [parameter for parameter in model.parameters() if id(parameter) not in apart]},
            {"params": reconstruction, "lr": config["lr"] * config["reconstruction_lr_scale"]}]


def lr_schedule(optimizer: torch.optim.Optimizer, epochs: int, warmup_epochs: int) -> LRScheduler:
    """Per epoch: ``warmup_epochs`` rising linearly from a tenth of each group's learning rate, then
    cosine decay over the remaining epochs (all of them when the run is no longer than the warm-up)."""
    if not 0 < warmup_epochs < epochs:
        return CosineAnnealingLR(optimizer, T_max=epochs)
    return SequentialLR(optimizer, [LinearLR(optimizer, start_factor=0.1, total_iters=warmup_epochs),
                                    CosineAnnealingLR(optimizer, T_max=epochs - warmup_epochs)],
                        milestones=[warmup_epochs])


def make_trainer(config: dict[str, Any], model: torch.nn.Module, device: torch.device,
                 on_checkpoint: CheckpointHook | None = None, progress: ProgressFn | None = None) -> NSMTrainer:
    """The trainer of ``config``'s run. ``on_checkpoint(epoch)`` runs each time the end of an epoch
    has been written to ``latest.pt`` (the Modal app commits its volume then); ``progress`` gets the
    trainer's progress events (default: a bar when stderr is a terminal)."""
    # The fused kernel updates all parameters at once: ~1 ms less per step than the per-tensor loop on CPU.
    optimizer = torch.optim.Adam(parameter_groups(model, config), lr=config["lr"],
                                 weight_decay=config["weight_decay"], fused=device.type in ("cpu", "cuda"))
    trainer_class = NSMTrainer
    if on_checkpoint is not None:
        class HookedTrainer(NSMTrainer):
            def _on_epoch_end(self, epoch, train_metrics, val_metrics):
                super()._on_epoch_end(epoch, train_metrics, val_metrics)  # checkpoints are on disk by now
                if self.latest_epoch == epoch:
                    on_checkpoint(epoch)

        trainer_class = HookedTrainer
    return trainer_class(
        model=model,
        optimizer=optimizer,
        device=device,
        cycle_loss_weight=config["cycle_loss_weight"],
        gradient_clip=config["gradient_clip"],
        temp_scheduler=TemperatureScheduler(**config["temperature"]),
        checkpoint_dir=config["run_dir"],
        log_interval=config["log_interval"],
        use_wandb=False,
        use_tensorboard=config["tensorboard"],
        lr_scheduler=lr_schedule(optimizer, config["epochs"], config["lr_warmup_epochs"]),
        checkpoint_every=config["checkpoint_every"],
        run_config=config,
        progress=progress,
    )


def run_job(config: dict[str, Any], on_checkpoint: CheckpointHook | None = None,
            progress: ProgressFn | None = None) -> dict[str, Any]:
    """Train one domain as ``config`` says; return (and write) its results. ``on_checkpoint`` and
    ``progress`` as for :func:`make_trainer`."""
    run_dir = Path(config["run_dir"])
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NSMError(f"cannot create run directory {run_dir}: {exc.strerror or exc}") from None
    with run_lock(run_dir):
        sweep_temp_files(run_dir)
        if config.get("num_threads"):
            torch.set_num_threads(config["num_threads"])
        started = time.perf_counter()
        # Where and when: the last digits of training differ between hosts (see nsm.host).
        results: dict[str, Any] = {"domain": config["domain"], "model": config["model"], "config": config,
                                   "host": describe_host(),
                                   "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        try:
            results.update(train_and_test(config, run_dir, on_checkpoint, progress))
        except BaseException as exc:
            results.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(),
                           training_time_s=round(time.perf_counter() - started, 2))
            write_failed_attempt(run_dir, results, exc)
            raise
        results["training_time_s"] = round(time.perf_counter() - started, 2)
        write_results(run_dir, results)
    return results


def train_and_test(config: dict[str, Any], run_dir: Path, on_checkpoint: CheckpointHook | None,
                   progress: ProgressFn | None) -> dict[str, Any]:
    """The body of :func:`run_job`: train (or resume), then evaluate the best checkpoint on the
    test split as it was saved, temperature included, so that a resumed, re-run or interrupted
    run reports exactly what the uninterrupted one did."""
    device = resolve_device(config["device"])
    seed_everything(config["seed"])
    datasets = build_datasets(config)
    loaders = build_loaders(config, datasets, device)
    model = build_model_for(config).to(device)
    trainer = make_trainer(config, model, device, on_checkpoint, progress)
    start_epoch = trainer.resume(run_dir) if config["resume"] else 0
    task_type = config["model_args"]["task_type"]
    history = trainer.train(
        train_loader=loaders["train"], val_loader=loaders["val"], epochs=config["epochs"],
        start_epoch=start_epoch, task_type=task_type, compute_metrics=compute_classification_metrics,
        early_stopping_patience=config["early_stopping_patience"], save_best_only=True,
    )
    best = run_dir / BEST if (run_dir / BEST).exists() else run_dir / LATEST
    restore_trained(model, load_checkpoint(best), best)
    test_metrics = trainer.evaluate(loaders["test"], task_type)
    write_json(run_dir / HISTORY, history)
    return {"status": "success", "epochs_run": len(history["train"]), "best_val_loss": trainer.best_val_loss,
            "dataset_sizes": {split: len(ds) for split, ds in datasets.items()}, "test_metrics": test_metrics,
            "gpu": gpu_summary(history["train"], device)}  # gpu: None on the CPU


def restore_trained(model: torch.nn.Module, state: dict[str, Any], source: Path) -> None:
    """Put a checkpoint's weights into ``model``, and the semiring temperature they were trained at."""
    try:
        model.load_state_dict(state["model_state_dict"])
    except RuntimeError as exc:  # e.g. a checkpoint of an older version of the model
        raise mismatch(source, exc) from None
    temperature = trained_temperature(state)
    if temperature is not None and hasattr(model, "temperature"):
        model.temperature = temperature


def load_run(run_dir: str | os.PathLike, split: str = "test", checkpoint: str = "best.pt",
             data_root: str | None = None) -> tuple[dict[str, Any], Any, torch.nn.Module]:
    """A run's configuration, one split of its data and its model with the checkpoint's weights.

    ``checkpoint`` falls back to ``latest.pt``; ``data_root`` replaces the run's own data cache
    (a run made elsewhere: its data is regenerated, deterministically, from the configuration).
    """
    run_dir = Path(run_dir)
    path = run_dir / checkpoint
    if not path.exists():
        path = run_dir / "latest.pt"
    if not path.exists():
        raise NSMError(f"{run_dir} holds no checkpoint (best.pt or latest.pt); is it a run directory?")
    state = load_checkpoint(path)
    # The run may have been moved (e.g. downloaded from the cloud): it lives where it was found now.
    config = dict(state["run_config"], run_dir=str(run_dir))
    if data_root is not None:
        config["data_root"] = data_root
    model = build_model_for(config).to(resolve_device("auto"))
    restore_trained(model, state, path)
    return config, build_datasets(config, (split,))[split], model


def evaluate_run(run_dir: str | os.PathLike, split: str = "test", checkpoint: str = "best.pt") -> dict[str, Any]:
    """Re-evaluate a finished (or interrupted) run on one of its splits, from its own checkpoint."""
    config, dataset, model = load_run(run_dir, split, checkpoint)
    device = next(model.parameters()).device
    loader = build_loaders(config, {split: dataset}, device)[split]
    trainer = make_trainer(config, model, device)
    return trainer.evaluate(loader, config["model_args"]["task_type"])

