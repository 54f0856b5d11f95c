"""One training job, the same wherever it runs: ``run_job(config) -> results``.

The CLI calls it in-process (``nsm train``) or in worker processes (``nsm validate``); the Modal app
calls it inside a GPU container. It reads a run configuration from :mod:`nsm.config`, trains with
:class:`~nsm.training.trainer.NSMTrainer` (resuming from ``run_dir/latest.pt`` when asked), evaluates
the best checkpoint on the held-out test split (:mod:`nsm.evaluation`; a ``--kg-dir`` run also ranks
its test queries; with ``ood`` set, also on the out-of-distribution split) and writes, in ``run_dir`` (see :mod:`nsm.rundir`)::

    config.json  latest.pt  best.pt  history.json  results.json

A failure writes ``failed-attempt.json`` instead (the error and its traceback), beside its last
checkpoint and the results of any earlier success, which stay. One job at a time holds a run
directory; a second gets a clear error naming the first.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

from nsm.assemble import build_datasets, build_loaders, build_model_for, resolve_device, seed_everything
from nsm.atomic import sweep_temp_files
from nsm.config import KGE_MODELS
from nsm.data.base import OOD_SPLIT, split_sizes
from nsm.data.domains.kg.tsv import read_kg_dir
from nsm.data.domains.triples.dataset import data_vocabulary, feature_width, vocabulary_schema
from nsm.errors import NSMError
from nsm.evaluation.evaluator import evaluate_split, restore_trained
from nsm.evaluation.link_prediction import kg_metrics
from nsm.evaluation.metrics import compute_classification_metrics
from nsm.host import describe_host
from nsm.models import NSMModel
from nsm.models.confidence.temperature import TemperatureScheduler
from nsm.rundir import (
    BEST, best_checkpoint, run_lock, write_config, write_failed_attempt, write_history, write_results,
)
from nsm.training.checkpoint import load_checkpoint, save_checkpoint
from nsm.training.gpu import gpu_summary
from nsm.training.progress import ProgressFn
from nsm.training.trainer import NSMTrainer

CheckpointHook = Callable[[int], None]


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
    # Decoupled weight decay (AdamW): under Adam's L2 form a weight without gradient (one of an
    # always-zero padding feature, a relation absent from the data) was driven by the decay alone,
    # it and its moments into subnormal floats, which CPU arithmetic handles up to 2.3x slower
    # (issue 19). The fused kernel updates all parameters at once: ~1 ms less per step on CPU.
    optimizer = torch.optim.AdamW(parameter_groups(model, config), lr=config["lr"],
                                  weight_decay=config["weight_decay"], fused=device.type in ("cpu", "cuda"))
    return NSMTrainer(
        model=model,
        optimizer=optimizer,
        device=device,
        cycle_loss_weight=config["cycle_loss_weight"],
        saliency_loss_weight=config["saliency_loss_weight"],
        gradient_clip=config["gradient_clip"],
        temp_scheduler=TemperatureScheduler(**config["temperature"]),
        checkpoint_dir=config["run_dir"],
        log_interval=config["log_interval"],
        use_wandb=config["wandb"],
        use_tensorboard=config["tensorboard"],
        lr_scheduler=lr_schedule(optimizer, config["epochs"], config["lr_warmup_epochs"]),
        checkpoint_every=config["checkpoint_every"],
        run_config=config,
        progress=progress,
        select_best_by=config["select_best_by"],
        on_checkpoint=on_checkpoint,
    )


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Subnormal floats flushed to zero (FTZ/DAZ) inside, on CPUs that can; off again after.

    Set on the calling thread, and inherited by the threads it starts later: set before torch's
    thread pool exists (as the CLI's and the cloud's job processes do), it covers every thread of
    the training process; in a process whose pool already runs, the intra-op threads keep their mode.
    """
    flushing = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushing:
            torch.set_flush_denormal(False)


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
        write_config(run_dir, config)  # the config this job was started with (a resume's may differ)
        if config["num_threads"]:  # 0: torch's default
            torch.set_num_threads(config["num_threads"])
        started = time.perf_counter()
        # Where and when: the last digits of training differ between hosts (see nsm.host).
        results: dict[str, Any] = {"domain": config["domain"], "model": config["model"], "config": config,
                                   "host": describe_host(),
                                   "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        try:
            results["config"] = config = sized_to_data(config)
            with flush_denormals():
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
    if config["model"] in KGE_MODELS:
        return train_kge_and_test(config, run_dir)
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
    best = best_checkpoint(run_dir)
    restore_trained(model, load_checkpoint(best), best)
    test_metrics = evaluate_split(config, model, datasets["test"])
    if config.get("kg_dir"):
        test_metrics["link_prediction"] = test_link_prediction(config, model)
    results = {"status": "success", "epochs_run": len(history["train"]), "best_val_loss": trainer.best_val_loss,
               "dataset_sizes": {split: len(ds) for split, ds in datasets.items()}, "test_metrics": test_metrics,
               "gpu": gpu_summary(history["train"], device)}  # gpu: None on the CPU
    if config.get("ood"):  # a run saved before --ood has no such key
        ood = build_datasets(config, (OOD_SPLIT,))[OOD_SPLIT]
        results["dataset_sizes"][OOD_SPLIT] = len(ood)
        results["ood_shift"] = ood.ood_shift
        results["ood_metrics"] = evaluate_split(config, model, ood)
    write_history(run_dir, history)
    return results


def sized_to_data(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with a ``--kg-dir`` run's vocabulary: the files' relation names (``relations``,
    saved with the run) and as many relation weights in the model; a KG embedding's entity names
    too (``entities``: its rows). A triples run's: relations, node types with their levels and
    node features, classes (the label values, in class-id order), and the model sized to them."""
    if config["domain"] == "triples":
        vocabulary, _ = data_vocabulary(config["data_root"], config["data"]["data_path"])
        schema = vocabulary_schema(vocabulary)
        return dict(config, relations=vocabulary["relations"], node_types=vocabulary["node_types"],
                    extra_features=list(schema.extra_features), classes=vocabulary["classes"],
                    model_args=dict(config["model_args"], num_relations=len(schema.relations),
                                    num_classes=len(vocabulary["classes"]),
                                    node_features=max(config["model_args"]["node_features"], feature_width(schema))))
    if config["domain"] != "kg" or not config.get("kg_dir"):
        return config
    files = read_kg_dir(config["kg_dir"])
    sized = dict(config, relations=files.relations,
                 model_args=dict(config["model_args"], num_relations=len(files.relations)))
    if config["model"] in KGE_MODELS:
        sized["entities"] = files.entities
        sized["model_args"]["num_entities"] = len(files.entities)
    return sized


def test_link_prediction(config: dict[str, Any], model: torch.nn.Module) -> dict[str, Any]:
    """The sampled-protocol ranking of test.txt's queries and GraIL's AUC-PR, over the run's own
    graph (:mod:`nsm.evaluation.link_prediction`). As many queries as the binary test split has
    positives, drawn the same way for every model, so runs on one graph rank the same queries."""
    files = read_kg_dir(config["kg_dir"], relations=config["relations"])
    return kg_metrics(config, model, files, max_queries=split_sizes(config["data"]["num_samples"])["test"] // 2)


def train_kge_and_test(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """:func:`train_and_test` for a KG embedding: train on train.txt's triples, save ``best.pt``,
    rank the test queries (no resume: the whole run takes seconds to minutes)."""
    from nsm.training.kge import train_kge

    device = resolve_device(config["device"])
    files = read_kg_dir(config["kg_dir"], relations=config["relations"])
    relation_ids = {name: i for i, name in enumerate(files.relations)}
    triples = torch.tensor([(h, relation_ids[r], t) for h, r, t in files.triples["train"]], dtype=torch.long)
    model = train_kge(config["model"], triples, len(files.entities), len(files.relations), epochs=config["epochs"],
                      batch_size=config["batch_size"], lr=config["lr"],
                      hidden_channels=config["model_args"]["hidden_channels"], seed=config["seed"], device=device,
                      progress=sys.stderr.isatty())
    save_checkpoint({"model_state_dict": model.state_dict(), "run_config": config, "epoch": config["epochs"] - 1},
                    run_dir / BEST)
    return {"status": "success", "epochs_run": config["epochs"], "dataset_sizes": {"train": len(triples)},
            "test_metrics": {"link_prediction": test_link_prediction(config, model)}}

