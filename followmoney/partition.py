"""The clean transfers of a scan, whole in memory or partitioned by party into spill files.

Partition-then-detect (for dumps larger than memory): one streaming pass reads every file in slices,
normalises each slice, sets quarantined rows aside, and appends each clean row (as Arrow IPC, one file
per partition kept open across the slices) to the partition of its sender (the row's *primary* copy),
of its receiver, and, when a rule groups by phone, of its sender's phone. A partition therefore holds
every send and every receipt of the parties (and phones) it owns, so a detector run on one partition
finds exactly the candidates about those owners that it would find on the whole input; the pipeline
keeps only those (detectors mark each candidate with its owner, see detectors.base.OWNER_KEY).

Duplicate txn_ids are the one fact that needs every row at once: the pass keeps a 64-bit hash per
row (8 bytes a row), finds the repeated hashes after the pass, and compares only those rows' ids.

A scan that fits in memory is the same thing with one partition and no spill files, so the two
paths share every line that decides an alert.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl

from followmoney import schema as S
from followmoney.config import ScanConfig
from followmoney.detectors.base import OWN_PHONE, OWN_RECEIVER, OWN_SENDER
from followmoney.errors import InputError
from followmoney.kernels import partition_copies
from followmoney.memory import PARTITION_COPIES
from followmoney.normalise import (
    PARTY_KEY_SEED,
    RECEIVER_KEY,
    SENDER_KEY,
    FxTable,
    check_key_collisions,
    has_text,
    mark_duplicates,
    normalise_file,
    party_keys,
)
from followmoney.phones import PHONE_MIX, phone_digits, phone_numbers, phone_owner_key
from followmoney.read import InputFile, load_chunks, load_columns
from followmoney.rowsets import Rows, collect_rows, own_buffers
from followmoney.spillfiles import SpillWriters

PHONE_PART = "_phone_part"  # spilled copies: the partition of the sender's phone (null without one)
PRIMARY = "_primary"  # True on the one copy of a row kept in its sender's partition
ROW_KEY = "_row_key"  # (file index, row) as one integer: names a row across partitions
_SPILL_PREFIX = ".followmoney-spill-"
_FILE_SHIFT = 1 << 40
SPILL_COMPRESSIONS = ("auto", "none", "zstd")
# Spill files one query over every transfer scans at most (rowsets.py): Polars held 32 KB per scanned file of a
# four-column test (40k files in one query: 1.24 GB; in groups of 250: 47 MB), and the 200M scan made 73k when
# each slice wrote its own files (a scan now writes one per partition unless the open-file limit is low: SpillWriters).
SCAN_FILES = 2_000
# "auto" writes spill files uncompressed only when the spill disk has this many times their estimated size
# free (spill_estimate, above what was measured: 10M world, every rule, 16 partitions: 4.03 GB spilled against
# 5.1 GB estimated, or 1.16 GB with zstd).
UNCOMPRESSED_ROOM = 2.0
FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def part_of(key: pl.Expr, n_parts: int) -> pl.Expr:
    """The partition (0..n_parts-1) a 64-bit party (or phone) key belongs to."""
    return (key % n_parts).cast(pl.UInt32)


def row_key() -> pl.Expr:
    """One integer per (source file, row): file index in the high 24 bits."""
    return pl.col(S.SOURCE_FILE).cast(pl.UInt64) * _FILE_SHIFT + pl.col(S.SOURCE_ROW).cast(pl.UInt64)


def phone_key() -> pl.Expr:
    """The key whose partition owns the sender's phone (phones.phone_owner_key, what its phone
    candidates carry as OWNER_KEY), null without a usable phone."""
    return phone_owner_key(phone_digits(S.SENDER_PHONE))


def phone_parts(phones: pl.Series, n_parts: int, shared: np.ndarray | None = None) -> np.ndarray:
    """part_of(phone_key()) of every phone (-1 where null), from phones.phone_numbers (read from the text's
    bytes by a kernel instead of building each phone's digits with a regex, which took most of a slice's
    partition assignment; texts with bytes outside ASCII go through the expression). With `shared`
    (parties.shared_phone_numbers, sorted), -1 too for a phone whose number is not in it."""
    numbers = phone_numbers(phones)
    keys = numbers.astype(np.uint64) * np.uint64(PHONE_MIX)  # wraps mod 2^64, as phone_owner_key
    parts = np.where(numbers >= 0, (keys % np.uint64(n_parts)).astype(np.int64), -1)
    if shared is not None:
        at = np.minimum(np.searchsorted(shared, numbers), max(shared.shape[0] - 1, 0))
        listed = shared[at] == numbers if shared.shape[0] else np.zeros(numbers.shape[0], dtype=np.bool_)
        parts[(numbers >= 0) & ~listed] = -1
    return parts


# What reading a partition needs beyond a caller's columns: row keys (duplicates), ids and party keys
# (collision check, ownership flags) and the copy's phone partition.
_OWN_NEEDS = (S.SOURCE_FILE, S.SOURCE_ROW, S.SENDER_ID, S.RECEIVER_ID, SENDER_KEY, RECEIVER_KEY, PRIMARY, PHONE_PART)


@dataclass
class Transfers:
    """Every clean transfer of a scan: one partition in memory, or `n_parts` partitions of spill files."""

    n_parts: int
    bad: pl.DataFrame  # SOURCE_FILE, SOURCE_ROW, REASON of every quarantined row, in file and row order
    scanned: dict[int, int]  # clean rows per file index
    memory: pl.DataFrame | None = None
    spill_files: list[list[Path]] = field(default_factory=list)  # per partition, in input order
    duplicates: pl.Series | None = None  # ROW_KEY of clean-looking rows that repeat an earlier txn_id
    spill_dir: Path | None = None
    spill_bytes: int = 0
    spill_compression: str = ""  # how the spill files were written: "none" or "zstd" ("" in memory)
    checked: set[int] = field(default_factory=set)  # partitions whose keys were checked for collisions
    # RECEIVER_KEY, receiver_n (Float64): clean transfers per receiver, when counted while spilling
    receiver_counts: pl.DataFrame | None = None
    empty: pl.DataFrame | None = None  # the clean rows' columns, no rows: every_row when nothing was spilled

    @property
    def rows(self) -> int:
        """Clean rows over all files."""
        return sum(self.scanned.values())

    def partition(self, part: int, columns: Collection[str] | None = None) -> pl.DataFrame:
        """The transfers of one partition (all of them when in memory), in input order. `columns` limits
        what is read from spill files to those a caller needs (besides what ownership flags need)."""
        if self.memory is not None:
            return self.memory
        paths = self.spill_files[part]
        if not paths:
            return pl.DataFrame()
        wanted = None if columns is None else {*columns, *_OWN_NEEDS}
        if wanted is not None and PHONE_PART not in pl.read_ipc_schema(paths[0]):
            wanted.add(S.SENDER_PHONE)  # older spill files: the phone's partition is computed from the phone
        # Duplicates are dropped as the files are read (a filter of the frame afterwards copied every row again).
        keep = None
        if self.duplicates is not None and self.duplicates.len():
            keep = ~row_key().is_in(self.duplicates.implode())
        frame = _with_party_keys(_read_spill(paths, wanted, keep))
        flags = [
            (part_of(pl.col(SENDER_KEY), self.n_parts) == part).alias(OWN_SENDER),
            (part_of(pl.col(RECEIVER_KEY), self.n_parts) == part).alias(OWN_RECEIVER),
        ]
        if PHONE_PART in frame.columns:
            flags.append((pl.col(PHONE_PART) == part).fill_null(False).alias(OWN_PHONE))
        elif S.SENDER_PHONE in frame.columns:
            flags.append((part_of(phone_key(), self.n_parts) == part).fill_null(False).alias(OWN_PHONE))
        frame = frame.with_columns(flags).drop(PRIMARY, PHONE_PART, strict=False)
        if part not in self.checked:  # every use of a key meets in the partition owning it
            check_key_collisions(frame, pl.col(OWN_SENDER), pl.col(OWN_RECEIVER))
            self.checked.add(part)
        return frame

    def partitions(self, columns: Collection[str] | None = None) -> Iterator[tuple[int, pl.DataFrame]]:
        """(index, frame) of every non-empty partition (see partition for `columns`)."""
        for part in range(self.n_parts):
            frame = self.partition(part, columns)
            if frame.height:
                yield part, frame

    def every_row(self, *, with_duplicates: bool = False) -> pl.LazyFrame:
        """Every clean transfer once (lazily; the primary copies when partitioned), as one query over every
        spill file: for small scans (see every_row_parts)."""
        if self.memory is not None:
            return self.memory.lazy()
        paths = [p for files in self.spill_files for p in files]
        return self._primary_rows(paths, with_duplicates) if paths else self._no_rows()

    def every_row_parts(self, *, with_duplicates: bool = False) -> Rows:
        """Every clean transfer once, as rowsets.collect_rows reads it: the frame in memory, else the primary
        copies in parts of whole partitions with at most SCAN_FILES spill files each (a row's primary copy is
        in its sender's partition)."""
        if self.memory is not None:
            return self.memory.lazy()
        groups: list[list[Path]] = []
        for files in self.spill_files:
            if files and (not groups or len(groups[-1]) + len(files) > SCAN_FILES):
                groups.append([])
            if files:
                groups[-1].extend(files)
        return [self._primary_rows(paths, with_duplicates) for paths in groups] or [self._no_rows()]

    def _no_rows(self) -> pl.LazyFrame:
        """No transfer, with the columns of the clean rows (every row of the input was quarantined)."""
        return self.empty.lazy() if self.empty is not None else pl.LazyFrame()

    def _primary_rows(self, paths: list[Path], with_duplicates: bool) -> pl.LazyFrame:
        lf = pl.scan_ipc(paths).filter(pl.col(PRIMARY))
        if not with_duplicates and self.duplicates is not None and self.duplicates.len():
            lf = lf.filter(~row_key().is_in(self.duplicates.implode()))
        return _with_party_keys(lf.drop(PRIMARY, PHONE_PART, strict=False))

    def owned(self, key: str | pl.Expr, part: int) -> pl.Expr:
        """Condition: the key (a party key column or expression) belongs to partition `part`."""
        expr = pl.col(key) if isinstance(key, str) else key
        return pl.lit(True) if self.n_parts == 1 else part_of(expr, self.n_parts) == part

    def close(self) -> None:
        """Remove the spill files (idempotent)."""
        if self.spill_dir is not None:
            shutil.rmtree(self.spill_dir, ignore_errors=True)
            self.spill_dir = None


def _with_party_keys(rows: FrameT) -> FrameT:
    """Spilled rows with their party keys, which spill files do not hold (see _write_parts)."""
    names = rows.collect_schema().names() if isinstance(rows, pl.LazyFrame) else rows.columns
    return rows if SENDER_KEY in names else rows.with_columns(party_keys())


def _read_spill(paths: list[Path], columns: Collection[str] | None = None, keep: pl.Expr | None = None) -> pl.DataFrame:
    """The rows of spill files, in order: runs of files with one schema are read by one multi-file scan
    (decoded in parallel, 2x faster than file by file), runs of differing files (inputs with other
    columns) are then stacked by column name. With `columns`, only those of them a file has are read;
    with `keep` (a condition on the spilled columns), only the rows meeting it."""
    runs: list[list[Path]] = []
    schema = None
    for path in paths:
        own = pl.read_ipc_schema(path)
        if runs and own == schema:
            runs[-1].append(path)
        else:
            runs.append([path])
            schema = own
    frames = []
    for run in runs:
        scan = pl.scan_ipc(run)
        if columns is not None:
            scan = scan.select([c for c in scan.collect_schema().names() if c in columns])
        if keep is not None:
            scan = scan.filter(keep)
        frames.append(scan.collect())
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def _split(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(clean rows with party keys, quarantine keys with reasons) of normalised rows."""
    bad = frame.select(S.SOURCE_FILE, S.SOURCE_ROW, S.REASON).filter(pl.col(S.REASON).is_not_null())
    clean = frame.filter(pl.col(S.REASON).is_null()).drop(S.REASON).with_columns(party_keys())
    return clean, bad


def _normalised(raw: pl.DataFrame, info: InputFile, index: int, config: ScanConfig, fx: FxTable | None) -> pl.DataFrame:
    typed = normalise_file(
        raw,
        info.label,
        assume_tz=config.read.assume_tz,
        fx=fx,
        now=config.now,
        max_amount_usd=config.max_amount_usd,
    )
    return typed.with_columns(pl.lit(index, pl.Int32).alias(S.SOURCE_FILE))


def _counts(clean: pl.DataFrame, n_files: int) -> dict[int, int]:
    grouped = clean.group_by(S.SOURCE_FILE).len()
    found = dict(zip(grouped[S.SOURCE_FILE].to_list(), grouped["len"].to_list(), strict=True))
    return {i: int(found.get(i, 0)) for i in range(n_files)}


def load_in_memory(
    files: list[InputFile],
    columns: tuple[str, ...],
    config: ScanConfig,
    fx: FxTable | None,
    advance: Callable[[int], None],
) -> Transfers:
    """Load and normalise every file at once: one partition, no spill files."""
    frames = []
    for index, info in enumerate(files):
        frames.append(_normalised(load_columns(info, config.read, columns), info, index, config, fx))
        advance(1)
    frame = pl.concat(frames, how="diagonal_relaxed")
    if frame.height == 0:
        raise InputError("the input holds no transaction rows", file=", ".join(f.label for f in files))
    clean, bad = _split(mark_duplicates(frame))
    check_key_collisions(clean)
    return Transfers(n_parts=1, bad=bad, scanned=_counts(clean, len(files)), memory=clean)


def _assignments(
    clean: pl.DataFrame, n_parts: int, sides: frozenset[str], shared_phones: np.ndarray | None = None
) -> pl.DataFrame:
    """(row index, partition, primary[, phone partition]) for every copy of every clean row, by partition
    then row.

    A row goes to its sender's partition (the primary copy), to its receiver's when that is another
    one, and to its sender's phone's when that is neither (kernels.partition_copies, a counting sort: a
    1M-row slice of the 10M world in 25 partitions 0.22 s, most of it the phone key's digits, against 0.33 s
    for building the copies and sorting them by a key); with `shared_phones` (see phone_parts), only the
    phones in it count."""
    with_phone = "phone" in sides and S.SENDER_PHONE in clean.columns
    keys = [part_of(pl.col(SENDER_KEY), n_parts).alias("_s"), part_of(pl.col(RECEIVER_KEY), n_parts).alias("_r")]
    parts = clean.select(keys)
    phone = (
        phone_parts(clean[S.SENDER_PHONE], n_parts, shared_phones)
        if with_phone
        else np.full(parts.height, -1, np.int64)
    )
    rows, part, primary = partition_copies(
        np.ascontiguousarray(parts["_s"].cast(pl.Int64).to_numpy()),
        np.ascontiguousarray(parts["_r"].cast(pl.Int64).to_numpy()),
        np.ascontiguousarray(phone),
        np.int64(n_parts),
    )
    copies = pl.DataFrame({"_i": rows, "_p": part, PRIMARY: primary})
    if with_phone:
        # Every copy carries its phone's partition, so reading a partition need not compute phone keys again.
        ph = pl.Series("_ph", phone).gather(copies["_i"])
        copies = copies.with_columns(pl.when(ph >= 0).then(ph).cast(pl.UInt32).alias(PHONE_PART))
    return copies


def spill_transfers(
    files: list[InputFile],
    columns: tuple[str, ...],
    config: ScanConfig,
    fx: FxTable | None,
    n_parts: int,
    sides: frozenset[str],
    chunk_rows: int,
    advance: Callable[[int], None],
    count_receivers: bool = False,
    estimate_bytes: int = 0,
    cache_bytes: int = 0,
    shared_phones: np.ndarray | None = None,
) -> Transfers:
    """One streaming pass: normalise every file slice by slice (read.load_chunks) and spill clean rows into `n_parts`
    partitions (Arrow IPC) in a temporary directory under the output directory. `sides` always
    holds "party": every transfer of a party key is in the partition owning it (detectors and the key
    collision check rely on it), "phone" adds the sender phone's partition. With `count_receivers`, the
    pass also counts every receiver's clean transfers (Transfers.receiver_counts: the anomaly model's
    receiver_n, so pairs can be scored while detecting instead of in a pass of their own). The files are
    compressed as config.spill_compression says (spill_codec; `estimate_bytes`: spill_estimate, `cache_bytes`:
    memory.page_cache_room). With `shared_phones` (parties.shared_phone_numbers), a send goes to its phone's
    partition only when several ids use that phone: enough for rules that count a phone's sender ids."""
    if "party" not in sides:
        raise ValueError("spill_transfers needs the 'party' side")
    spill_dir = Path(tempfile.mkdtemp(prefix=_SPILL_PREFIX, dir=spill_parent(config)))
    transfers = Transfers(n_parts=n_parts, bad=pl.DataFrame(), scanned={}, spill_files=[[] for _ in range(n_parts)])
    transfers.spill_dir = spill_dir
    # Removed by close(); else when the Transfers is dropped or, at the latest, as the process exits (the CLI runs
    # exit handlers): an interrupt once left a 10M scan's 3 GB of partitions beside the output, most likely
    # landing where no close() is reached (after the pass, before the caller's try holds the result).
    weakref.finalize(transfers, shutil.rmtree, spill_dir, True)
    free_disk = shutil.disk_usage(spill_dir).free
    transfers.spill_compression = spill_codec(config.spill_compression, estimate_bytes, free_disk, cache_bytes)
    try:
        _spill(
            transfers,
            files,
            columns,
            config,
            fx,
            sides,
            chunk_rows,
            advance,
            count_receivers,
            shared_phones,
        )
    except BaseException:
        transfers.close()
        raise
    return transfers


def spill_estimate(load_bytes: int) -> int:
    """Bytes the uncompressed spill files of an input whose loaded columns take `load_bytes` in memory
    (memory.estimate_load) may reach: every row in up to PARTITION_COPIES partitions, each copy about its
    in-memory size (Arrow offsets instead of Polars' 16-byte views, plus the spill's own flag columns)."""
    return int(load_bytes * PARTITION_COPIES)


def spill_codec(choice: str, estimate_bytes: int, free_disk: int, free_cache: int) -> str:
    """How to write the spill files: "zstd" or "none" as `choice` says; for "auto", uncompressed when the
    estimated uncompressed spill fits on the spill disk with room to spare (UNCOMPRESSED_ROOM) and in the
    page cache the scan leaves (`free_cache`), else zstd.

    Uncompressed files take about 3.5 times zstd's bytes. Read back from the page cache they are faster
    to write and to read (10M world, 16 partitions: spill pass 15.2 -> 10.0 s, reading every partition
    4.7 -> 2.6 s). Spilled past the cache, they are read from disk: a 50M-row scan's 20 GB spill read
    35 GB from disk and the scan was no faster (6 min 22 s against 6 min 18 s with zstd)."""
    if choice not in SPILL_COMPRESSIONS:
        raise ValueError(f"spill compression {choice!r}: expected one of {', '.join(SPILL_COMPRESSIONS)}")
    if choice != "auto":
        return choice
    fits = free_disk >= UNCOMPRESSED_ROOM * estimate_bytes and free_cache >= estimate_bytes
    return "none" if fits else "zstd"


def spill_parent(config: ScanConfig) -> Path:
    """Where a scan's temporary files go: --spill-dir, else the output directory (or, before it exists,
    the directory it will be made in)."""
    if config.spill_dir is not None:
        return config.spill_dir
    target = config.out_dir.resolve()
    while not target.is_dir() and target != target.parent:
        target = target.parent
    return target


def _spill(
    transfers: Transfers,
    files: list[InputFile],
    columns: tuple[str, ...],
    config: ScanConfig,
    fx: FxTable | None,
    sides: frozenset[str],
    chunk_rows: int,
    advance: Callable[[int], None],
    count_receivers: bool,
    shared_phones: np.ndarray | None,
) -> None:
    assert transfers.spill_dir is not None
    n_parts = transfers.n_parts
    hashes: list[np.ndarray] = []  # txn_id hash of every row that has an id, in file and row order
    bad_parts: list[pl.DataFrame] = []
    receivers: list[np.ndarray] = []  # RECEIVER_KEY of every clean row (count_receivers), 8 bytes a row
    scanned = dict.fromkeys(range(len(files)), 0)
    tid = pl.col(S.TXN_ID)
    present = has_text(tid)
    # The spill files of one slice are written on a thread while the next slice is read and checked (pyarrow
    # compresses and writes without the GIL). Two slices are then in memory at once, so each is half the
    # plan's chunk: the pass stays within the memory the plan gave one slice.
    slice_rows = max(10_000, chunk_rows // 2)
    writers = SpillWriters(transfers.spill_dir, n_parts, transfers.spill_compression)
    transfers.spill_files = writers.files
    try:
        with ThreadPoolExecutor(1) as writer:
            pending: Future[None] | None = None
            for index, info in enumerate(files):
                for raw in load_chunks(info, config.read, columns, slice_rows):
                    frame = _normalised(raw, info, index, config, fx)
                    hashes.append(frame.select(tid.filter(present).hash(PARTY_KEY_SEED)).to_series().to_numpy())
                    # Rows quarantined for their values keep their id: an id repeated later is a duplicate even so.
                    bad = frame.select(S.SOURCE_FILE, S.SOURCE_ROW, S.REASON, S.TXN_ID)
                    bad_parts.append(own_buffers(bad.filter(pl.col(S.REASON).is_not_null())))
                    clean, _ = _split(frame)
                    if transfers.empty is None:
                        transfers.empty = clean.head(0)
                    del raw, frame, bad
                    scanned[index] += clean.height
                    if count_receivers:
                        receivers.append(clean[RECEIVER_KEY].to_numpy())
                    copies = _assignments(clean, n_parts, sides, shared_phones)
                    if pending is not None:
                        pending.result()  # the slice before is written (or its error raised) first
                    pending = writer.submit(_write_parts, clean, copies, writers)
                    del clean, copies
                advance(1)
            if pending is not None:
                pending.result()
    except BaseException:
        writers.abandon()  # the writer thread has stopped: leaving the executor's block waits for it
        raise
    writers.close()
    bad_rows = pl.concat(bad_parts, how="diagonal_relaxed")
    # The pass's hashes are released once the repeated ones are found, before the duplicate check reads rows.
    dups, bad_rows = _duplicates(transfers, _repeated_hashes(_concatenate_freeing(hashes)), bad_rows)
    transfers.duplicates = dups[ROW_KEY]
    if count_receivers:
        transfers.receiver_counts = _receiver_counts(receivers, dups[RECEIVER_KEY])
    for file_index, n in _counts_of(transfers.duplicates).items():
        scanned[file_index] -= n
    transfers.scanned = scanned
    transfers.bad = bad_rows
    if transfers.rows + transfers.bad.height == 0:
        raise InputError("the input holds no transaction rows", file=", ".join(f.label for f in files))
    transfers.spill_bytes = sum(p.stat().st_size for part in transfers.spill_files for p in part)


def _concatenate_freeing(arrays: list[np.ndarray]) -> np.ndarray:
    """One uint64 array of `arrays` in order, each released (the list emptied) as it is copied: the pass's
    txn_id hashes are 8 bytes a row, and holding them twice at the end of a 200M-row pass was 1.6 GB more."""
    out = np.empty(sum(a.shape[0] for a in arrays), dtype=np.uint64)
    at = 0
    for i, part in enumerate(arrays):
        out[at : at + part.shape[0]] = part
        at += part.shape[0]
        arrays[i] = out[:0]  # drop the reference: the slice's array can be freed now
    arrays.clear()
    return out


def _write_parts(clean: pl.DataFrame, copies: pl.DataFrame, writers: SpillWriters) -> None:
    """Append one slice's copies to their partitions: one gather of every copy (they come sorted by
    partition), converted to Arrow once, then one record batch per partition from a zero-copy slice."""
    if clean.height == 0:
        return
    # Party keys are not spilled: two incompressible 64-bit hashes per copy were a quarter of the spill
    # (1M-row slice of the 50M world: 170 -> 126 MB); reading a partition hashes its ids again.
    rows = clean.drop(SENDER_KEY, RECEIVER_KEY)[copies["_i"]].with_columns(copies.select(pl.exclude("_i", "_p")))
    table = rows.to_arrow()
    del rows
    offset = 0
    sizes = copies.group_by("_p", maintain_order=True).len()  # one row per partition, not per transfer
    for part, n in zip(sizes["_p"].to_numpy(), sizes["len"].to_numpy(), strict=True):
        writers.append(int(part), table.slice(offset, int(n)))
        offset += int(n)
    writers.end_slice()


def _receiver_counts(receivers: list[np.ndarray], duplicates: pl.Series) -> pl.DataFrame:
    """RECEIVER_KEY, receiver_n (Float64, as features.receiver_features counts it): every receiver's clean
    transfers, from the receiver keys of every clean row of the pass less those of the `duplicates` found
    after it (their receiver keys)."""
    keys = pl.Series(RECEIVER_KEY, np.concatenate(receivers) if receivers else np.zeros(0, np.uint64))
    counts = keys.to_frame().group_by(RECEIVER_KEY).len()
    if duplicates.len():
        repeated = duplicates.to_frame(RECEIVER_KEY).group_by(RECEIVER_KEY).agg(pl.len().alias("_dups"))
        counts = (
            counts.join(repeated, on=RECEIVER_KEY, how="left")
            .with_columns((pl.col("len") - pl.col("_dups").fill_null(0)).alias("len"))
            .filter(pl.col("len") > 0)
            .drop("_dups")
        )
    return counts.select(RECEIVER_KEY, pl.col("len").cast(pl.Float64).alias("receiver_n"))


def _counts_of(dups: pl.Series) -> dict[int, int]:
    if dups.len() == 0:
        return {}
    files = (dups // _FILE_SHIFT).cast(pl.Int64).value_counts()
    return dict(zip(files[files.columns[0]].to_list(), files["count"].to_list(), strict=True))


def _repeated_hashes(hashes: np.ndarray) -> pl.Series:
    """The values that occur more than once in `hashes`, found by sorting them: Polars' sort of a copy (50M
    hashes 1.0 s) rather than numpy's in place (3.6 s; 16 s for the 200M-row scan's), for the copy's 8 bytes a
    row while it runs."""
    ordered = pl.Series(hashes).sort()  # the Series shares the array's memory; the sort makes the copy
    return ordered.filter(ordered == ordered.shift(1)).unique()


def _duplicates(transfers: Transfers, repeated: pl.Series, bad_rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(ROW_KEY and RECEIVER_KEY of clean rows that repeat an earlier txn_id, quarantine keys with every reason).

    As normalise.mark_duplicates on the whole input: only rows whose id hash repeats are compared."""
    keys = [S.SOURCE_FILE, S.SOURCE_ROW, S.REASON]
    if repeated.len() == 0:
        none = pl.DataFrame(schema={ROW_KEY: pl.UInt64, RECEIVER_KEY: pl.UInt64})
        return none, bad_rows.select(keys).sort(S.SOURCE_FILE, S.SOURCE_ROW)
    wanted = repeated.implode()
    suspect_of = pl.col(S.TXN_ID).hash(PARTY_KEY_SEED).is_in(wanted)
    clean_suspects = collect_rows(  # never all spilled rows at once, nor every spill file in one query
        transfers.every_row_parts(with_duplicates=True),
        lambda rows: rows.filter(suspect_of).select(
            S.SOURCE_FILE, S.SOURCE_ROW, S.TXN_ID, RECEIVER_KEY, pl.lit(None, pl.String).alias(S.REASON)
        ),
    )
    suspects = (
        pl.concat([bad_rows.filter(suspect_of), clean_suspects], how="diagonal_relaxed")
        .sort(S.SOURCE_FILE, S.SOURCE_ROW)
        .with_columns((~pl.col(S.TXN_ID).is_first_distinct()).alias("_dup"))
        .filter(pl.col("_dup"))
    )
    clean_dups = suspects.filter(pl.col(S.REASON).is_null())
    bad_dups = suspects.filter(pl.col(S.REASON).is_not_null()).select(S.SOURCE_FILE, S.SOURCE_ROW)
    marked = (
        bad_rows.join(bad_dups.with_columns(pl.lit(True).alias("_dup")), on=[S.SOURCE_FILE, S.SOURCE_ROW], how="left")
        .with_columns(
            pl.when(pl.col("_dup"))
            .then(pl.col(S.REASON) + "; duplicate txn_id")
            .otherwise(pl.col(S.REASON))
            .alias(S.REASON)
        )
        .select(keys)
    )
    moved = clean_dups.select(S.SOURCE_FILE, S.SOURCE_ROW, pl.lit("duplicate txn_id").alias(S.REASON))
    bad = pl.concat([marked, moved], how="vertical_relaxed").sort(S.SOURCE_FILE, S.SOURCE_ROW)
    return clean_dups.select(row_key().alias(ROW_KEY), RECEIVER_KEY), bad
