"""Confidence calculus: the semiring that combines triple confidences and its temperature."""

from nsm.models.confidence.semiring import otimes, soft_oplus
from nsm.models.confidence.temperature import TemperatureScheduler

__all__ = ["otimes", "soft_oplus", "TemperatureScheduler"]
