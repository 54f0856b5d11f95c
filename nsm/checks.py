"""Checks of the values a user gives (sizes, seeds, counts), shared by the config, the datasets
and the CLI so that each bad value gets the same one-line message wherever it is given."""

from __future__ import annotations

from typing import Any

from nsm.errors import NSMError

# np.random.seed (nsm.assemble.seed_everything) takes no larger seed.
MAX_SEED = 2**32 - 1


def check_integer(name: str, value: Any, least: int, most: int | None = None) -> int:
    """``value`` if it is an integer (not a bool) from ``least`` to ``most``; else NSMError naming ``name``."""
    if isinstance(value, int) and not isinstance(value, bool) and least <= value and (most is None or value <= most):
        return value
    if most is not None:
        kind = f"an integer from {least} to {most}"
    else:
        kind = "a positive integer" if least > 0 else "a non-negative integer"
    raise NSMError(f"{name} must be {kind}, got {value!r}")


def require_positive(**sizes: int) -> None:
    """Each of ``sizes`` (``num_samples=1000``, ...) must be a positive integer."""
    for name, value in sizes.items():
        check_integer(name, value, 1)
