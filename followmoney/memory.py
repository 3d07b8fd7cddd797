"""Memory guard: estimate a scan's working set before loading anything, and decide how to run.

The estimate is built from what the files say about themselves (Parquet footers, Arrow IPC batch
headers, a sample of CSV lines) and the columns the scan loads; it is multiplied by a working-set
factor measured on this pipeline (loading, normalising, concatenating, sorting in the detectors).
`plan_memory` returns a decision that `pipeline.run` can route on: run in memory, take the
out-of-core path (when one exists), or stop with advice instead of being killed by the kernel.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from followmoney import schema as S
from followmoney.errors import ConfigError, InputError, ResourceError
from followmoney.read import READ_ERRORS, InputFile, stored_rows

# Peak resident memory of a scan (above the ~0.29 GB the interpreter and libraries take) divided by the
# estimated size of the loaded columns. Measured with every bundled rule and the anomaly model on a
# 1M-row world (tests/test_faults.world_frame): Parquet (1.37 - 0.29) GB / 0.168 GB = 6.4, Arrow IPC
# (1.35 - 0.29) GB / 0.242 GB = 4.4; rounded up. Re-measure when stages change what they hold.
WORKING_SET_FACTOR = 7.0
# The same for `model train` (load, the pair table of every feature, the fit, every pair scored): measured
# (peak - 0.29 GB) / loaded size at 10M rows 4.3 (Arrow) and 3.9 (Parquet), at 1M 6.1 and 4.8, where the
# libraries' own memory weighs more and a short estimate does no harm; rounded up.
TRAIN_WORKING_SET_FACTOR = 5.0
# Share of the available memory a scan may plan to use; the rest is for the OS, page cache, Python.
HEADROOM = 0.8
# Out of core: bytes per input row held for the whole run (txn_id hash; while spilling for the anomaly model,
# a receiver key; per-party feature tables, edges).
GLOBAL_BYTES_PER_ROW = 24
PARTITION_COPIES = 2.5  # copies of a row over all partitions: sender's, receiver's, some phones'
MAX_PARTITIONS = 4096
MAX_CHUNK_ROWS = 4_000_000
# Bytes per row Polars spends on a string beyond its payload (a 16-byte view) and per fixed column.
_STRING_OVERHEAD = 16
_FIXED_WIDTH = 8
_CSV_SAMPLE = 1 << 20
ENV_LIMIT = "FOLLOWMONEY_MAX_MEMORY"  # e.g. "8GiB": plan as if only this much memory were available

Mode = Literal["in_memory", "out_of_core", "stop"]
_SCAN_REMEDY = "scan fewer files at a time (a narrower glob), convert CSV to Parquet, or run on a larger machine"


@dataclass(frozen=True)
class MemoryPlan:
    """How a scan should run given its estimated working set and the memory available."""

    mode: Mode
    rows: int  # estimated rows over all files
    load_bytes: int  # estimated in-memory size of the loaded columns
    working_set_bytes: int  # load_bytes * WORKING_SET_FACTOR
    available_bytes: int  # memory this process may use (MemAvailable, cgroup limit, FOLLOWMONEY_MAX_MEMORY)
    source: str  # where available_bytes came from
    partitions: int = 1  # out_of_core: how many party partitions the transfers are spilled into
    chunk_rows: int = 0  # out_of_core: rows read and normalised at a time in the spill pass

    def advice(self, task: str = "this scan", remedy: str = _SCAN_REMEDY) -> str:
        """One line saying why `task` cannot run in memory and what to do (`remedy`)."""
        return (
            f"{task} needs about {_human(self.working_set_bytes)} of memory "
            f"(~{self.rows:,} rows), more than the {_human(self.available_bytes * HEADROOM)} it may use "
            f"({HEADROOM:.0%} of {_human(self.available_bytes)} available, {self.source}); {remedy}"
        )


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def parse_size(text: str) -> int:
    """'8GiB', '512MB', '2g', '1000000' -> bytes; raises ValueError on anything else."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", text.lower())
    if not m:
        raise ValueError(f"not a size: {text!r}")
    number, prefix, suffix = float(m[1]), m[2], m[3]
    base = 1024 if suffix.startswith("i") or not suffix else 1000
    return int(number * base ** " kmgt".index(prefix or " "))


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> tuple[int, str]:
    """Bytes this process can still use, and where the figure came from (the tightest limit wins)."""
    limits: list[tuple[int, str]] = []
    try:
        meminfo = Path("/proc/meminfo").read_text()
        m = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo, re.M)
        if m:
            limits.append((int(m[1]) * 1024, "MemAvailable"))
    except OSError:
        pass
    # cgroup v2, then v1: a container's limit minus what it already uses.
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and limit < 1 << 60:
            limits.append((max(limit - (usage or 0), 0), "cgroup limit"))
            break
    if not limits and hasattr(os, "sysconf"):
        try:
            pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
            limits.append((pages * size, "free physical memory"))
        except (ValueError, OSError):
            pass
    env = os.environ.get(ENV_LIMIT)
    if env:
        try:
            limits.append((parse_size(env), ENV_LIMIT))
        except ValueError:
            raise ConfigError(f"{ENV_LIMIT}={env!r}: expected a size such as 8GiB or 512MB") from None
    if not limits:
        return 1 << 62, "unknown (no limit found)"
    return min(limits)


def _is_text(info: InputFile, name: str) -> bool:
    return info.fmt == "csv" or info.columns.get(name) == pl.String


def _parquet_payload(info: InputFile, loaded: dict[str, str]) -> tuple[int, int]:
    meta = pq.read_metadata(str(info.path))
    text_sources = {src for name, src in loaded.items() if _is_text(info, name)}
    payload = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for j in range(group.num_columns):
            column = group.column(j)
            if column.path_in_schema in text_sources:
                payload += column.total_uncompressed_size
    return meta.num_rows, payload


def _arrow_payload(info: InputFile, loaded: dict[str, str]) -> tuple[int, int]:
    rows = stored_rows(info)
    with pa.OSFile(str(info.path)) as source:
        n_columns = len(ipc.open_file(source).schema.names)
    # An uncompressed IPC file is about its in-memory size: share it out by the text columns loaded.
    text = sum(_is_text(info, name) for name in loaded)
    return rows, int(info.path.stat().st_size * text / max(n_columns, 1))


def _csv_payload(info: InputFile) -> tuple[int, int]:
    size = info.read_path.stat().st_size
    with open(info.read_path, "rb") as fh:
        sample = fh.read(_CSV_SAMPLE)
    lines = max(sample.count(b"\n"), 1)
    rows = max(int(size / (len(sample) / lines)) - 1, 0) if sample else 0
    return rows, size  # every field is parsed (read.load_columns checks the field count of each row)


def estimate_load(files: Iterable[InputFile], columns: Iterable[str]) -> tuple[int, int]:
    """(rows, bytes) the given contract columns of all files take once loaded, from file metadata only.

    Per row: a 16-byte view per text value, 8 bytes per number or time and for the row index; plus
    the text payload (Parquet: uncompressed column sizes; Arrow: the file's share; CSV: the file).
    """
    wanted = list(columns)
    total_rows = total_bytes = 0
    for info in files:
        loaded = {n: info.source_names[n] for n in wanted if n in info.source_names}
        try:
            if info.fmt == "parquet":
                rows, payload = _parquet_payload(info, loaded)
            elif info.fmt == "arrow":
                rows, payload = _arrow_payload(info, loaded)
            else:
                rows, payload = _csv_payload(info)
        except READ_ERRORS as exc:  # counting rows reads every batch header: corruption shows here first
            raise InputError(
                f"unreadable or corrupt {info.fmt} file ({' '.join(str(exc).split())[:150]})", file=info.label
            ) from None
        if info.fmt == "csv":
            n_text, n_fixed = len(info.columns) + len(info.extra_columns), 0
        else:
            n_text = sum(_is_text(info, name) for name in loaded)
            n_fixed = len(loaded) - n_text
        total_rows += rows
        total_bytes += payload + rows * (_STRING_OVERHEAD * n_text + _FIXED_WIDTH * (n_fixed + 1))
    return total_rows, total_bytes


def plan_memory(
    files: list[InputFile],
    columns: Iterable[str] = S.REQUIRED_TXN_COLUMNS,
    *,
    available: tuple[int, str] | None = None,
    out_of_core_available: bool = False,
    limit: int | None = None,
    factor: float = WORKING_SET_FACTOR,
) -> MemoryPlan:
    """Decide, before loading, whether the scan fits in memory and, if not, into how many partitions to
    spill it; `available` overrides the probe (tests), `limit` (--memory-limit) caps what may be used,
    `factor` is the working set per loaded byte (TRAIN_WORKING_SET_FACTOR for training)."""
    rows, load_bytes = estimate_load(files, columns)
    working = int(load_bytes * factor)
    avail, source = available if available is not None else available_memory()
    if limit is not None and limit < avail:
        avail, source = limit, "--memory-limit"
    budget = avail * HEADROOM
    if working <= budget:
        return MemoryPlan("in_memory", rows, load_bytes, working, avail, source)
    # Out of core: what stays in memory for the whole run (a txn_id hash per row, per-party tables)
    # comes off the budget; the rest holds one partition's working set. A row has up to
    # PARTITION_COPIES copies (its sender's, its receiver's and its phone's partition).
    per_row = load_bytes / max(rows, 1)
    state = rows * GLOBAL_BYTES_PER_ROW
    room = budget - state
    if not out_of_core_available or room <= 0:
        return MemoryPlan("stop", rows, load_bytes, working, avail, source)
    partitions = max(2, math.ceil(PARTITION_COPIES * working / room))
    chunk_rows = int(max(10_000, min(MAX_CHUNK_ROWS, room / (per_row * factor))))
    if partitions > MAX_PARTITIONS:
        return MemoryPlan("stop", rows, load_bytes, working, avail, source)
    return MemoryPlan("out_of_core", rows, load_bytes, working, avail, source, partitions, chunk_rows)


def page_cache_room(plan: MemoryPlan, input_bytes: int) -> int:
    """Bytes of memory a scan leaves to the page cache: what the machine has available now, less all the
    memory the scan may use (plan.available_bytes) and its input files (which later passes read again)."""
    machine, _ = available_memory()
    return max(0, machine - plan.available_bytes - input_bytes)


def enforce(plan: MemoryPlan) -> None:
    """Raise a ResourceError with advice when the plan says the scan cannot run."""
    if plan.mode == "stop":
        raise ResourceError(plan.advice())
