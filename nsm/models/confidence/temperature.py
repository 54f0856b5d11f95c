"""The temperature schedule of the soft ⊕ (see :mod:`nsm.models.confidence.semiring`).

Training starts with a soft ⊕ (parallel paths averaged) and sharpens it towards the maximum:

    τ(e) = initial_temp                                              for e < warmup_epochs
    τ(e) = max(final_temp, initial_temp · decay_rate^(e − warmup_epochs))   afterwards

where ``e`` counts the calls to :meth:`TemperatureScheduler.step` (one per epoch).
"""

from __future__ import annotations

import math
from typing import Any

from nsm.errors import NSMError


class TemperatureScheduler:
    """Exponential annealing of τ after a warm-up; the trainer copies ``get_temperature()`` to the model."""

    _SETTINGS = ("initial_temp", "final_temp", "decay_rate", "warmup_epochs")

    def __init__(self, initial_temp: float = 1.0, final_temp: float = 0.3, decay_rate: float = 0.9999,
                 warmup_epochs: int = 10):
        for name, value in (("initial_temp", initial_temp), ("final_temp", final_temp)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise NSMError(f"temperature {name} must be a positive number, got {value!r}")
        if final_temp > initial_temp:
            raise NSMError(f"temperature final_temp={final_temp} exceeds initial_temp={initial_temp}; "
                           f"the schedule only anneals downwards")
        if not (isinstance(decay_rate, (int, float)) and 0 < decay_rate <= 1):
            raise NSMError(f"temperature decay_rate must be in (0, 1], got {decay_rate!r}")
        if not isinstance(warmup_epochs, int) or isinstance(warmup_epochs, bool) or warmup_epochs < 0:
            raise NSMError(f"temperature warmup_epochs must be a non-negative integer, got {warmup_epochs!r}")
        self.initial_temp = float(initial_temp)
        self.final_temp = float(final_temp)
        self.decay_rate = float(decay_rate)
        self.warmup_epochs = warmup_epochs
        self.epoch = 0

    def step(self) -> float:
        """Advance one epoch; returns the new temperature."""
        self.epoch += 1
        return self.get_temperature()

    def get_temperature(self) -> float:
        decay_epochs = max(0, self.epoch - self.warmup_epochs)
        return max(self.final_temp, self.initial_temp * self.decay_rate ** decay_epochs)

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (*self._SETTINGS, "epoch")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            restored = TemperatureScheduler(**{name: state[name] for name in self._SETTINGS})
            epoch = state["epoch"]
        except KeyError as missing:
            raise NSMError(f"temperature scheduler state lacks {missing}") from None
        if not isinstance(epoch, int) or epoch < 0:
            raise NSMError(f"temperature scheduler state has epoch {epoch!r}; expected a non-negative integer")
        vars(self).update(vars(restored), epoch=epoch)

    def __repr__(self) -> str:
        return (f"TemperatureScheduler(initial_temp={self.initial_temp}, final_temp={self.final_temp}, "
                f"decay_rate={self.decay_rate}, warmup_epochs={self.warmup_epochs}, epoch={self.epoch})")
