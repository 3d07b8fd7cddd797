"""The data contract as code: column names and Polars dtypes of every frame we read or write."""

from __future__ import annotations

import polars as pl

UTC = "UTC"
TS_DTYPE = pl.Datetime("us", UTC)

# Transactions (input). Order is the order we write them in synthetic worlds.
TXN_ID = "txn_id"
TS = "ts"
SENDER_ID = "sender_id"
SENDER_NAME = "sender_name"
SENDER_COUNTRY = "sender_country"
RECEIVER_ID = "receiver_id"
RECEIVER_NAME = "receiver_name"
RECEIVER_COUNTRY = "receiver_country"
AMOUNT = "amount"
CURRENCY = "currency"
AMOUNT_USD = "amount_usd"
AGENT_ID = "agent_id"
SENDER_PHONE = "sender_phone"
RECEIVER_PHONE = "receiver_phone"

REQUIRED_TXN_COLUMNS: tuple[str, ...] = (
    TXN_ID,
    TS,
    SENDER_ID,
    SENDER_NAME,
    SENDER_COUNTRY,
    RECEIVER_ID,
    RECEIVER_NAME,
    RECEIVER_COUNTRY,
    AMOUNT,
    CURRENCY,
    AGENT_ID,
)
OPTIONAL_TXN_COLUMNS: tuple[str, ...] = (AMOUNT_USD, SENDER_PHONE, RECEIVER_PHONE)
TXN_COLUMNS: tuple[str, ...] = (*REQUIRED_TXN_COLUMNS[:10], AMOUNT_USD, AGENT_ID, SENDER_PHONE, RECEIVER_PHONE)

STRING_TXN_COLUMNS: tuple[str, ...] = (
    TXN_ID,
    SENDER_ID,
    SENDER_NAME,
    SENDER_COUNTRY,
    RECEIVER_ID,
    RECEIVER_NAME,
    RECEIVER_COUNTRY,
    CURRENCY,
    AGENT_ID,
    SENDER_PHONE,
    RECEIVER_PHONE,
)
FLOAT_TXN_COLUMNS: tuple[str, ...] = (AMOUNT, AMOUNT_USD)
ID_COLUMNS: tuple[str, ...] = (TXN_ID, SENDER_ID, RECEIVER_ID, AGENT_ID)

TXN_SCHEMA: dict[str, pl.DataType] = {
    TXN_ID: pl.String(),
    TS: TS_DTYPE,
    SENDER_ID: pl.String(),
    SENDER_NAME: pl.String(),
    SENDER_COUNTRY: pl.String(),
    RECEIVER_ID: pl.String(),
    RECEIVER_NAME: pl.String(),
    RECEIVER_COUNTRY: pl.String(),
    AMOUNT: pl.Float64(),
    CURRENCY: pl.String(),
    AMOUNT_USD: pl.Float64(),
    AGENT_ID: pl.String(),
    SENDER_PHONE: pl.String(),
    RECEIVER_PHONE: pl.String(),
}

# Internal columns added by read/normalise.
SOURCE_FILE = "_source_file"  # index into the list of input files
SOURCE_ROW = "_source_row"  # 1-based data row within its file (header not counted)
REASON = "reason"  # quarantine reason

# Officials (OpenSanctions targets.simple.csv layout).
OFFICIAL_COLUMNS: tuple[str, ...] = (
    "id",
    "schema",
    "name",
    "aliases",
    "birth_date",
    "countries",
    "addresses",
    "identifiers",
    "sanctions",
    "phones",
    "emails",
    "program_ids",
    "dataset",
    "first_seen",
    "last_seen",
    "last_change",
)
OFFICIAL_REQUIRED: tuple[str, ...] = ("id", "name")

# Known networks.
NETWORK_COLUMNS: tuple[str, ...] = ("network_id", "entity_id", "name", "aliases", "phones", "countries", "role")
NETWORK_REQUIRED: tuple[str, ...] = ("network_id", "entity_id", "name")

# Alerts (output), in the order they are written.
ALERT_SCHEMA: dict[str, pl.DataType] = {
    "alert_id": pl.String(),
    "typology": pl.String(),
    "rule_code": pl.String(),
    "subject_id": pl.String(),
    "subject_name": pl.String(),
    "counterparty_id": pl.String(),
    "counterparty_name": pl.String(),
    "official_id": pl.String(),
    "network_id": pl.String(),
    "network_path": pl.String(),
    "window_start": TS_DTYPE,
    "window_end": TS_DTYPE,
    "n_txns": pl.Int64(),
    "total_usd": pl.Float64(),
    "score": pl.Float64(),
    "reasons": pl.String(),
    "txn_ids": pl.List(pl.String()),
}
ALERT_COLUMNS: tuple[str, ...] = tuple(ALERT_SCHEMA)

# Candidate alerts: the one shape every detector returns (see detectors/base.py).
CANDIDATE_BASE_SCHEMA: dict[str, pl.DataType] = {
    "rule_code": pl.String(),
    "subject_id": pl.String(),
    "counterparty_id": pl.String(),
    "window_start": TS_DTYPE,
    "window_end": TS_DTYPE,
    "n_txns": pl.Int64(),
    "total_usd": pl.Float64(),
    "strength": pl.Float64(),
    "txn_ids": pl.List(pl.String()),
}

# Ground-truth labels written by `followmoney synth`.
LABEL_SCHEMA: dict[str, pl.DataType] = {
    "pattern_id": pl.String(),
    "kind": pl.String(),
    "suspicious": pl.Boolean(),
    "typology": pl.String(),
    "variant": pl.String(),
    "subject_id": pl.String(),
    "counterparty_id": pl.String(),
    "party_ids": pl.List(pl.String()),
    "official_id": pl.String(),
    "network_id": pl.String(),
    "threshold_usd": pl.Float64(),
    "txn_ids": pl.List(pl.String()),
}


def usd_total(amounts: pl.Expr) -> pl.Expr:
    """A sum of USD amounts, to the cent, that is the same in any row order (summed as integer cents)."""
    return (amounts * 100).round().cast(pl.Int64).sum().cast(pl.Float64) / 100


_SECONDS_YEAR_1, _SECONDS_YEAR_9999_END = -62_135_596_800, 253_402_300_799  # since the epoch
_DAYS_YEAR_1, _DAYS_YEAR_9999_END = -719_162, 2_932_896
_I64 = (-(2**63), 2**63 - 1)


def beyond_calendar(ts: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """True for a typed timestamp or date outside the years 1-9999 (False for text: parsing judges it)."""
    if isinstance(dtype, pl.Datetime):
        per_second = {"ns": 10**9, "us": 10**6, "ms": 10**3}[dtype.time_unit or "us"]
        lo = max(_I64[0], _SECONDS_YEAR_1 * per_second)
        hi = min(_I64[1], _SECONDS_YEAR_9999_END * per_second)
        physical = ts.to_physical()
        return (physical < lo) | (physical > hi)
    if dtype == pl.Date:
        days = ts.to_physical()
        return (days < _DAYS_YEAR_1) | (days > _DAYS_YEAR_9999_END)
    return pl.lit(False)


def as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """Column `name` as text in new buffers (for the quarantine file); a timestamp or date beyond the years
    1-9999, which Polars cannot format, as its raw number."""
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        beyond = beyond_calendar(col, dtype)
        text = pl.coalesce(pl.when(~beyond).then(col).cast(pl.String), col.to_physical().cast(pl.String))
    else:
        text = col.cast(pl.String)
    return pl.concat_str([text, pl.lit("")]).alias(name)
