"""Find transaction files (file, directory or glob), check their columns, and load them as frames.

Reading is split from normalising: this module knows file formats, column mapping and dtypes
that make a *file* unusable; `normalise.py` judges *values* and splits off quarantined rows.
"""

from __future__ import annotations

import codecs
import glob as globlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from followmoney import schema as S
from followmoney.config import ReadOptions
from followmoney.errors import InputError

ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
DATA_SUFFIXES = ARROW_SUFFIXES + PARQUET_SUFFIXES + (".csv",)
IGNORED_NAMES = ("_SUCCESS",)


@dataclass(frozen=True)
class InputFile:
    """One transaction file, its format and its schema under contract column names."""

    path: Path
    fmt: str  # "arrow" | "parquet" | "csv"
    columns: dict[str, pl.DataType]  # contract name -> dtype as stored (CSV: all String)
    source_names: dict[str, str]  # contract name -> column name in the file
    extra_columns: tuple[str, ...]  # columns in the file that the contract does not know
    csv_path: Path  # for CSV: the UTF-8 file actually read (a transcoded temp copy if --encoding)

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


def _transcode_to_utf8(path: Path, encoding: str) -> Path:
    """Copy a CSV in another encoding to a temporary UTF-8 file, streaming."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(f"unknown encoding '{encoding}'", file=str(path)) from None
    fd, tmp = tempfile.mkstemp(prefix="followmoney-", suffix=".csv")
    try:
        with open(path, encoding=encoding, newline="") as src, os.fdopen(fd, "w", encoding="utf-8", newline="") as dst:
            for block in iter(lambda: src.read(1 << 20), ""):
                dst.write(block)
    except UnicodeDecodeError as exc:
        os.unlink(tmp)
        raise InputError(f"bytes not valid in encoding '{encoding}' ({exc.reason})", file=str(path)) from None
    return Path(tmp)


def _first_invalid_utf8_line(path: Path) -> int | None:
    """The 1-based line of the first byte sequence that is not UTF-8, or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                return line + block[: exc.start].count(b"\n")
            line += block.count(b"\n")
    return None


def _raw_schema(path: Path, fmt: str, options: ReadOptions) -> tuple[dict[str, pl.DataType], Path]:
    """The file's own column names and dtypes (CSV: all String); raises on unreadable files."""
    label = str(path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)", file=label)
    try:
        if fmt == "arrow":
            with pa.memory_map(str(path)) as source:
                reader = ipc.open_file(source)
                arrow_schema = reader.schema
            frame = pl.from_arrow(arrow_schema.empty_table())
            assert isinstance(frame, pl.DataFrame)
            return dict(frame.schema), path
        if fmt == "parquet":
            pq.read_metadata(str(path))  # fails on a truncated footer
            return dict(pl.read_parquet_schema(path)), path
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"unreadable or truncated {fmt} file ({_short(exc)})", file=label) from None
    csv_path = _transcode_to_utf8(path, options.encoding) if options.encoding else path
    if options.encoding is None:
        bad_line = _first_invalid_utf8_line(path)
        if bad_line is not None:
            raise InputError(
                f"line {bad_line}: bytes that are not UTF-8; pass --encoding (e.g. --encoding cp1252)",
                file=label,
            )
    try:
        header = pl.scan_csv(
            csv_path, separator=options.csv_delimiter, infer_schema=False, encoding="utf8"
        ).collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"unreadable CSV ({_short(exc)})", file=label) from None
    return dict(header), csv_path


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def inspect_files(paths: Iterable[Path], options: ReadOptions) -> list[InputFile]:
    """Check every file's columns and dtypes before any data is loaded; raise on the first bad file."""
    inspected: list[InputFile] = []
    for path in paths:
        fmt = file_format(path)
        raw, csv_path = _raw_schema(path, fmt, options)
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
        inspected.append(InputFile(path, fmt, columns, present, extra, csv_path))
    return inspected


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


def scan_file(info: InputFile, options: ReadOptions) -> pl.LazyFrame:
    """A lazy scan of one file, with contract column names, string ids, and a 1-based `_source_row`."""
    if info.fmt == "arrow":
        lf = pl.scan_ipc(info.path)
    elif info.fmt == "parquet":
        lf = pl.scan_parquet(info.path)
    else:
        lf = pl.scan_csv(
            info.csv_path,
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


def load_columns(info: InputFile, options: ReadOptions, names: Iterable[str]) -> pl.DataFrame:
    """Load the given contract columns (those present) plus `_source_row` from one file."""
    wanted = [n for n in names if n in info.columns]
    lf = scan_file(info, options).select(
        pl.col(S.SOURCE_ROW), *[_typed(n, info.columns[n], info.fmt).alias(n) for n in wanted]
    )
    try:
        return lf.collect()
    except (pl.exceptions.PolarsError, pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"unreadable or corrupt {info.fmt} data ({_short(exc)})", file=info.label) from None


def load_rows(info: InputFile, options: ReadOptions, rows: pl.Series) -> pl.DataFrame:
    """All columns of the given 1-based rows of one file, as text, for the quarantine file."""
    lf = scan_file(info, options).filter(pl.col(S.SOURCE_ROW).is_in(rows.implode()))
    try:
        frame = lf.collect()
    except (pl.exceptions.PolarsError, pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"unreadable or corrupt {info.fmt} data ({_short(exc)})", file=info.label) from None
    return frame.with_columns(pl.exclude(S.SOURCE_ROW).cast(pl.String))


def file_sha256(path: Path) -> str:
    """The sha256 of a file, streamed."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
