"""How far along a training run is: the trainer's progress events, and the bar that draws them.

:class:`~nsm.training.trainer.NSMTrainer` calls its ``progress(event)`` with plain dicts::

    {"event": "step",  "epoch": e, "epochs": E, "step": s, "steps": S, "loss": mean loss of epoch e so far}
    {"event": "epoch", "epoch": e, "epochs": E, "train_loss": ..., "val_loss": ..., "val_accuracy": ...,
     "time_s": ...}

``e`` counts from 0, ``s`` from 1 (steps done in epoch ``e``); ``S`` is ``None`` for a loader
without a length, and ``val_accuracy`` is absent for a task without accuracy. Step events come at
most every :data:`STEP_EVENT_INTERVAL_S` seconds, and at each epoch's last step. Being plain data,
events cross process boundaries as JSON: ``nsm validate``'s workers send theirs to the parent,
which draws one :class:`ProgressBar` per domain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from tqdm.auto import tqdm

ProgressFn = Callable[[dict[str, Any]], None]
STEP_EVENT_INTERVAL_S = 0.25


class ProgressBar:
    """One tqdm bar over a whole run: training steps done of ``epochs × steps``, with the epoch, the
    epoch's running loss and the last validation accuracy as its postfix, and tqdm's ETA.

    A resumed run's bar starts at the steps already done, so its rate and ETA count only this
    process's work. Callable with a progress event; :meth:`close` when the run ends.
    """

    def __init__(self, desc: str | None = None, position: int | None = None, file: IO[str] | None = None):
        self.desc, self.position, self.file = desc, position, file
        self.bar: tqdm | None = None
        self.steps: int | None = None  # per epoch, as the step events say
        self.val_accuracy: float | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] == "step":
            self.steps = event["steps"]
        per_epoch = self.steps or 1  # without a loader length the bar counts epochs
        if event["event"] == "epoch":
            self.val_accuracy = event.get("val_accuracy", self.val_accuracy)
            done = (event["epoch"] + 1) * per_epoch
        else:
            done = event["epoch"] * per_epoch + (event["step"] if self.steps else 0)
        if self.bar is None:
            first = event["epoch"] * per_epoch
            self.bar = tqdm(total=event["epochs"] * per_epoch, initial=first, desc=self.desc,
                            position=self.position, file=self.file, unit="step" if self.steps else "epoch",
                            dynamic_ncols=True, leave=True)
        postfix = f"epoch {event['epoch'] + 1}/{event['epochs']}"
        loss = event.get("loss", event.get("train_loss"))
        if loss is not None:
            postfix += f", loss {loss:.4f}"
        if self.val_accuracy is not None:
            postfix += f", val acc {self.val_accuracy:.3f}"
        self.bar.set_postfix_str(postfix, refresh=False)
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)
        else:  # an epoch's end after its last step: only the postfix changed (an empty update would lower the rate)
            self.bar.refresh()

    def finish(self) -> None:
        """Freeze the bar as it is now (elapsed time and rate included), for a run that ended while
        other bars go on; :meth:`close` removes it."""
        if self.bar is not None:
            self.bar.bar_format = str(self.bar).replace("{", "{{").replace("}", "}}")
            self.bar.refresh()

    def close(self) -> None:
        """End the bar; a later event (another ``train`` call) starts a new one."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
