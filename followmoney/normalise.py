"""Types, UTC timestamps, amount_usd, party keys; split clean rows from quarantined ones (with reasons).

Value-level problems of single rows become quarantine reasons; problems that make a whole column
unusable (naive timestamps without --assume-tz, amounts that are text) stop the run with an
InputError naming the file, the column and the first row at fault.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from followmoney import schema as S
from followmoney.errors import InputError

MIN_TS = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
PARTY_KEY_SEED = 0x5EED_F011  # fixed: party keys must be identical across runs
SENDER_KEY = "sender_key"
RECEIVER_KEY = "receiver_key"

_ZONED = r"(?:[+-]\d{2}:?\d{2})$"
_NAIVE = r"^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
_ZONED_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


@dataclass(frozen=True)
class FxTable:
    """USD per unit of each currency, optionally by date (as-of the transfer's date)."""

    rates: pl.DataFrame  # currency, usd_per_unit[, date]

    @property
    def dated(self) -> bool:
        """Whether rates vary by date."""
        return "date" in self.rates.columns


def load_fx(path: Path) -> FxTable:
    """Read an FX CSV (`currency, usd_per_unit` and optionally `date`)."""
    label = str(path)
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"unreadable FX table ({' '.join(str(exc).split())[:150]})", file=label) from None
    missing = [c for c in ("currency", "usd_per_unit") if c not in frame.columns]
    if missing:
        raise InputError(f"FX table lacks column(s) {', '.join(missing)}", file=label)
    cols = [
        pl.col("currency").str.strip_chars().str.to_uppercase(),
        pl.col("usd_per_unit").str.strip_chars().cast(pl.Float64, strict=False),
    ]
    if "date" in frame.columns:
        cols.append(pl.col("date").str.strip_chars().str.to_date("%Y-%m-%d", strict=False))
    rates = frame.select(cols).with_row_index("_line", offset=2)
    bad = rates.filter(
        pl.any_horizontal(pl.all().exclude("_line").is_null())
        | ~pl.col("usd_per_unit").is_finite()
        | (pl.col("usd_per_unit") <= 0)
    )
    if bad.height:
        raise InputError(
            "FX rate rows need a currency, a positive usd_per_unit (and a YYYY-MM-DD date)",
            file=f"{label} line {bad['_line'][0]}",
        )
    rates = rates.drop("_line")
    keys = ["currency", "date"] if "date" in rates.columns else ["currency"]
    return FxTable(rates.unique(subset=keys, keep="last").sort(keys))


def _check_amount_text(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    """CSV amounts: parse text as numbers; a value that is not a number stops the run."""
    for name in S.FLOAT_TXN_COLUMNS:
        if name not in frame.columns or frame.schema[name] != pl.String:
            continue
        text = pl.col(name).str.strip_chars()
        parsed = text.cast(pl.Float64, strict=False)
        bad = frame.filter(parsed.is_null() & text.is_not_null() & (text != ""))
        if bad.height:
            value = bad[name][0]
            raise InputError(
                f"'{value}' is not a number (amounts must be plain numbers: no thousands separators or "
                f"currency signs); {bad.height} such row(s)",
                file=label,
                column=name,
                row=int(bad[S.SOURCE_ROW][0]),
            )
        frame = frame.with_columns(parsed.alias(name))
    return frame


def _zone(assume_tz: str, label: str) -> str:
    try:
        ZoneInfo(assume_tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"--assume-tz '{assume_tz}' is not a known time zone (e.g. Asia/Bangkok, UTC)", file=label
        ) from None
    return assume_tz


def _naive_error(label: str, row: int | None) -> InputError:
    return InputError(
        "timestamps have no time zone; pass --assume-tz ZONE (e.g. --assume-tz Asia/Bangkok) "
        "or export them with a UTC offset",
        file=label,
        column=S.TS,
        row=row,
    )


def _parse_ts(frame: pl.DataFrame, label: str, assume_tz: str | None) -> pl.DataFrame:
    """Turn `ts` into UTC datetimes; naive values need --assume-tz; unparsable values become null."""
    dtype = frame.schema[S.TS]
    col = pl.col(S.TS)
    first_row = int(frame[S.SOURCE_ROW][0]) if frame.height else None
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return frame.with_columns(col.dt.convert_time_zone(S.UTC).dt.cast_time_unit("us"))
        if assume_tz is None:
            raise _naive_error(label, first_row)
        zone = _zone(assume_tz, label)
        return frame.with_columns(
            col.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone(S.UTC)
            .dt.cast_time_unit("us")
        )
    if dtype == pl.Date:
        if assume_tz is None:
            raise _naive_error(label, first_row)
        zone = _zone(assume_tz, label)
        return frame.with_columns(
            col.cast(pl.Datetime("us"))
            .dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone(S.UTC)
        )
    # Text: ISO 8601 with 'T' or ' ', with or without offset/Z/UTC; anything else is unparsable.
    text = (
        col.str.strip_chars()
        .str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
        .str.replace(r"(?i)\s*(?:z|utc|gmt)$", "+00:00")
        .str.replace(r"\s+([+-]\d{2}:?\d{2})$", "${1}")
        .str.replace(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?[+-]\d{2})$", "${1}:00")  # +07 -> +07:00
    )
    frame = frame.with_columns(text.alias("_ts_text"))
    t = pl.col("_ts_text")
    epoch = frame.filter(t.str.contains(r"^[+-]?\d{9,}(?:\.\d*)?$"))
    if epoch.height:
        raise InputError(
            f"'{epoch[S.TS][0]}' looks like an integer timestamp, which is ambiguous (seconds? milliseconds?); "
            "export ISO 8601 with a UTC offset",
            file=label,
            column=S.TS,
            row=int(epoch[S.SOURCE_ROW][0]),
        )
    zoned = t.str.contains(_ZONED)
    naive = t.str.contains(_NAIVE)
    kinds = frame.select(
        zoned.any().alias("any_zoned"),
        naive.any().alias("any_naive"),
        pl.col(S.SOURCE_ROW).filter(naive).first().alias("naive_row"),
    ).row(0, named=True)
    if kinds["any_naive"] and kinds["any_zoned"]:
        raise InputError(
            "the file mixes time-zone-naive and zoned timestamps; export all with a UTC offset",
            file=label,
            column=S.TS,
            row=kinds["naive_row"],
        )
    if kinds["any_naive"]:
        if assume_tz is None:
            raise _naive_error(label, kinds["naive_row"])
        zone = _zone(assume_tz, label)
        parsed = (
            pl.coalesce([t.str.to_datetime(f, strict=False, time_unit="us") for f in _NAIVE_FORMATS])
            .dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone(S.UTC)
        )
    else:
        parsed = pl.coalesce(
            [t.str.to_datetime(f, strict=False, time_zone=S.UTC, time_unit="us") for f in _ZONED_FORMATS]
        )
    return frame.with_columns(parsed.alias(S.TS), t.is_not_null().alias("_ts_given")).drop("_ts_text")


def _amount_usd(frame: pl.DataFrame, fx: FxTable | None) -> pl.DataFrame:
    """Fill amount_usd: given values first, then USD amounts, then the FX table."""
    cur = pl.col(S.CURRENCY).str.strip_chars().str.to_uppercase()
    frame = frame.with_columns(cur.alias(S.CURRENCY))
    if S.AMOUNT_USD not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.Float64).alias(S.AMOUNT_USD))
    is_usd = pl.col(S.CURRENCY) == "USD"
    derived: pl.Expr = pl.when(is_usd).then(pl.col(S.AMOUNT))
    if fx is not None:
        if fx.dated:
            # Both sides are sorted by date here, so each currency's rows are too: Polars cannot check that with
            # `by` and would print a warning on every scan with a dated FX table.
            frame = (
                frame.with_columns(pl.col(S.TS).dt.date().alias("_date"))
                .sort("_date")
                .join_asof(
                    fx.rates.sort("date"),
                    left_on="_date",
                    right_on="date",
                    by="currency",
                    strategy="backward",
                    check_sortedness=False,
                )
                .drop("_date", "date")
                .sort(S.SOURCE_ROW)
            )
        else:
            frame = frame.join(fx.rates, on=S.CURRENCY, how="left", maintain_order="left")
        derived = pl.when(is_usd).then(pl.col(S.AMOUNT)).otherwise(pl.col(S.AMOUNT) * pl.col("usd_per_unit"))
    frame = frame.with_columns(pl.coalesce(pl.col(S.AMOUNT_USD), derived).alias(S.AMOUNT_USD))
    return frame.drop("usd_per_unit", strict=False)


def has_text(text: pl.Expr) -> pl.Expr:
    """Not null and not blank (something besides white space), without building stripped copies."""
    return text.is_not_null() & ~text.str.contains(r"^\s*$").fill_null(True)


def _blank_agents_as_null(frame: pl.DataFrame) -> pl.DataFrame:
    """A blank agent_id (empty or white space: a CSV's empty field reads as "") is an unknown agent, null as in
    typed files, so it never counts as one more agent (10M rows: 0.15 s)."""
    if S.AGENT_ID not in frame.columns:
        return frame
    agent = pl.col(S.AGENT_ID)
    return frame.with_columns(pl.when(has_text(agent)).then(agent).alias(S.AGENT_ID))


def _reasons(now: dt.datetime, max_amount_usd: float) -> list[tuple[pl.Expr, pl.Expr | str]]:
    """Every quarantine check: (condition, reason text) pairs, in the order reasons are joined."""

    def blank(name: str) -> pl.Expr:
        return ~has_text(pl.col(name))

    amount = pl.col(S.AMOUNT)
    usd = pl.col(S.AMOUNT_USD)
    latest = now + dt.timedelta(days=1)
    checks: list[tuple[pl.Expr, pl.Expr | str]] = [
        (blank(S.TXN_ID), "null or blank txn_id"),
        (blank(S.SENDER_ID), "null or blank sender_id"),
        (blank(S.RECEIVER_ID), "null or blank receiver_id"),
        (pl.col(S.TS).is_null() & ~pl.col("_ts_given"), "null ts"),
        (pl.col(S.TS).is_null() & pl.col("_ts_given"), "unparsable ts"),
        (pl.col(S.TS) < MIN_TS, "ts before 1990-01-01"),
        (pl.col(S.TS) > latest, "ts later than one day after the run"),
        (amount.is_null(), "null amount"),
        (amount.is_nan(), "NaN amount"),
        (amount.is_infinite(), "infinite amount"),
        (amount == 0, "zero amount"),
        (amount < 0, "negative amount"),
        (blank(S.CURRENCY), "null currency"),
        (
            amount.is_finite() & (amount > 0) & ~blank(S.CURRENCY) & usd.is_null(),
            pl.format("no FX rate for currency {}", pl.col(S.CURRENCY)),
        ),
        (
            amount.is_finite() & (amount > 0) & usd.is_not_null() & (~usd.is_finite() | (usd <= 0)),
            "invalid amount_usd",
        ),
        (usd.is_finite() & (usd > max_amount_usd), f"amount_usd above {max_amount_usd:,.0f}"),
    ]
    return checks


def _with_reasons(frame: pl.DataFrame, now: dt.datetime, max_amount_usd: float) -> pl.DataFrame:
    """Add `reason`: the `; `-joined quarantine reasons of each row (null when clean).

    Cheap boolean checks run on every row; the reason text (list building, slow per row) is made
    only for the few rows that fail one, then scattered into place."""
    checks = _reasons(now, max_amount_usd)
    faults = [cond.fill_null(False) for cond, _ in checks]
    # Each check as its own column first: Polars evaluates them side by side, where the same checks inside
    # one any_horizontal run one after another (10M rows: 0.45 s against 1.1 s).
    separate = frame.select(fault.alias(f"_fault{i}") for i, fault in enumerate(faults))
    positions = separate.select(pl.any_horizontal(pl.all()).arg_true()).to_series()
    reason = pl.repeat(None, frame.height, dtype=pl.String, eager=True).alias(S.REASON)
    if positions.len() == 0:
        return frame.with_columns(reason)
    parts = [
        pl.when(cond).then(text if isinstance(text, pl.Expr) else pl.lit(text))
        for cond, (_, text) in zip(faults, checks, strict=True)
    ]
    texts = frame[positions].select(pl.concat_list(parts).list.drop_nulls().list.join("; ")).to_series()
    # Scatter into a null column: no copy of the other columns (a join would copy the whole frame).
    return frame.with_columns(reason.scatter(positions, texts))


def normalise_file(
    frame: pl.DataFrame,
    label: str,
    *,
    assume_tz: str | None,
    fx: FxTable | None,
    now: dt.datetime,
    max_amount_usd: float,
) -> pl.DataFrame:
    """Type and check one file's rows; adds `reason` (null for rows fit to scan)."""
    frame = _check_amount_text(frame, label)
    if frame.schema[S.TS] == pl.Null:
        frame = frame.with_columns(pl.col(S.TS).cast(pl.Datetime("us", S.UTC)))
    if frame.schema[S.TS] == pl.String:
        frame = _parse_ts(frame, label, assume_tz)
    else:
        # Typed values beyond years 1-9999 (a corrupt file's) would overflow the time-zone conversion: such
        # a value is given but unparsable.
        beyond = S.beyond_calendar(pl.col(S.TS), frame.schema[S.TS]).fill_null(False)
        frame = frame.with_columns(beyond.alias("_ts_beyond")).with_columns(
            pl.when(~pl.col("_ts_beyond")).then(pl.col(S.TS)).alias(S.TS)
        )
        frame = _parse_ts(frame, label, assume_tz).with_columns(
            (pl.col(S.TS).is_not_null() | pl.col("_ts_beyond")).alias("_ts_given")
        )
        frame = frame.drop("_ts_beyond")
    frame = _amount_usd(frame, fx)
    frame = _blank_agents_as_null(frame)
    frame = _with_reasons(frame, now, max_amount_usd)
    return frame.drop("_ts_given")


def mark_duplicates(frame: pl.DataFrame) -> pl.DataFrame:
    """Add 'duplicate txn_id' to every later occurrence of a txn_id (the frame is in file, row order).

    Exact string comparison runs only on rows whose txn_id hash repeats (found by one sort of
    64-bit hashes), so the common case of unique ids costs a hash and a sort, not a string hash table;
    the first-occurrence test and the new reasons are made for those few rows and scattered into place.
    """
    tid = pl.col(S.TXN_ID)
    by_row = frame.select(pl.when(has_text(tid)).then(tid.hash(PARTY_KEY_SEED)).alias("h")).to_series()
    hashes = by_row.drop_nulls().sort()
    repeated = hashes.filter(hashes == hashes.shift(1)).unique()
    if repeated.len() == 0:
        return frame
    reason = pl.col(S.REASON)
    # The rows whose hash repeats, found from the hashes already made (not by hashing every id again).
    rows = by_row.is_in(repeated.implode()).fill_null(False).arg_true()
    later = (
        frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_i"), tid, reason)[rows]
        .filter(~tid.is_first_distinct())
        .select(
            "_i",
            pl.when(reason.is_null())
            .then(pl.lit("duplicate txn_id"))
            .otherwise(reason + "; duplicate txn_id")
            .alias(S.REASON),
        )
    )
    if later.height == 0:
        return frame
    return frame.with_columns(frame[S.REASON].scatter(later["_i"], later[S.REASON]))


def party_keys() -> list[pl.Expr]:
    """Dense-enough integer keys for sender and receiver ids (hash with a fixed seed)."""
    return [
        pl.col(S.SENDER_ID).hash(PARTY_KEY_SEED).alias(SENDER_KEY),
        pl.col(S.RECEIVER_ID).hash(PARTY_KEY_SEED).alias(RECEIVER_KEY),
    ]


def _distinct(values: pl.Series) -> int:
    # An exact hash-set count: 20M keys 0.25 s, against 0.36 s for sorting them and counting the changes.
    return int(pl.select(pl.lit(values).n_unique()).item())


def check_key_collisions(
    clean: pl.DataFrame, sender_rows: pl.Expr | None = None, receiver_rows: pl.Expr | None = None
) -> None:
    """Stop if two distinct party ids hashed to one key (astronomically rare, but never silent).

    A second, independent 64-bit hash is folded with the key: ids that collide on the key differ
    on the fold, so more distinct folds than keys reveals a collision; numeric counts only.
    `sender_rows` / `receiver_rows` (conditions) limit the check to those rows' sender / receiver ids:
    a partition checks the ids it owns, which hold every use of their keys (each key is checked once,
    in the partition owning it, not again in every partition a copy of its transfers went to)."""
    sides = [(S.SENDER_ID, SENDER_KEY, sender_rows), (S.RECEIVER_ID, RECEIVER_KEY, receiver_rows)]
    # Each side's fold is made where its ids are, so only 64-bit numbers are stacked, not the id texts.
    used = pl.concat(
        [
            clean.lazy()
            .filter(pl.lit(True) if rows is None else rows)
            .select(
                pl.col(key_col).alias("key"),
                (pl.col(key_col) * 0x9E3779B97F4A7C15 + pl.col(id_col).hash(PARTY_KEY_SEED + 1)).alias("fold"),
            )
            for id_col, key_col, rows in sides
        ]
    ).collect()
    keys, fold = used["key"], used["fold"]
    if _distinct(fold) != _distinct(keys):
        raise InputError("two party ids share a 64-bit hash key; please report this input to the developers")
