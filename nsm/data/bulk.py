"""Building many small objects at once (a dataset's samples, triples and graphs).

CPython's cyclic collector runs every few hundred allocations and, as the objects pile up,
walks all of them again: loading 100,000 samples of your own spent 13 of its 46 s there
(``benchmarks/own_data.py``, issue 20). Nothing a load builds is garbage until it is done, so
the collector waits until then; reference counting still frees what is dropped on the way.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector inside the block (nested blocks: the outermost resumes it)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
