"""This process's resident memory, read from /proc/self/status (Linux; None elsewhere), and a sampler that
records how far it rises while a block of work runs.

The memory plan sizes work from estimates made before anything is read; this measures what a step really
held, so the steps after it can be sized from the measurement (the party directory's passes). Peak RSS as
the kernel keeps it (ru_maxrss) cannot be reset without side effects, so one block's rise is sampled.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType

_STATUS = "/proc/self/status"


@dataclass(frozen=True)
class Resident:
    """Resident bytes: `anon` (the heap, what the process holds) and `file` (mapped file pages, e.g. an input
    being read, which the kernel may drop)."""

    anon: int
    file: int

    @property
    def total(self) -> int:
        """All resident bytes, what a peak-RSS figure counts."""
        return self.anon + self.file


def resident() -> Resident | None:
    """The process's resident memory now, or None where /proc/self/status has no RssAnon/RssFile."""
    try:
        with open(_STATUS, encoding="ascii") as status:
            text = status.read()
    except OSError:
        return None
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            found[key] = int(value.split()[0]) * 1024  # kB
    if len(found) != 2:
        return None
    return Resident(anon=found["RssAnon"], file=found["RssFile"])


class PeakSampler:
    """`with PeakSampler() as peak:` samples resident memory every `interval` seconds on a background thread
    while the block runs; afterwards `anon_rise` / `total_rise` are the largest rise of anonymous / total bytes
    above the lowest seen before it (None where memory cannot be read). A rise, not the peak less the memory at
    entry: memory the allocator was still giving back when the block began (a previous step's) would hide the
    block's own. Work that releases the GIL (Polars queries) runs alongside; a spike shorter than `interval`
    can be missed."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.anon_rise: int | None = None
        self.total_rise: int | None = None
        self._low_anon = 0
        self._low_total = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def observe(self, now: Resident | None) -> None:
        """Take one sample (the thread's; tests give their own)."""
        if now is None:
            return
        if self.anon_rise is None or self.total_rise is None:
            self._low_anon, self._low_total, self.anon_rise, self.total_rise = now.anon, now.total, 0, 0
            return
        self._low_anon = min(self._low_anon, now.anon)
        self._low_total = min(self._low_total, now.total)
        self.anon_rise = max(self.anon_rise, now.anon - self._low_anon)
        self.total_rise = max(self.total_rise, now.total - self._low_total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.observe(resident())

    def __enter__(self) -> PeakSampler:
        first = resident()
        self.observe(first)
        if first is not None:
            self._thread = threading.Thread(target=self._run, name="followmoney-rss", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.observe(resident())
