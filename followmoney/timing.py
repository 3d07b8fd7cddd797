"""Stage and sub-step timing for FOLLOWMONEY_LOG=info: seconds and peak memory, never names or ids."""

from __future__ import annotations

import contextlib
import logging
import resource
import time
from collections.abc import Iterator

LOG = logging.getLogger("followmoney")


def peak_mib() -> float:
    """The process's peak resident memory so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def step(name: str, depth: int = 1) -> Iterator[None]:
    """Log one sub-step's time and the peak memory so far (indented by `depth`)."""
    start = time.perf_counter()
    yield
    LOG.info("%s%s: %.1f s; peak RSS %.0f MiB", "  " * depth, name, time.perf_counter() - start, peak_mib())
