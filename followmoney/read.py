"""Find transaction files (file, directory or glob), check their columns, and load them as frames.

Reading is split from normalising: this module knows file formats, column mapping and dtypes
that make a *file* unusable; `normalise.py` judges *values* and splits off quarantined rows.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import csv
import functools
import glob as globlib
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from followmoney import schema as S
from followmoney.config import ReadOptions
from followmoney.errors import InputError, ResourceError

ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
DATA_SUFFIXES = ARROW_SUFFIXES + PARQUET_SUFFIXES + (".csv",)
IGNORED_NAMES = ("_SUCCESS",)
# Polars raises PanicException (a BaseException) when a corrupt file trips an internal assertion.
READ_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException, pa.ArrowException, OSError, ValueError)
# Dtypes a text column (ids, names, countries, currency, phones) may be stored as.
_TEXT_LIKE = (pl.String, pl.Categorical, pl.Enum, pl.Null)
_TEMP_FILES: list[Path] = []


def remove_temp_files() -> None:
    """Delete the copies of inputs this process made: transcoded CSVs, Arrow copies of files in oversized blocks
    (a scan calls it as it ends; it also runs at interpreter exit)."""
    while _TEMP_FILES:
        _TEMP_FILES.pop().unlink(missing_ok=True)


atexit.register(remove_temp_files)


@dataclass(frozen=True)
class InputFile:
    """One transaction file, its format and its schema under contract column names."""

    path: Path
    fmt: str  # "arrow" | "parquet" | "csv"
    columns: dict[str, pl.DataType]  # contract name -> dtype as stored (CSV: all String)
    source_names: dict[str, str]  # contract name -> column name in the file
    extra_columns: tuple[str, ...]  # columns in the file that the contract does not know
    # The file rows are read from: the input itself, a transcoded UTF-8 copy of a CSV (--encoding), or an Arrow
    # copy of an Arrow or Parquet file with a block of more than LARGE_BLOCK_ROWS rows, in batches of
    # COPY_BATCH_ROWS.
    read_path: Path
    # Rows of the input's largest block (Arrow record batch, Parquet row group); 0 for CSV (parsed in batches).
    largest_block_rows: int = 0

    @property
    def read_fmt(self) -> str:
        """The format of read_path: the input's, or "arrow" for a copy of a Parquet file."""
        return "arrow" if self.fmt == "parquet" and self.read_path != self.path else self.fmt

    @property
    def label(self) -> str:
        """How errors and summaries name this file."""
        return str(self.path)


def file_format(path: Path) -> str:
    """The format of a transaction file from its suffix."""
    suffix = path.suffix.lower()
    if suffix in ARROW_SUFFIXES:
        return "arrow"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise InputError("unknown file type; expected .arrow/.feather/.ipc, .parquet or .csv", file=str(path))


def _is_data_file(path: Path) -> bool:
    name = path.name
    if name.startswith((".", "_")) or name in IGNORED_NAMES or name.endswith(".crc"):
        return False
    return path.is_file() and path.suffix.lower() in DATA_SUFFIXES


def resolve_inputs(spec: str) -> list[Path]:
    """Expand a file, directory or glob into a sorted list of transaction files."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if _is_data_file(p))
        if not files:
            raise InputError("directory holds no .arrow/.feather/.ipc/.parquet/.csv files", file=spec)
        return files
    if path.is_file():
        return [path]
    if any(ch in spec for ch in "*?["):
        files = sorted(Path(p) for p in globlib.glob(spec, recursive=True) if _is_data_file(Path(p)))
        if not files:
            raise InputError("the glob matches no transaction files", file=spec)
        return files
    raise InputError("no such file or directory", file=spec)


def _transcode_to_utf8(path: Path, encoding: str, temp_dir: Path | None = None) -> Path:
    """Copy a CSV in another encoding to a temporary UTF-8 file in `temp_dir` (a scan's spill place: the system's
    temporary directory is often small, or memory, and the copy is as large as the input), streaming."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"unknown encoding '{encoding}'", file=str(path)) from None
    place = Path(temp_dir or tempfile.gettempdir())
    try:
        fd, name = tempfile.mkstemp(prefix=".followmoney-utf8-", suffix=".csv", dir=place)
    except OSError as exc:
        raise _copy_error(path, "a UTF-8 copy of it", place, exc) from None
    tmp = Path(name)
    _TEMP_FILES.append(tmp)
    try:
        with _unreadable_input(path), open(path, encoding=encoding, newline="") as src:
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as dst:
                    while True:
                        with _unreadable_input(path):
                            block = src.read(1 << 20)
                        if not block:
                            break
                        dst.write(block)
            except OSError as exc:  # writing (or closing) the copy: a full disk, mostly
                raise _copy_error(path, "a UTF-8 copy of it", place, exc) from None
    except UnicodeDecodeError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"bytes not valid in encoding '{encoding}' ({exc.reason})", file=str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


@contextlib.contextmanager
def _unreadable_input(path: Path) -> Iterator[None]:
    """An OSError reading the input (not writing its copy) as a one-line InputError naming it."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"could not read the file ({' '.join(str(exc).split())[:150]})", file=str(path)) from None


def _copy_error(source: Path, what: str, place: Path, exc: BaseException) -> ResourceError:
    """The one-line error for a temporary copy of an input that cannot be written: names the input and the place."""
    return ResourceError(
        f"{source}: could not write {what} to {place} ({' '.join(str(exc).split())[:150]}); "
        "free space there or pass --spill-dir on a larger disk"
    )


def first_invalid_utf8(path: Path) -> tuple[int, int] | None:
    """(1-based line, byte offset) of the first byte sequence that is not UTF-8, or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    offset = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                return line + block[: exc.start].count(b"\n"), offset + exc.start
            line += block.count(b"\n")
            offset += len(block)
    return None


def _column_at(path: Path, offset: int, delimiter: str) -> str | None:
    """The header name of the CSV field holding byte `offset` (error path only; assumes no quoted newlines)."""
    with open(path, "rb") as fh:
        header = fh.readline()
        if offset < len(header):
            return None  # the bad byte is in the header itself
        start = max(offset - (1 << 16), len(header))
        fh.seek(start)
        before = fh.read(offset - start)
    line_start = before.rfind(b"\n") + 1  # 0 when the bad byte sits on the first data line
    prefix = before[line_start:].decode("utf-8", errors="replace")
    header_text = header.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    try:
        names = next(csv.reader([header_text], delimiter=delimiter), [])
        index = len(next(csv.reader([prefix], delimiter=delimiter))) - 1 if prefix else 0
    except csv.Error:  # a stray CR or quote: the line is still named, just not the column
        return None
    return names[index].strip() if 0 <= index < len(names) else None


def _csv_text_lines(path: Path) -> Iterator[str]:
    """The file's lines split on LF only, as Polars splits them: a bare CR stays field content (dropped here)."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh):
            line = raw.decode("utf-8", errors="replace")
            if number == 0:
                line = line.lstrip("\ufeff")
            if line.endswith("\r\n"):
                line = line[:-2] + "\n"
            yield line.replace("\r", "")


def csv_problem_line(path: Path, delimiter: str = ",") -> tuple[int, str] | None:
    """Where Python's strict CSV parser first fails on a file, and why (error path only; streams the file).

    Returns (1-based line where the bad record starts, problem): broken quoting, or a row with more or
    fewer fields than the header (blank lines aside).
    """
    start = 1
    reader = csv.reader(_csv_text_lines(path), delimiter=delimiter, strict=True)
    try:
        width = None
        for row in reader:
            if width is None:
                width = len(row)
            elif row and len(row) != width:
                return start, f"{len(row)} fields where the header has {width}"
            start = reader.line_num + 1
    except csv.Error as exc:
        return start, f"broken quoting ({exc})"
    return None


def csv_record_count(path: Path, delimiter: str = ",") -> int:
    """Data records (blank lines included, as Polars reads them) by Python's csv module (slow path only)."""
    reader = csv.reader(_csv_text_lines(path), delimiter=delimiter)
    return sum(1 for _ in reader) - 1


def _check_csv_row_count(info: InputFile, delimiter: str, rows: int) -> None:
    """Cross-check Polars' row count against the file's line count; on a mismatch, against Python's csv.

    Lines and rows differ only when quoted fields hold line breaks; a stray quote, though, can make a
    parser swallow rows silently. The line count is one fast pass over the bytes.
    """
    lines = 0
    last = b"\n"
    with open(info.read_path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"
    if rows == lines - 1:
        return
    records = csv_record_count(info.read_path, delimiter)
    if records != rows:
        found = csv_problem_line(info.read_path, delimiter)
        where = f"line {found[0]}: {found[1]}; " if found else ""
        raise InputError(
            f"{where}ambiguous CSV quoting (a stray '\"'?): {rows:,} rows parsed but the file holds {records:,} "
            "records; fix the quoting and export again",
            file=info.label,
        )


def _raw_schema(path: Path, fmt: str, options: ReadOptions) -> tuple[dict[str, pl.DataType], Path, int]:
    """The file's own column names and dtypes (CSV: all String), the path its rows are read from and the rows of
    its largest block (see InputFile); raises on unreadable files."""
    label = str(path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)", file=label)
    try:
        if fmt == "arrow":
            largest, read_path = _check_arrow(path, label, options.temp_dir)
            return dict(pl.read_ipc_schema(path)), read_path, largest
        if fmt == "parquet":
            meta = pq.read_metadata(str(path))  # fails on a truncated footer
            _check_time_zones(label, meta.schema.to_arrow_schema())
            largest = max((meta.row_group(i).num_rows for i in range(meta.num_row_groups)), default=0)
            return (
                dict(pl.read_parquet_schema(path)),
                _parquet_copy(path, options.temp_dir) if largest > LARGE_BLOCK_ROWS else path,
                largest,
            )
    except READ_ERRORS as exc:
        raise InputError(f"unreadable or truncated {fmt} file ({_short(exc)})", file=label) from None
    csv_path = _transcode_to_utf8(path, options.encoding, options.temp_dir) if options.encoding else path
    if options.encoding is None:
        bad = first_invalid_utf8(path)
        if bad is not None:
            line, offset = bad
            column = _column_at(path, offset, options.csv_delimiter)
            raise InputError(
                f"line {line}: bytes that are not UTF-8; pass --encoding (e.g. --encoding cp1252)",
                file=label,
                column=column,
            )
    try:
        header = pl.scan_csv(
            csv_path, separator=options.csv_delimiter, infer_schema=False, encoding="utf8"
        ).collect_schema()
    except READ_ERRORS as exc:
        raise _csv_error(label, csv_path, options.csv_delimiter, exc) from None
    if len(header) == 1 and options.csv_delimiter not in ";\t|":
        # One column whose name holds another delimiter: the file is almost surely not comma-separated.
        (only,) = header
        other = next((d for d in ";\t|" if d in only), None)
        if other is not None:
            shown = "\\t" if other == "\t" else other
            raise InputError(
                f"the header has a single column containing '{shown}'; pass --csv-delimiter '{shown}'", file=label
            )
    _check_truncated_csv(label, csv_path, options.csv_delimiter, len(header))
    return dict(header), csv_path, 0


def _check_arrow(path: Path, label: str, temp_dir: Path | None = None) -> tuple[int, Path]:
    """Check every record batch of an Arrow IPC file; return the rows of its largest batch and the file its rows
    are to be read from: the file itself, or a temporary copy (in `temp_dir`) in batches of COPY_BATCH_ROWS when a
    batch holds more than LARGE_BLOCK_ROWS rows (every later reader would take such a batch whole).

    Each batch's buffer sizes are checked against its lengths before Polars reads it (Polars panics, noisily, on
    such corruption); a compressed batch is decompressed to be checked (the 50M-row world file: 4.0-4.1 s). Full
    validation (offsets, UTF-8) would cost another pass over the data: ~2.6 s per 10M rows. Each batch is read
    through a memory map of its own, so an uncompressed batch is not read at all and the pages of a compressed one
    are let go before the next (one map for the whole file holds every page read so far: 988 against 318 MiB for
    the 10M world; plain reads 4.4-4.7 s at 50M, copying every compressed body). An oversized compressed batch is
    checked and copied a column at a time (_BatchCopy.add_columns): decompressed whole it needs all its columns'
    memory at once (the 50M world as one zstd batch: 8,335 MiB of anonymous memory, against 1,542 MiB)."""
    with pa.memory_map(str(path)) as mapped:
        reader = ipc.open_file(mapped)
        _check_time_zones(label, reader.schema)
        schema, count = reader.schema, reader.num_record_batches
    probe = _probe_field(schema)
    largest = 0
    copy: _BatchCopy | None = None
    for i in range(count):
        rows, compressed = _batch_shape(path, i, probe)
        if rows > LARGE_BLOCK_ROWS and compressed:
            largest = max(largest, rows)
            copy = copy or _BatchCopy.start(path, schema, i, temp_dir)
            copy.add_columns(i, rows)
            continue
        with pa.memory_map(str(path)) as mapped:
            batch = ipc.open_file(mapped).get_batch(i)
            batch.validate(full=False)
            largest = max(largest, batch.num_rows)
            if copy is None and batch.num_rows > LARGE_BLOCK_ROWS:
                copy = _BatchCopy.start(path, schema, i, temp_dir)
            if copy is not None:
                copy.add(batch)
            del batch
    if copy is None:
        return largest, path
    pa.default_memory_pool().release_unused()  # a decompressed batch's memory, kept by the pool otherwise
    return largest, copy.close()


def _probe_field(schema: pa.Schema) -> int:
    """The column read to learn a batch's rows and whether it is compressed: the narrowest fixed-width one (a
    timestamp, an amount: a few bytes a row to decompress), else the first."""
    widths = [
        (field.type.bit_width, j)
        for j, field in enumerate(schema)
        if pa.types.is_primitive(field.type) and not pa.types.is_boolean(field.type) and field.type.bit_width > 0
    ]
    return min(widths)[1] if widths else 0


def _batch_shape(path: Path, index: int, field: int) -> tuple[int, bool]:
    """(rows, compressed) of record batch `index` of an Arrow file, from column `field` alone: compressed when that
    column's buffers are not the file's own bytes (read through a memory map, an uncompressed buffer is a view of
    the map; a decompressed one is new memory). A writer may store a buffer that does not shrink uncompressed
    inside a compressed batch; a batch whose probed column is such is taken as uncompressed and read whole, as
    before this check existed."""
    with pa.memory_map(str(path)) as mapped:
        size = mapped.size()
        base = mapped.read_buffer(1).address if size else 0
        column = _batch_column(mapped, index, field)
        buffers = [b for b in column.buffers() if b is not None and b.size > 0]
        compressed = any(not base <= b.address < base + size for b in buffers)
        return len(column), compressed


def _batch_column(mapped: pa.MemoryMappedFile, index: int, field: int) -> pa.Array:
    """Column `field` of record batch `index` of a memory-mapped Arrow file, read alone: a compressed batch's other
    columns are not decompressed."""
    reader = ipc.open_file(mapped, options=ipc.IpcReadOptions(included_fields=[field]))
    return reader.get_batch(index).column(0)


def _parquet_copy(path: Path, temp_dir: Path | None = None) -> Path:
    """A temporary Arrow copy of a Parquet file with an oversized row group (see _check_arrow), in batches of
    COPY_BATCH_ROWS, so every reader of the scan takes those instead of decoding the whole group (every slice of
    the spill pass decoded the group it falls in). pyarrow decodes the group a batch at a time, its column chunks
    read through a memory map with buffered reads (the 10M world as one group: 2.0 s, 684 MiB of anonymous
    memory at most; decoding the group at once for the copy raised the scan's peak to 3.5 GB)."""
    with pq.ParquetFile(str(path), memory_map=True, buffer_size=1 << 20) as reader:
        copy = _BatchCopy(path, reader.schema_arrow, temp_dir)
        for batch in reader.iter_batches(batch_size=COPY_BATCH_ROWS):
            copy.add(batch)
    return copy.close()


class _BatchCopy:
    """A temporary Arrow IPC copy (lz4) of an Arrow or Parquet file in batches of at most COPY_BATCH_ROWS rows,
    written one source batch at a time: an uncompressed Arrow batch is sliced where it lies in the file
    (memory-mapped), a compressed one once decompressed (an oversized one a column at a time: add_columns), a
    Parquet batch as pyarrow decodes it. Dictionary columns are written as their plain values (a file's batches
    may carry different dictionaries, which one IPC file cannot)."""

    def __init__(self, source: Path, schema: pa.Schema, temp_dir: Path | None = None) -> None:
        self.source, self.path = source, Path(temp_dir or tempfile.gettempdir()) / ".followmoney-copy-*.arrow"
        self.schema = pa.schema(
            [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema],
            metadata=schema.metadata,
        )
        with self._writing():
            fd, name = tempfile.mkstemp(prefix=".followmoney-copy-", suffix=".arrow", dir=temp_dir)
            os.close(fd)
            self.path = Path(name)
            _TEMP_FILES.append(self.path)
            self.sink = pa.OSFile(name, "wb")
            self.writer = ipc.new_file(self.sink, self.schema, options=ipc.IpcWriteOptions(compression="lz4"))

    @classmethod
    def start(cls, source: Path, schema: pa.Schema, before: int, temp_dir: Path | None = None) -> _BatchCopy:
        """A copy of `source` (in `temp_dir`) holding its first `before` batches (each read through a map of its
        own)."""
        copy = cls(source, schema, temp_dir)
        for i in range(before):
            with pa.memory_map(str(source)) as mapped:
                batch = ipc.open_file(mapped).get_batch(i)
                copy.add(batch)
                del batch
        return copy

    def add_columns(self, index: int, rows: int) -> None:
        """Append record batch `index` (of `rows` rows) of the Arrow source a column at a time: each column is read
        (decompressed) alone, checked and written uncompressed to a temporary file of its own, then the slices are
        assembled from those files, memory-mapped. Memory holds one decompressed column, not the whole batch."""
        parts: list[Path] = []
        try:
            for j, field in enumerate(self.schema):
                with pa.memory_map(str(self.source)) as mapped:
                    column = _batch_column(mapped, index, j)
                column.validate(full=False)
                if column.type != field.type:
                    column = column.cast(field.type)
                parts.append(self._column_file(field, column))
                del column
                pa.default_memory_pool().release_unused()
            for start in range(0, rows, COPY_BATCH_ROWS):
                # Fresh maps per slice: one map held throughout keeps every page read so far resident.
                with contextlib.ExitStack() as stack:
                    maps = [stack.enter_context(pa.memory_map(str(part))) for part in parts]
                    pieces = [ipc.open_file(m).get_batch(0).column(0).slice(start, COPY_BATCH_ROWS) for m in maps]
                    with self._writing():
                        self.writer.write_batch(pa.RecordBatch.from_arrays(pieces, schema=self.schema))
                    del pieces
        finally:
            for part in parts:
                part.unlink(missing_ok=True)

    def _column_file(self, field: pa.Field, column: pa.Array) -> Path:
        """`column` written uncompressed to a temporary Arrow file beside the copy (removed with the copy's
        temporaries if the scan stops)."""
        with self._writing():
            fd, name = tempfile.mkstemp(prefix=".followmoney-copy-", suffix=".column", dir=self.path.parent)
            os.close(fd)
            part = Path(name)
            _TEMP_FILES.append(part)
            with pa.OSFile(name, "wb") as sink, ipc.new_file(sink, pa.schema([field])) as writer:
                writer.write_batch(pa.RecordBatch.from_arrays([column], schema=pa.schema([field])))
        return part

    def add(self, batch: pa.RecordBatch) -> None:
        """Append one source batch, cut into slices of at most COPY_BATCH_ROWS rows."""
        if batch.schema != self.schema:
            batch = batch.cast(self.schema)
        with self._writing():
            for start in range(0, batch.num_rows, COPY_BATCH_ROWS):
                self.writer.write_batch(batch.slice(start, COPY_BATCH_ROWS))

    def close(self) -> Path:
        """Finish the copy; its path."""
        with self._writing():
            self.writer.close()
            self.sink.close()
        return self.path

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Name the copy and its directory when writing it fails (a full disk, mostly), not the input."""
        try:
            yield
        except (OSError, pa.ArrowException) as exc:
            raise _copy_error(self.source, "a copy of it in small record batches", self.path.parent, exc) from None


def _csv_error(label: str, csv_path: Path, delimiter: str, exc: BaseException) -> InputError:
    """An InputError for a CSV that Polars could not parse, naming the line where the structure breaks."""
    found = csv_problem_line(csv_path, delimiter)
    if found is not None:
        line, problem = found
        return InputError(f"line {line}: malformed CSV: {problem}", file=label)
    return InputError(f"unreadable CSV ({_short(exc)})", file=label)


def _check_truncated_csv(label: str, csv_path: Path, delimiter: str, width: int) -> None:
    """A CSV cut off in transfer ends mid-row: stop if the last line, lacking a newline, is short."""
    size = csv_path.stat().st_size
    with open(csv_path, "rb") as fh:
        fh.seek(max(size - (1 << 16), 0))
        tail = fh.read()
    if not tail or tail.endswith(b"\n"):
        return
    last = tail[tail.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")
    try:
        fields = next(csv.reader([last], delimiter=delimiter, strict=True), [])
    except csv.Error:
        return  # an open quote at the end: Polars reports it when loading
    if 0 < len(fields) < width:
        lines = 1
        with open(csv_path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                lines += block.count(b"\n")
        raise InputError(
            f"line {lines}: the last row has {len(fields)} of {width} fields and no line end; "
            "the file looks truncated, export it again",
            file=label,
        )


def _check_time_zones(label: str, schema: pa.Schema) -> None:
    """Stop on a timestamp column whose time zone is not a zone name or offset (Polars panics on it)."""
    for field in schema:
        tz = getattr(field.type, "tz", None)
        if not tz or re.fullmatch(r"[+-]\d{2}:\d{2}", tz):
            continue
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown time zone '{tz}' in the file's schema", file=label, column=field.name) from None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def inspect_files(paths: Iterable[Path], options: ReadOptions) -> list[InputFile]:
    """Check every file's columns and dtypes before any data is loaded; raise on the first bad file."""
    inspected: list[InputFile] = []
    for path in paths:
        fmt = file_format(path)
        raw, read_path, largest_block = _raw_schema(path, fmt, options)
        # A BOM may survive in the first CSV header on some exporters: strip it.
        raw = {name.lstrip("\ufeff"): dtype for name, dtype in raw.items()}
        source_names = {name: options.column_map.get(name, name) for name in S.TXN_SCHEMA}
        missing = [name for name in S.REQUIRED_TXN_COLUMNS if source_names[name] not in raw]
        if missing:
            shown = [f"{m} (mapped from '{source_names[m]}')" if m in options.column_map else m for m in missing]
            raise InputError(
                f"missing required column(s): {', '.join(shown)}; rename them or use --map contract=source",
                file=str(path),
            )
        present = {name: src for name, src in source_names.items() if src in raw}
        columns = {name: raw[src] for name, src in present.items()}
        for name, dtype in columns.items():
            _check_dtype(str(path), name, dtype, fmt)
        used = set(present.values())
        extra = tuple(c for c in raw if c not in used)
        inspected.append(InputFile(path, fmt, columns, present, extra, read_path, largest_block))
    return inspected


# A block of more rows than this would be taken whole by several readers of a scan (the batch check, the party
# directory's streaming query, every slice of the spill pass), so its size, not --memory-limit, would set the
# scan's memory: the 10M-row world as one Arrow batch at --memory-limit 3GiB held 4.6 GiB of anonymous memory,
# against 2.6 GiB in 1M-row batches. Writers' defaults stay far below it (pyarrow's and Polars' row groups,
# Polars' and pandas' Arrow batches); pyarrow's IPC writer given a one-chunk table writes a single batch. An
# Arrow or Parquet file with such a block is read from a copy in batches of COPY_BATCH_ROWS (_check_arrow,
# _parquet_copy).
LARGE_BLOCK_ROWS = 4 * 1024 * 1024
COPY_BATCH_ROWS = 1024 * 1024


def large_block_warning(info: InputFile) -> str | None:
    """A one-line warning when `info`'s largest block holds more than LARGE_BLOCK_ROWS rows, so its rows are read
    from a copy (which takes time and disk); None otherwise."""
    if info.largest_block_rows <= LARGE_BLOCK_ROWS or info.read_path == info.path:
        return None
    block = "record batch" if info.fmt == "arrow" else "row group"
    return (
        f"warning: {info.label}: a {block} of {info.largest_block_rows:,} rows; reading a copy in record batches of "
        f"{COPY_BATCH_ROWS:,} rows ({info.read_path.stat().st_size / 1e6:,.0f} MB in {info.read_path.parent}) so "
        "that --memory-limit holds"
    )


def _check_dtype(label: str, name: str, dtype: pl.DataType, fmt: str) -> None:
    """Stop on dtypes that cannot be converted without guessing."""
    if fmt == "csv":
        return
    if name in S.ID_COLUMNS or name in (S.SENDER_PHONE, S.RECEIVER_PHONE):
        if dtype.is_float():
            raise InputError(
                "ids stored as floating-point numbers lose digits; export them as text or integers",
                file=label,
                column=name,
            )
        if not (dtype.is_integer() or isinstance(dtype, _TEXT_LIKE)):
            raise InputError(f"ids must be text or integers, found {dtype}", file=label, column=name)
    elif name in S.FLOAT_TXN_COLUMNS:
        if dtype == pl.String:
            raise InputError(
                "amounts are stored as text; export them as numbers (no thousands separators or currency signs)",
                file=label,
                column=name,
            )
        if not dtype.is_numeric():
            raise InputError(f"amounts must be numeric, found {dtype}", file=label, column=name)
    elif name == S.TS:
        if dtype.is_integer() or dtype.is_float():
            raise InputError(
                "integer timestamps are ambiguous (seconds? milliseconds?); export ISO 8601 with a UTC offset",
                file=label,
                column=name,
            )
        if not (isinstance(dtype, pl.Datetime) or dtype in (pl.Date, pl.String)):
            raise InputError(f"timestamps must be datetimes or ISO 8601 text, found {dtype}", file=label, column=name)
    elif not isinstance(dtype, _TEXT_LIKE):
        what = "binary bytes (not text)" if dtype == pl.Binary else str(dtype)
        raise InputError(f"expected UTF-8 text, found {what}; export this column as text", file=label, column=name)


def _scan_file(info: InputFile, options: ReadOptions) -> pl.LazyFrame:
    """A lazy scan of one file, with contract column names, string ids, and a 1-based `_source_row`."""
    if info.read_fmt == "arrow":
        lf = pl.scan_ipc(info.read_path)
    elif info.read_fmt == "parquet":
        lf = pl.scan_parquet(info.read_path)
    else:
        lf = pl.scan_csv(
            info.read_path,
            separator=options.csv_delimiter,
            infer_schema=False,
            encoding="utf8",
            empty_string_is_null=False,
        )
    lf = lf.with_row_index(S.SOURCE_ROW, offset=1)
    renames = {src: name for name, src in info.source_names.items()}
    # Strip a BOM left on the first CSV header.
    bom = {c: c.lstrip("\ufeff") for c in lf.collect_schema().names() if c.startswith("\ufeff")}
    if bom:
        lf = lf.rename(bom)
    return lf.rename({src: name for src, name in renames.items() if src != name})


def scan_file(info: InputFile, options: ReadOptions) -> pl.LazyFrame:
    """A lazy scan of one file under contract column names; a file that can no longer be opened is named."""
    try:
        return _scan_file(info, options)
    except READ_ERRORS as exc:
        raise InputError(
            f"unreadable or corrupt {info.fmt} data ({' '.join(str(exc).split())[:150]})", file=info.label
        ) from None


def _typed(name: str, dtype: pl.DataType, fmt: str) -> pl.Expr:
    """Cast one stored column to what normalise expects (string ids, float amounts)."""
    col = pl.col(name)
    if name == S.TS:
        return col
    if name in S.FLOAT_TXN_COLUMNS:
        if fmt == "csv":
            return col  # parsed, with row-level errors, by normalise
        return col.cast(pl.Float64)
    if dtype == pl.String:
        return col
    return col.cast(pl.String)


def _loaded(info: InputFile, names: Iterable[str]) -> list[pl.Expr]:
    """`_source_row` and the given contract columns the file has, cast as normalise expects (_typed)."""
    return [pl.col(S.SOURCE_ROW), *[_typed(n, info.columns[n], info.fmt).alias(n) for n in names if n in info.columns]]


def load_columns(
    info: InputFile,
    options: ReadOptions,
    names: Iterable[str],
    *,
    offset: int | None = None,
    length: int | None = None,
) -> pl.DataFrame:
    """Load the given contract columns (those present) plus `_source_row` from one file, or from the
    slice of `length` rows at `offset` of an Arrow or Parquet file (CSV files are always read whole)."""
    columns = _loaded(info, names)
    try:
        lf = scan_file(info, options)
        if info.fmt == "csv":
            # Parse every field: Polars only notices a row with surplus fields (an unquoted delimiter
            # inside a name, which shifts every later field) when the last columns are read too.
            frame = lf.collect()
            _check_csv_row_count(info, options.csv_delimiter, frame.height)
            return frame.select(columns)
        if offset is not None and length is not None:
            lf = lf.slice(offset, length)
        frame = lf.select(columns).collect()
        stored = stored_rows(info)
        expected = stored if offset is None or length is None else max(0, min(length, stored - offset))
    except READ_ERRORS as exc:
        raise _load_error(info, options, exc) from None
    if frame.height != expected:
        raise InputError(
            f"corrupt {info.fmt} file: {frame.height:,} rows read but its metadata says {expected:,}", file=info.label
        )
    return frame


def load_chunks(info: InputFile, options: ReadOptions, names: Iterable[str], chunk_rows: int) -> Iterator[pl.DataFrame]:
    """load_columns of one file, `chunk_rows` rows at a time, in row order: Arrow and Parquet files by slices of
    their stored rows, a CSV file as one streaming parse whose batches arrive in order, so a CSV dump bigger than
    memory is never held whole (10M-row world, 1.5 GB of CSV: 3.5 GB to parse whole, 0.8 GB in batches of
    500,000 rows). Every CSV field is parsed (see load_columns) and the row count is cross-checked against the
    file's lines once the last batch is read. A file without rows gives one empty frame."""
    if info.fmt != "csv":
        rows = stored_rows(info)
        if rows <= chunk_rows:
            yield load_columns(info, options, names)
            return
        for offset in range(0, rows, chunk_rows):
            yield load_columns(info, options, names, offset=offset, length=min(chunk_rows, rows - offset))
        return
    columns = _loaded(info, names)
    lf = scan_file(info, options)
    total = 0
    try:
        for batch in lf.collect_batches(chunk_size=max(1, chunk_rows)):
            total += batch.height
            yield batch.select(columns)
        empty = lf.head(0).collect().select(columns) if total == 0 else None
    except READ_ERRORS as exc:
        raise _load_error(info, options, exc) from None
    _check_csv_row_count(info, options.csv_delimiter, total)
    if empty is not None:
        yield empty


def stored_rows(info: InputFile) -> int:
    """The row count a Parquet footer or the Arrow IPC batch headers declare (metadata only), read once per
    file version (the memory plan, every slice of a scan in slices and the quarantine pass all ask).

    Arrow: Polars sums the record batch headers' lengths (3 ms for the 50M-row world file, where pyarrow's
    count_rows read every batch: 0.9 s with the file in the page cache)."""
    stat = info.path.stat()
    return _declared_rows(str(info.path), info.fmt, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _declared_rows(path: str, fmt: str, size: int, mtime_ns: int) -> int:
    if fmt == "parquet":
        return int(pq.read_metadata(path).num_rows)
    return int(pl.scan_ipc(path).select(pl.len()).collect().item())


def _load_error(info: InputFile, options: ReadOptions, exc: BaseException) -> InputError:
    if info.fmt == "csv":
        return _csv_error(info.label, info.read_path, options.csv_delimiter, exc)
    return InputError(f"unreadable or corrupt {info.fmt} data ({_short(exc)})", file=info.label)


_SMALL_FILE_ROWS = 1_000_000  # read whole by a filtered scan (a block-wise read has a fixed start-up cost)


def load_rows(info: InputFile, options: ReadOptions, rows: pl.Series) -> pl.DataFrame:
    """All columns of the given 1-based rows of one file, as text, for the quarantine file.

    Arrow files of more than _SMALL_FILE_ROWS rows are read one record batch at a time with plain reads
    (a memory-mapped scan would count the whole file as resident); Parquet files are filtered by a
    streaming scan that copies the wanted rows out as text (10M rows: 1.0 s against 2.4 s block by block);
    either way a few million quarantined rows of a huge file never bring the whole file into memory.
    Smaller files and CSV files are filtered as they are scanned."""
    try:
        wanted = pl.col(S.SOURCE_ROW).is_in(rows.implode())
        if info.fmt == "csv" or stored_rows(info) <= _SMALL_FILE_ROWS:
            frame = scan_file(info, options).filter(wanted).collect()
        elif info.read_fmt == "parquet":
            scan = scan_file(info, options).filter(wanted)
            # New text buffers per batch: filtered string views would keep every decoded batch alive.
            schema = scan.collect_schema()
            text = [S.as_text(c, t) for c, t in schema.items() if c != S.SOURCE_ROW]
            frame = scan.select(S.SOURCE_ROW, *text).collect(engine="streaming").sort(S.SOURCE_ROW)
        else:
            frame = _rows_by_block(info, rows)
    except READ_ERRORS as exc:
        raise _load_error(info, options, exc) from None
    return frame.with_columns(S.as_text(c, t) for c, t in frame.schema.items() if c != S.SOURCE_ROW)


def _rows_by_block(info: InputFile, rows: pl.Series) -> pl.DataFrame:
    """The wanted 1-based rows of an Arrow or Parquet file, under contract names, one block at a time
    (Parquet: only row groups holding a wanted row; Arrow: each record batch in turn)."""
    wanted = np.unique(rows.cast(pl.Int64).to_numpy()) - 1  # 0-based, sorted
    parts: list[pl.DataFrame] = []
    with pa.OSFile(str(info.read_path)) as source:
        if info.read_fmt == "parquet":
            reader = pq.ParquetFile(source)
            schema = reader.schema_arrow
            sizes = [reader.metadata.row_group(i).num_rows for i in range(reader.num_row_groups)]
            bounds = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
            for block in np.unique(np.searchsorted(bounds, wanted, side="right") - 1).tolist():
                if 0 <= block < len(sizes):
                    parts.append(_take(reader.read_row_group(block), wanted, int(bounds[block])))
        else:
            batches = ipc.open_file(source)
            schema = batches.schema
            start = 0
            for i in range(batches.num_record_batches):
                batch = batches.get_batch(i)
                parts.append(_take(batch, wanted, start))
                start += batch.num_rows
    empty = _as_frame(schema.empty_table()).select(pl.all().cast(pl.String))  # blocks give text (see _take)
    empty = empty.with_columns(pl.Series(S.SOURCE_ROW, [], pl.UInt32))
    frame = pl.concat([empty, *(p for p in parts if p.height)], how="vertical_relaxed")
    renames = {src: name for name, src in info.source_names.items() if src != name}
    return frame.rename(renames).select(S.SOURCE_ROW, pl.exclude(S.SOURCE_ROW))


def _as_frame(data: pa.Table | pa.RecordBatch) -> pl.DataFrame:
    frame = pl.from_arrow(data)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _take(block: pa.Table | pa.RecordBatch, wanted: np.ndarray, start: int) -> pl.DataFrame:
    """The wanted (0-based, sorted) rows that fall in a block starting at row `start`, with their 1-based row."""
    lo, hi = np.searchsorted(wanted, [start, start + block.num_rows])
    local = wanted[lo:hi] - start
    if local.shape[0] == 0:
        return pl.DataFrame()
    if any(pa.types.is_string_view(t) or pa.types.is_binary_view(t) for t in block.schema.types):
        picked = _as_frame(block)[pl.Series(local)]  # pyarrow cannot take from views (Polars writes them)
    else:
        # Picked before conversion: converting a whole block (text to string views) only to keep a few
        # rows cost a third of the time (10M Arrow file, 5,000 rows: 1.3 -> 0.9 s).
        picked = _as_frame(block.take(pa.array(local)))
    # As text, in new buffers: gathered string views still point into the whole block's buffers, which
    # would keep every block read so far in memory (the quarantine file is text anyway).
    return picked.select(S.as_text(c, t) for c, t in picked.schema.items()).with_columns(
        pl.Series(S.SOURCE_ROW, local + start + 1, pl.UInt32)
    )


def file_sha256(path: Path) -> str:
    """The sha256 of a file, streamed."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class BackgroundDigests:
    """The sha256 of each input file, computed on a background thread while the scan runs (file reads and
    hashlib release the GIL): the summary's digests cost a whole extra read of the input (10M-row Parquet
    file 0.36 s, the 7.3 GB of a 100M-row Arrow input 7.7 s) that now overlaps the stages instead of
    following them."""

    def __init__(self, paths: list[Path]) -> None:
        self._digests: dict[Path, str] = {}
        self._thread = threading.Thread(target=self._run, args=(paths,), name="followmoney-sha256", daemon=True)
        self._thread.start()

    def _run(self, paths: list[Path]) -> None:
        for path in paths:
            try:
                self._digests[path] = file_sha256(path)
            except OSError:
                return  # sha256() hashes it again in the caller's thread, which then sees the error

    def sha256(self, path: Path) -> str:
        """The digest of `path` (waits for the thread; hashes here if it was not one of the paths)."""
        self._thread.join()
        return self._digests.get(path) or file_sha256(path)
