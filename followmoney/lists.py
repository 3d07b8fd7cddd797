"""Read the officials list (OpenSanctions targets.simple.csv layout) and the known-networks list.

Both become one frame of list entries: list_kind, list_id, network_id, name, names (name + aliases),
countries (upper-case ISO2), phones, role, dataset. Each entry keeps its source id so alerts cite it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from followmoney import schema as S
from followmoney.errors import InputError

LIST_ENTRY_SCHEMA: dict[str, pl.DataType] = {
    "list_kind": pl.String(),
    "list_id": pl.String(),
    "network_id": pl.String(),
    "name": pl.String(),
    "names": pl.List(pl.String()),
    "countries": pl.List(pl.String()),
    "phones": pl.List(pl.String()),
    "role": pl.String(),
    "dataset": pl.String(),
}


def _broken_csv_line(path: Path) -> int | None:
    """The line where Python's csv module first fails on the file (error path only)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            width = None
            for row in reader:
                if width is None:
                    width = len(row)
                elif row and len(row) != width:
                    return reader.line_num
    except csv.Error:
        return reader.line_num
    except UnicodeDecodeError:
        return None
    return None


def _read_list_csv(path: Path, required: tuple[str, ...], what: str) -> pl.DataFrame:
    label = str(path)
    if not path.is_file():
        raise InputError(f"{what} file not found", file=label)
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8", raise_if_empty=True)
    except (pl.exceptions.PolarsError, OSError) as exc:
        line = _broken_csv_line(path)
        where = f"{label} line {line}" if line else label
        raise InputError(f"unreadable {what} CSV ({' '.join(str(exc).split())[:150]})", file=where) from None
    frame = frame.rename({c: c.lstrip("\ufeff").strip() for c in frame.columns})
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"{what} list lacks required column(s): {', '.join(missing)}", file=label)
    line = _broken_csv_line(path)
    if line is not None:
        raise InputError(f"broken quoting or a ragged row in the {what} list", file=f"{label} line {line}")
    blank = frame.with_row_index("_line", offset=2).filter(
        pl.any_horizontal([pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in required])
    )
    if blank.height:
        raise InputError(f"{what} list row without {' or '.join(required)}", file=f"{label} line {blank['_line'][0]}")
    return frame


def _multi(name: str, frame: pl.DataFrame) -> pl.Expr:
    """A `;`-separated column as a list of trimmed, non-empty strings (empty list when absent)."""
    if name not in frame.columns:
        return pl.lit([], pl.List(pl.String())).alias(name)
    return (
        pl.col(name)
        .fill_null("")
        .str.split(";")
        .list.eval(pl.element().str.strip_chars().filter(pl.element() != ""))
        .alias(name)
    )


def _opt(name: str, frame: pl.DataFrame) -> pl.Expr:
    return pl.col(name) if name in frame.columns else pl.lit(None, pl.String)


def load_officials(path: Path) -> pl.DataFrame:
    """Officials in the OpenSanctions targets.simple.csv layout, as list entries."""
    frame = _read_list_csv(path, S.OFFICIAL_REQUIRED, "officials")
    frame = frame.with_columns(_multi("aliases", frame), _multi("countries", frame), _multi("phones", frame))
    return frame.select(
        pl.lit("official").alias("list_kind"),
        pl.col("id").str.strip_chars().alias("list_id"),
        pl.lit(None, pl.String).alias("network_id"),
        pl.col("name").str.strip_chars().alias("name"),
        pl.concat_list(pl.col("name").str.strip_chars(), "aliases").alias("names"),
        pl.col("countries").list.eval(pl.element().str.to_uppercase()),
        "phones",
        _opt("sanctions", frame).alias("role"),
        _opt("dataset", frame).alias("dataset"),
    ).cast(LIST_ENTRY_SCHEMA)  # type: ignore[arg-type]


def load_networks(path: Path) -> pl.DataFrame:
    """Known trafficking-network members (network_id, entity_id, name, ...), as list entries."""
    frame = _read_list_csv(path, S.NETWORK_REQUIRED, "networks")
    frame = frame.with_columns(_multi("aliases", frame), _multi("countries", frame), _multi("phones", frame))
    return frame.select(
        pl.lit("network").alias("list_kind"),
        pl.col("entity_id").str.strip_chars().alias("list_id"),
        pl.col("network_id").str.strip_chars(),
        pl.col("name").str.strip_chars().alias("name"),
        pl.concat_list(pl.col("name").str.strip_chars(), "aliases").alias("names"),
        pl.col("countries").list.eval(pl.element().str.to_uppercase()),
        "phones",
        _opt("role", frame).alias("role"),
        pl.lit(None, pl.String).alias("dataset"),
    ).cast(LIST_ENTRY_SCHEMA)  # type: ignore[arg-type]


def empty_entries() -> pl.DataFrame:
    """A list-entry frame with no rows (no list given)."""
    return pl.DataFrame(schema=LIST_ENTRY_SCHEMA)
