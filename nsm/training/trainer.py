"""The training loop: losses, optimisation, evaluation, early stopping and exact-resume checkpoints.

Per step, for a batch of ``B`` graphs::

    out = model(x, edge_index, edge_type, edge_attr, batch[, head_index, tail_index, query_relation])
    loss = task_loss(out['logits'] [B, C], labels [B]) + cycle_loss_weight · out.get('cycle_loss', 0)
           [+ saliency_loss_weight · saliency_pooling_loss(model, inputs, out)]

with ``task_loss`` the cross-entropy for ``[B, C ≥ 2]`` logits and the binary cross-entropy for
``[B, 1]`` logits (both means over the batch's graphs), and the saliency term
(:mod:`nsm.models.saliency`) only when its weight is above 0 and the model has abstract levels:
it trains WHY to keep the nodes the prediction rests on, at one more backward pass a step.
Gradients are clipped to ``gradient_clip`` (global L2 norm). Per epoch (:meth:`NSMTrainer.train`):
the model's ``temperature`` is set from the temperature scheduler, the training split is run once
(:meth:`NSMTrainer.train_epoch`), the validation split is evaluated, the LR and temperature
schedulers each ``step()`` once, the validation ``select_best_by`` value updates the best epoch
and early stopping's patience, and checkpoints are written (see :mod:`nsm.training.checkpoint`):
``best.pt`` when the epoch is the best so far, ``latest.pt`` (its predecessor kept as
``previous.pt``) every ``checkpoint_every`` epochs, at the last epoch and when early stopping
ends the run.

Exact resume: a run killed at any moment and started again with the same command (model, optimizer
and loaders built the same way, then :meth:`NSMTrainer.resume`, then :meth:`NSMTrainer.train`)
ends with bit-identical weights and metrics on the CPU, apart from wall-clock timings. For that the
training ``DataLoader`` should be built with an explicit ``generator=torch.Generator()``, whose
state the checkpoints carry; without one the shuffling draws from torch's global generator, which
they carry too. Datasets must not draw random numbers in loader worker processes.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nsm.errors import NSMError
from nsm.faults import fault_point
from nsm.models.inputs import TASK_TYPES
from nsm.models.saliency import saliency_pooling_loss
from nsm.training.batches import unpack_batch
from nsm.evaluation.evaluator import MetricsFn, evaluate, task_loss
from nsm.evaluation.metrics import compute_classification_metrics
from nsm.rundir import BEST, ERROR, LATEST, PREVIOUS, TENSORBOARD
from nsm.training.checkpoint import (
    FORMAT, capture_rng_state, load_checkpoint, load_latest, mismatch, restore_rng_state, save_checkpoint,
)
from nsm.training.gpu import GPUMonitor, enable_tf32
from nsm.training.progress import STEP_EVENT_INTERVAL_S, ProgressBar, ProgressFn

logger = logging.getLogger(__name__)


class NSMTrainer:
    """Trains a model whose forward returns ``{'logits': [B, C], 'cycle_loss'?: [], ...}``.

    Args:
        model: the network; its ``num_classes`` (if any) fixes the expected logits width and its
            float attribute ``temperature`` (if any) is set from ``temp_scheduler`` each epoch.
        optimizer: over ``model``'s parameters.
        device: where training runs; on CUDA, TF32 matmuls and autocast (bf16 where supported,
            else fp16 with loss scaling) are on.
        cycle_loss_weight: λ in ``task_loss + λ · cycle_loss``.
        saliency_loss_weight: the weight of the saliency term (0: none).
        gradient_clip: max global gradient norm; ``None`` or 0 disables clipping.
        temp_scheduler: ``get_temperature()`` read at each epoch's start, ``step()`` at its end.
        checkpoint_dir: where ``latest.pt``, ``previous.pt``, ``best.pt`` and ``error.pt`` go;
            ``None`` writes nothing.
        log_interval: steps between progress log lines when there is no ``progress`` (each costs
            one host sync).
        use_wandb: also log each epoch's numbers to Weights & Biases (the optional extra
            ``pip install 'nsm[wandb]'``): project ``$WANDB_PROJECT`` or ``nsm``, the run named
            after ``checkpoint_dir`` and grouped by the run config's domain, the config attached,
            its files under ``checkpoint_dir``. ``WANDB_MODE=offline`` (no account, no network)
            is wandb's own and honoured; ``wandb sync`` uploads such a run later. A resumed run
            continues its W&B run (the id is kept in the checkpoint).
        use_tensorboard: also write each epoch's numbers as TensorBoard scalars, to
            ``checkpoint_dir/tensorboard`` (imported only if asked).
        lr_scheduler: stepped once per epoch, after validation, with ``step()`` and no
            arguments (a ``torch.optim.lr_scheduler`` such as ``StepLR`` or ``SequentialLR``;
            not ``ReduceLROnPlateau``, whose ``step`` needs the metric).
        checkpoint_every: epochs between ``latest.pt`` writes; the final epoch is always written.
        run_config: JSON-able description of the run, stored in every checkpoint.
        progress: where progress events go (:mod:`nsm.training.progress`): ``True`` for one tqdm
            bar over the run, ``False`` for none (log lines every ``log_interval`` steps instead),
            or a callable taking each event; default a bar when stderr is a terminal.
        select_best_by: the validation metric that picks ``best.pt`` and counts early stopping's
            patience: lower is better for a ``*loss``, higher for any other (``auroc``, ...).
        on_checkpoint: called with the epoch each time the end of an epoch has been written to
            ``latest.pt``, after :meth:`_on_epoch_end` (the Modal app commits its volume then).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        device: torch.device | str = "cpu",
        cycle_loss_weight: float = 0.05,
        saliency_loss_weight: float = 0.0,
        gradient_clip: float | None = 1.0,
        temp_scheduler: Any | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        log_interval: int = 10,
        use_wandb: bool = False,
        use_tensorboard: bool = False,
        *,
        lr_scheduler: Any | None = None,
        checkpoint_every: int = 1,
        run_config: Mapping[str, Any] | None = None,
        progress: bool | ProgressFn | None = None,
        select_best_by: str = "total_loss",
        on_checkpoint: Callable[[int], None] | None = None,
    ):
        _require(cycle_loss_weight >= 0, f"cycle_loss_weight must be >= 0, got {cycle_loss_weight}")
        _require(saliency_loss_weight >= 0, f"saliency_loss_weight must be >= 0, got {saliency_loss_weight}")
        _require(gradient_clip is None or gradient_clip >= 0,
                 f"gradient_clip must be >= 0 or None, got {gradient_clip}")
        for name, value in (("log_interval", log_interval), ("checkpoint_every", checkpoint_every)):
            _require(isinstance(value, int) and value > 0, f"{name} must be a positive integer, got {value!r}")
        _require(not isinstance(lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau),
                 "lr_scheduler must step without arguments once per epoch; ReduceLROnPlateau is not supported")
        _require(checkpoint_dir is not None or not use_tensorboard,
                 "use_tensorboard needs checkpoint_dir (the scalars go to checkpoint_dir/tensorboard)")
        _require(checkpoint_dir is not None or not use_wandb, "use_wandb needs checkpoint_dir (it names the run)")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.optimizer = optimizer
        self.cycle_loss_weight = cycle_loss_weight
        self.saliency_loss_weight = saliency_loss_weight
        self.gradient_clip = gradient_clip
        self.temp_scheduler = temp_scheduler
        self.lr_scheduler = lr_scheduler
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        if self.checkpoint_dir is not None:
            try:  # fail now rather than after the first epoch
                self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise NSMError(f"cannot create checkpoint_dir {self.checkpoint_dir}: {exc.strerror or exc}") from None
        self.checkpoint_every = checkpoint_every
        self.log_interval = log_interval
        self.run_config = dict(run_config) if run_config is not None else None
        if progress is None:
            progress = sys.stderr.isatty()
        if isinstance(progress, bool):
            progress = ProgressBar() if progress else None
        self.progress: ProgressFn | None = progress
        self.on_checkpoint = on_checkpoint
        self.num_classes: int | None = getattr(model, "num_classes", None)

        self.use_amp = self.device.type == "cuda"  # autocast, on CUDA only
        if self.use_amp:
            enable_tf32()
        self.amp_dtype = torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16
        # fp16 needs loss scaling to keep small gradients from flushing to zero; bf16 does not.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)

        self.current_epoch = -1  # the epoch running, or the last one run
        self.epochs: int | None = None  # the epochs of the train() call running, or of the last one
        self.start_epoch = 0  # where the next train() begins unless told otherwise
        self.latest_epoch: int | None = None  # the epoch whose end this run last wrote to latest.pt
        self.global_step = 0
        self.select_best_by = select_best_by
        self.best_val_loss = math.inf  # the validation loss of the best epoch
        self.best_val_score = math.inf if self._lower_is_better else -math.inf  # its select_best_by value
        self.best_epoch = -1
        self.epochs_without_improvement = 0
        self.history: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
        self._pending_rng_state: dict[str, Any] | None = None
        self._shapes_logged = False

        self._tensorboard = None
        if use_tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(log_dir=str(self.checkpoint_dir / TENSORBOARD))
        # The W&B run starts with train(), after a resume has restored the id of the run it continues.
        self.use_wandb = use_wandb
        self.wandb_run_id: str | None = None
        self._wandb = None
        if use_wandb:
            import_wandb()  # a missing package fails here, before any training

    # --- training --------------------------------------------------------------------------------
    def train(
        self,
        train_loader: Iterable,
        val_loader: Iterable,
        epochs: int,
        start_epoch: int | None = None,
        task_type: str = "classification",
        compute_metrics: MetricsFn | None = compute_classification_metrics,
        early_stopping_patience: int | None = None,
        save_best_only: bool = True,
    ) -> dict[str, list[dict[str, Any]]]:
        """Train for epochs ``start_epoch .. epochs - 1``; return the per-epoch history.

        ``start_epoch`` defaults to where :meth:`resume` left off (0 for a fresh trainer).
        Training stops early after ``early_stopping_patience`` epochs without a better validation
        ``select_best_by``. ``best.pt`` is written whenever it improves. ``save_best_only`` is the
        seed's switch; only ``True`` is supported (no file per epoch is kept).

        Returns:
            ``{'train': [...], 'val': [...]}``, one dict per epoch run so far (resumed epochs
            included); see :meth:`train_epoch` and :meth:`evaluate` for their keys.

        Raises:
            FloatingPointError: a non-finite loss, naming the epoch and step; ``error.pt`` holds
                the state just before it (as for any other exception during training).
        """
        _require(save_best_only, "save_best_only=False is not supported: the trainer keeps only best.pt and "
                                 "latest.pt (with previous.pt), not a checkpoint per epoch")
        _require(task_type in TASK_TYPES, f"unknown task_type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")
        _require(isinstance(epochs, int) and epochs > 0, f"epochs must be a positive integer, got {epochs!r}")
        start_epoch = self.start_epoch if start_epoch is None else start_epoch
        self.epochs = epochs
        loader_generator = getattr(train_loader, "generator", None)
        if self._pending_rng_state is not None:
            restore_rng_state(self._pending_rng_state, loader_generator)
            self._pending_rng_state = None
        if self._patience_exhausted(early_stopping_patience):
            logger.info("early stopping had already ended this run after epoch %d", self.current_epoch + 1)
            return self.history
        if self.use_wandb and self._wandb is None:
            self._wandb = start_wandb(self.checkpoint_dir, self.run_config, self.wandb_run_id)
            self.wandb_run_id = self._wandb.id

        try:
            for epoch in range(start_epoch, epochs):
                self.current_epoch = epoch
                with GPUMonitor(self.device) as gpu:  # utilisation and peak memory; nothing off CUDA
                    train_metrics = self.train_epoch(train_loader, epoch, task_type)
                train_metrics.update(gpu.metrics())
                val_metrics = self._validate(val_loader, epoch, task_type, compute_metrics)
                self._step_schedulers()
                improved = self._record(epoch, train_metrics, val_metrics)
                stopping = self._patience_exhausted(early_stopping_patience)
                self._write_checkpoints(epoch, improved, stopping, loader_generator)
                self._on_epoch_end(epoch, train_metrics, val_metrics)
                if self.on_checkpoint is not None and self.latest_epoch == epoch:
                    self.on_checkpoint(epoch)
                if stopping:
                    logger.info("early stopping after epoch %d/%d: no better validation %s for %d epochs "
                                "(best %.4f at epoch %d)", epoch + 1, epochs, self.select_best_by,
                                self.epochs_without_improvement, self.best_val_score, self.best_epoch + 1)
                    break
        except Exception as exc:
            self._save_error_checkpoint(exc, loader_generator)
            raise
        finally:
            if hasattr(self.progress, "close"):
                self.progress.close()
            if self._wandb is not None:
                self._wandb.finish()
                self._wandb = None
        self.start_epoch = self.current_epoch + 1
        return self.history

    def train_epoch(self, loader: Iterable, epoch: int, task_type: str) -> dict[str, Any]:
        """One optimisation pass over ``loader`` as epoch ``epoch`` (both ``task_type`` s train
        alike). Returns graph-weighted mean ``total_loss``, ``task_loss``, ``cycle_loss`` (and
        ``saliency_loss`` with the saliency term, ``grad_norm`` before clipping, when clipping),
        plus ``lr``, ``temperature`` (with a scheduler), ``epoch``, ``time_s`` and ``graphs_per_s``."""
        self.model.train()
        temperature = None
        if self.temp_scheduler is not None:
            temperature = float(self.temp_scheduler.get_temperature())
            if hasattr(self.model, "temperature"):
                self.model.temperature = temperature
        lr = self.optimizer.param_groups[0]["lr"]
        # Sums stay on the device: no host sync per step except the finiteness check.
        loss_sums = torch.zeros(4, device=self.device)  # total, task, cycle, saliency; weighted by graphs
        grad_norm_sum = torch.zeros((), device=self.device)
        num_graphs = num_steps = 0
        steps = _length(loader)
        started = last_event = time.perf_counter()
        for step, batch in enumerate(loader):
            inputs, labels = unpack_batch(batch, self.device)
            if self.saliency_loss_weight:
                inputs["x"] = inputs["x"].float().requires_grad_(True)  # for its attribution
            with self._autocast():
                output = self.model(**inputs)
                # Under the same autocast: the scorers it reruns see the level features' dtype.
                saliency_loss = (saliency_pooling_loss(self.model, inputs, output)
                                 if self.saliency_loss_weight and output.get("levels")
                                 else torch.zeros((), device=self.device))
            task_loss, cycle_loss = self._losses(output, inputs, labels)
            loss = task_loss + self.cycle_loss_weight * cycle_loss + self.saliency_loss_weight * saliency_loss
            # One sync per step buys stopping before a NaN/inf reaches the weights.
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss.item()} at epoch {epoch}, step {step} (global step {self.global_step}): "
                    f"task_loss={task_loss.item()}, cycle_loss={cycle_loss.item()}, "
                    f"saliency_loss={saliency_loss.item()}"
                )

            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.gradient_clip:
                self.scaler.unscale_(self.optimizer)
                grad_norm_sum += nn.utils.clip_grad_norm_(self.model.parameters(), self.gradient_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.global_step += 1
            fault_point("train.step")

            batch_graphs = labels.size(0)
            loss_sums += torch.stack([loss, task_loss, cycle_loss, saliency_loss]).detach() * batch_graphs
            num_graphs += batch_graphs
            num_steps += 1
            if self.progress is not None:
                now = time.perf_counter()
                if now - last_event >= STEP_EVENT_INTERVAL_S or num_steps == steps:
                    last_event = now
                    self.progress({"event": "step", "epoch": epoch, "epochs": self.epochs, "step": num_steps,
                                   "steps": steps, "loss": (loss_sums[0] / num_graphs).item()})
            elif num_steps % self.log_interval == 0:
                logger.info("epoch %d/%s step %d: loss %.4f", epoch + 1, self.epochs, num_steps,
                            (loss_sums[0] / num_graphs).item())
        _require(num_steps > 0, "the training loader yielded no batches")

        elapsed = time.perf_counter() - started
        total, task, cycle, saliency = (loss_sums / num_graphs).tolist()
        metrics: dict[str, Any] = {"total_loss": total, "task_loss": task, "cycle_loss": cycle}
        if self.saliency_loss_weight:
            metrics["saliency_loss"] = saliency
        if self.gradient_clip:
            metrics["grad_norm"] = (grad_norm_sum / num_steps).item()
        metrics["lr"] = lr
        if temperature is not None:
            metrics["temperature"] = temperature
        metrics.update(epoch=epoch, time_s=elapsed, graphs_per_s=num_graphs / elapsed)
        return metrics

    def _losses(self, output: Any, inputs: dict[str, Any], labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(task_loss, cycle_loss)`` as float32 scalars, after checking the logits' shape."""
        logits = self._checked_logits(output, inputs, labels)
        cycle_loss = output.get("cycle_loss")
        cycle_loss = torch.zeros((), device=logits.device) if cycle_loss is None else cycle_loss.float()
        return task_loss(logits, labels), cycle_loss

    def _checked_logits(self, output: Any, inputs: dict[str, Any], labels: torch.Tensor) -> torch.Tensor:
        if not isinstance(output, Mapping) or "logits" not in output:
            found = f"a dict with keys {', '.join(output)}" if isinstance(output, Mapping) else type(output).__name__
            raise TypeError(f"the model must return a dict with 'logits' [batch, num_classes], got {found}")
        logits = output["logits"]
        if self.num_classes is None and logits.dim() == 2:
            self.num_classes = logits.size(1)
        expected = [labels.size(0), self.num_classes]
        if list(logits.shape) != expected:
            raise ValueError(f"model output logits has shape {list(logits.shape)}, expected [batch, num_classes] "
                             f"= {expected} for a batch with inputs {_shapes(inputs)}")
        if not self._shapes_logged:
            logger.info("first batch: inputs %s, labels %s -> logits %s", _shapes(inputs), list(labels.shape),
                        list(logits.shape))
            self._shapes_logged = True
        return logits

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype) if self.use_amp else nullcontext()

    def evaluate(
        self,
        loader: Iterable,
        task_type: str = "classification",
        compute_metrics: MetricsFn | None = compute_classification_metrics,
    ) -> dict[str, Any]:
        """:func:`nsm.evaluation.evaluate` of the model over ``loader``, with this trainer's device,
        loss weight, autocast and logits check."""
        return evaluate(self.model, loader, self.device, task_type, self.cycle_loss_weight,
                        compute_metrics=compute_metrics, autocast=self._autocast, check_logits=self._checked_logits)

    def _validate(self, loader: Iterable, epoch: int, task_type: str,
                  compute_metrics: MetricsFn | None) -> dict[str, Any]:
        """:meth:`evaluate` after ``epoch``, which must end with a finite loss; ``epoch`` added."""
        metrics = self.evaluate(loader, task_type, compute_metrics)
        if not math.isfinite(metrics["total_loss"]):
            raise FloatingPointError(f"validation loss is {metrics['total_loss']} after epoch {epoch}")
        metrics["epoch"] = epoch
        return metrics

    def _step_schedulers(self) -> None:
        """The end of an epoch for the LR and temperature schedulers: one ``step()`` each."""
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()
        if self.temp_scheduler is not None:
            self.temp_scheduler.step()

    def _record(self, epoch: int, train_metrics: dict[str, Any], val_metrics: dict[str, Any]) -> bool:
        """Add the epoch to the history and update the best epoch and the patience counter from its
        validation ``select_best_by``; return whether it is the best so far."""
        score = val_metrics[self.select_best_by]
        improved = score < self.best_val_score if self._lower_is_better else score > self.best_val_score
        if improved:
            self.best_val_score, self.best_val_loss = score, val_metrics["total_loss"]
            self.best_epoch = epoch
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        self.history["train"].append(train_metrics)
        self.history["val"].append(val_metrics)
        return improved

    @property
    def _lower_is_better(self) -> bool:
        return self.select_best_by.endswith("loss")

    def _patience_exhausted(self, patience: int | None) -> bool:
        return bool(patience) and self.epochs_without_improvement >= patience

    def _write_checkpoints(self, epoch: int, improved: bool, stopping: bool,
                           loader_generator: torch.Generator | None) -> None:
        """``best.pt`` if the epoch ``improved``; ``latest.pt`` every ``checkpoint_every`` epochs, at
        the last epoch and when ``stopping`` early. Nothing without a ``checkpoint_dir``."""
        if self.checkpoint_dir is None:
            return
        state = self.state_dict(epoch, loader_generator)
        if improved:
            save_checkpoint(state, self.checkpoint_dir / BEST)
        if stopping or epoch == self.epochs - 1 or (epoch + 1) % self.checkpoint_every == 0:
            save_checkpoint(state, self.checkpoint_dir / LATEST, previous=self.checkpoint_dir / PREVIOUS)
            self.latest_epoch = epoch

    def _on_epoch_end(self, epoch: int, train_metrics: dict[str, Any], val_metrics: dict[str, Any]) -> None:
        """Called at the end of each epoch, once its checkpoints are on disk (a hook may e.g.
        commit a cloud volume) and with ``best_val_loss`` and the patience counter updated.
        Logs the epoch (counted from 1 there) and sends its progress event; subclasses extend it. A
        hook must not draw random numbers: they would not be replayed after a resume."""
        accuracy = val_metrics.get("accuracy")
        logger.info(
            "epoch %d/%s | train loss %.4f | val loss %.4f%s | lr %.2e | %.1fs", epoch + 1, self.epochs,
            train_metrics["total_loss"], val_metrics["total_loss"],
            f" | val acc {accuracy:.3f}" if accuracy is not None else "", train_metrics["lr"], train_metrics["time_s"],
        )
        if self.progress is not None:
            event = {"event": "epoch", "epoch": epoch, "epochs": self.epochs, "train_loss": train_metrics["total_loss"],
                     "val_loss": val_metrics["total_loss"], "time_s": train_metrics["time_s"]}
            if accuracy is not None:
                event["val_accuracy"] = accuracy
            self.progress(event)
        scalars = {f"{split}/{key}": value for split, metrics in (("train", train_metrics), ("val", val_metrics))
                   for key, value in metrics.items() if isinstance(value, (int, float)) and key != "epoch"}
        if self._tensorboard is not None:
            for name, value in scalars.items():
                self._tensorboard.add_scalar(name, value, epoch)
            self._tensorboard.flush()
        if self._wandb is not None:
            self._wandb.log({**scalars, "epoch": epoch + 1})

    # --- checkpoints -----------------------------------------------------------------------------
    def state_dict(self, epoch: int | None = None, loader_generator: torch.Generator | None = None) -> dict[str, Any]:
        """Everything needed to continue exactly after ``epoch`` (the last completed one; default
        ``current_epoch``), with ``loader_generator`` the training loader's shuffling generator."""
        return {
            "format": FORMAT,
            "epoch": self.current_epoch if epoch is None else epoch,
            "global_step": self.global_step,
            "model_state_dict": self.model.state_dict(),
            "optimizer_state_dict": self.optimizer.state_dict(),
            "lr_scheduler_state_dict": self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None,
            "temp_scheduler_state_dict": self.temp_scheduler.state_dict() if self.temp_scheduler is not None else None,
            "grad_scaler_state_dict": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "best_val_loss": self.best_val_loss,
            "best_val_score": self.best_val_score,
            "best_epoch": self.best_epoch,
            "epochs_without_improvement": self.epochs_without_improvement,
            "history": self.history,
            "rng_state": capture_rng_state(loader_generator),
            "run_config": self.run_config,
            "wandb_run_id": self.wandb_run_id,
        }

    def resume(self, checkpoint: str | os.PathLike | None = None) -> int:
        """Restore the newest checkpoint; return the epoch to start from (0 if there is none).

        ``checkpoint`` is a directory (default: ``checkpoint_dir``), where ``latest.pt`` is used,
        or ``previous.pt`` with a warning when ``latest.pt`` is damaged; or a checkpoint file.
        Model, optimizer, schedulers, counters and history are restored now; the random states
        (including the training loader's generator) when :meth:`train` next starts, so that
        nothing drawn in between shifts them.

        Raises:
            CheckpointError: the checkpoint (or every candidate in the directory) is unusable or
                does not fit this model/optimizer.
        """
        target = Path(checkpoint) if checkpoint is not None else self.checkpoint_dir
        _require(target is not None, "resume() needs a checkpoint path or the trainer's checkpoint_dir")
        if target.suffix == ".pt" or target.is_file():
            state, path = load_checkpoint(target), target
        else:
            found = load_latest(target)
            if found is None:
                logger.info("no checkpoint in %s: starting from the first epoch", target)
                return 0
            state, path = found
        self.load_state_dict(state, source=path)
        logger.info("resumed from %s: %d epoch(s) done", path, self.start_epoch)
        return self.start_epoch

    def load_state_dict(self, state: Mapping[str, Any], source: str | os.PathLike = "checkpoint") -> None:
        """Restore from a :meth:`state_dict` (or a seed-format checkpoint: epoch, model and
        optimizer only, with a warning that the resume cannot be exact)."""
        components = {"lr_scheduler_state_dict": self.lr_scheduler,
                      "temp_scheduler_state_dict": self.temp_scheduler,
                      "grad_scaler_state_dict": self.scaler if self.scaler.is_enabled() else None}
        try:
            self.model.load_state_dict(state["model_state_dict"])
            if "optimizer_state_dict" in state:
                self.optimizer.load_state_dict(state["optimizer_state_dict"])
            for name, component in components.items():
                if component is not None and state.get(name) is not None:
                    component.load_state_dict(state[name])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise mismatch(source, exc) from None

        missing = [key for key in ("global_step", "history", "rng_state", "epochs_without_improvement")
                   if key not in state]
        missing += [name for name, component in components.items() if component is not None and state.get(name) is None]
        unused = [name for name, component in components.items() if component is None and state.get(name) is not None]
        if missing:
            warnings.warn(f"{source} lacks {', '.join(missing)} (a seed-format checkpoint?); "
                          "resuming its weights, but not exactly", stacklevel=3)
        if unused:
            warnings.warn(f"{source} holds {', '.join(unused)}, which this trainer does not use; "
                          "the run will differ from the original", stacklevel=3)
        if self.run_config is not None and state.get("run_config") not in (None, self.run_config):
            changed = sorted(key for key in set(self.run_config) | set(state["run_config"])
                             if self.run_config.get(key) != state["run_config"].get(key))
            warnings.warn(f"{source} was written by a run configured differently (changed: {', '.join(changed)})",
                          stacklevel=3)
        self.current_epoch = int(state["epoch"])
        self.start_epoch = self.current_epoch + 1
        self.global_step = int(state.get("global_step", 0))
        self.best_val_loss = float(state.get("best_val_loss", math.inf))
        # A checkpoint from before select_best_by selected on the validation loss.
        self.best_val_score = float(state.get("best_val_score", self.best_val_loss))
        self.best_epoch = int(state.get("best_epoch", -1))
        self.epochs_without_improvement = int(state.get("epochs_without_improvement", 0))
        self.history = state.get("history", {"train": [], "val": []})
        self._pending_rng_state = state.get("rng_state")
        self.wandb_run_id = state.get("wandb_run_id")

    def _save_error_checkpoint(self, exc: Exception, loader_generator: torch.Generator | None) -> None:
        if self.checkpoint_dir is None:
            return
        try:
            state = self.state_dict(self.current_epoch - 1, loader_generator)
            path = save_checkpoint(dict(state, error=f"{type(exc).__name__}: {exc}",
                                        failed_epoch=self.current_epoch), self.checkpoint_dir / ERROR)
        except Exception as save_exc:  # keep the original error in front
            exc.add_note(f"saving {ERROR} failed too: {save_exc}")
        else:
            exc.add_note(f"the training state at the failure was saved to {path}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise NSMError(message)


def _length(loader: Iterable) -> int | None:
    try:
        return len(loader)  # a DataLoader over an iterable dataset may not know it
    except TypeError:
        return None


def _shapes(inputs: Mapping[str, torch.Tensor | None]) -> str:
    return ", ".join(f"{key} {list(value.shape)}" for key, value in inputs.items() if value is not None)


def import_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise NSMError("use_wandb needs Weights & Biases: pip install 'nsm[wandb]' (or pip install wandb)") from None
    return wandb


def start_wandb(run_dir: Path, run_config: Mapping[str, Any] | None, run_id: str | None = None) -> Any:
    """A Weights & Biases run for the training run in ``run_dir`` (see ``use_wandb``); with
    ``run_id`` (a resumed run's, from its checkpoint) that W&B run continues."""
    config = dict(run_config or {})
    resumed = {"id": run_id, "resume": "allow"} if run_id else {}
    return import_wandb().init(project=os.environ.get("WANDB_PROJECT", "nsm"), name=run_dir.name,
                               group=config.get("domain"), config=config, dir=str(run_dir), **resumed)
