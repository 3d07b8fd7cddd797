"""Kind `recurring_pair`: regular, small, stable payments from one payer (or several payers taking
turns, or one payer through an intermediary) to one receiver.

Three kinds of series are built with Polars and fitted by one Numba kernel (`schedule_regularity`):
- `direct`: one payer -> one receiver;
- `rotating`: every small payment into one receiver, whoever pays (candidates need >= 2 payers among
  the payments that keep the schedule; link requirements then ask that they share a listed network);
- `via`: payer -> intermediary, forwarded by the intermediary to a receiver within `forward_days`
  (the forwarded leg's time and amount make the series; both legs are evidence).
The kernel is robust to jitter, missed periods, a slowly drifting period and stray extra payments
(see kernels.schedule_regularity); amounts may drift slowly (a trend-adjusted CV is also accepted).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import polars as pl

from followmoney import schema as S
from followmoney.detectors.base import (
    OWNER_KEY,
    Detector,
    OfficialScreen,
    Param,
    candidate_head,
    ownership,
)
from followmoney.kernels import schedule_regularity_threads
from followmoney.normalise import RECEIVER_KEY, SENDER_KEY
from followmoney.sorting import group_starts

PERIOD_DAYS = {"weekly": 7.0, "fortnightly": 14.0, "monthly": 30.4375}
_DAY_US = 86_400_000_000.0
_VARIANTS = {"direct": 0, "rotating": 1, "via": 2}
ROUTE_TEXT = {
    "direct": "from one payer",
    "rotating": "from several payers taking turns",
    "via": "through an intermediary who forwarded each payment",
}


def _series(txns: pl.DataFrame, params: dict[str, Any], receivers: pl.Series | None = None) -> pl.DataFrame:
    """Rows of every series to fit, sorted by series then time: (variant, k1, k2, k3, ts, row, row_in).

    With `receivers` (the receiver keys a series may end at), only series paid to those are built.

    Only what the schedule fit needs is carried (a dump's small payments are most of it): `row` (the
    payment; for a forwarded series its forwarded leg, whose time and amount make the series) and
    `row_in` (the leg into the intermediary) index `txns`, whose amounts and ids are read for kept rows only."""
    min_count = int(params["min_count"])
    cap = 3.0 * float(params["max_median_usd"])  # larger payments cannot be part of a small series
    small = (
        txns.lazy()
        .with_row_index("_row")
        .filter(pl.col(S.AMOUNT_USD) <= cap)
        .select(SENDER_KEY, RECEIVER_KEY, S.TS, S.AMOUNT_USD, "_row", *ownership(txns))
    )
    # A series is (variant, k1, k2, k3). Each variant is sorted on its own (fewer keys than one sort of
    # all); concatenated in variant order they are sorted by (variant, k1, k2, k3, time, row): ties in
    # time keep input order, as `small` is in row order and the sorts are stable.
    cols = ["_variant", "_k1", "_k2", "_k3", S.TS, "_row", "_row_in"]
    no_leg = pl.lit(None, pl.UInt32).alias("_row_in")
    # A receiver's payments are all kept or all left out, so every kept series is whole.
    paid = small if receivers is None else small.filter(pl.col(RECEIVER_KEY).is_in(receivers.implode()))
    parts = [
        paid.filter(pl.col("_own_s"))
        .filter(pl.len().over(SENDER_KEY, RECEIVER_KEY) >= min_count)
        .sort(SENDER_KEY, RECEIVER_KEY, S.TS, maintain_order=True)
        .select(
            pl.lit(_VARIANTS["direct"], pl.Int8).alias("_variant"),
            pl.col(SENDER_KEY).alias("_k1"),
            pl.col(RECEIVER_KEY).alias("_k2"),
            pl.lit(0, pl.UInt64).alias("_k3"),
            S.TS,
            "_row",
            no_leg,
        )
    ]
    if params["rotating_payers"]:
        payer = pl.col(SENDER_KEY)
        # >= 2 distinct payers: the smallest and the largest payer key differ (cheaper than n_unique).
        several = payer.min().over(RECEIVER_KEY) != payer.max().over(RECEIVER_KEY)
        parts.append(
            paid.filter(pl.col("_own_r"))
            .filter((pl.len().over(RECEIVER_KEY) >= min_count) & several)
            .sort(RECEIVER_KEY, S.TS, maintain_order=True)
            .select(
                pl.lit(_VARIANTS["rotating"], pl.Int8).alias("_variant"),
                pl.col(RECEIVER_KEY).alias("_k1"),
                pl.lit(0, pl.UInt64).alias("_k2"),
                pl.lit(0, pl.UInt64).alias("_k3"),
                S.TS,
                "_row",
                no_leg,
            )
        )
    forward_days = float(params["forward_days"])
    if forward_days > 0:
        via = _via_series(small, forward_days, min_count, receivers).select(cols)
        parts.append(via.sort("_k1", "_k2", "_k3", S.TS, "_row"))
    return pl.concat(parts).collect()


def _owner() -> pl.Expr:
    """Whose transfers make a series whole: the payer of a direct series (k1), the receiver of a rotating
    one (k1) and the intermediary of a forwarded one (k3)."""
    return pl.when(pl.col("_variant") == _VARIANTS["via"]).then(pl.col("_k3")).otherwise(pl.col("_k1"))


def _payment_facts(kept: pl.DataFrame, txns: pl.DataFrame) -> pl.DataFrame:
    """Kept series rows with the amount, round-amount and cross-border facts of their payment (`row`)."""
    has_countries = S.SENDER_COUNTRY in txns.columns and S.RECEIVER_COUNTRY in txns.columns
    cross = (
        (pl.col(S.SENDER_COUNTRY) != pl.col(S.RECEIVER_COUNTRY)).fill_null(False) if has_countries else pl.lit(False)
    )
    facts = txns.select(S.AMOUNT_USD, ((pl.col(S.AMOUNT) % 100).abs() < 1e-9).alias("_round"), cross.alias("_cross"))[
        kept["_row"]
    ]
    return kept.hstack(facts)


def _via_series(
    small: pl.LazyFrame, forward_days: float, min_count: int, receivers: pl.Series | None = None
) -> pl.LazyFrame:
    """Payer -> intermediary legs matched to the intermediary's next send within forward_days (similar amount);
    one series per (payer, intermediary, receiver), so an intermediary's transfers make it whole.

    With `receivers`, only intermediaries that pay one of them are followed (each with all its receipts and
    sends, as a leg is matched to the intermediary's next send to anyone), and only series ending there kept."""
    # The intermediary owns the series: its receipts (inbound legs) and its sends (outbound legs).
    inbound = small.filter(pl.col("_own_r")).select(
        pl.col(RECEIVER_KEY).alias("_mid"),
        pl.col(SENDER_KEY).alias("_k1"),
        pl.col(S.TS).alias("_ts_in"),
        pl.col(S.AMOUNT_USD).alias("_amount_in"),
        pl.col("_row").alias("_row_in"),
    )
    outbound = small.filter(pl.col("_own_s")).select(
        pl.col(SENDER_KEY).alias("_mid"),
        pl.col(RECEIVER_KEY).alias("_k2"),
        S.TS,
        S.AMOUNT_USD,
        "_row",
        pl.col(S.TS).alias("_ts_out"),
    )
    if receivers is not None:
        mids = small.filter(pl.col(RECEIVER_KEY).is_in(receivers.implode())).select(pl.col(SENDER_KEY).alias("_mid"))
        mids = mids.unique()
        inbound = inbound.join(mids, on="_mid", how="semi", maintain_order="left")
        outbound = outbound.join(mids, on="_mid", how="semi", maintain_order="left")
    # Sorted after the screen: sorting a dump's every small payment by time first cost 1.5 s per 10M rows.
    inbound = inbound.sort("_ts_in", maintain_order=True)
    outbound = outbound.sort("_ts_out", maintain_order=True)
    joined = inbound.join_asof(
        outbound,
        left_on="_ts_in",
        right_on="_ts_out",
        by="_mid",
        strategy="forward",
        check_sortedness=False,
        tolerance=f"{round(forward_days * 86_400)}s",
    )
    ratio = pl.col(S.AMOUNT_USD) / pl.col("_amount_in")
    if receivers is not None:
        joined = joined.filter(pl.col("_k2").is_in(receivers.implode()))
    return (
        joined.filter(pl.col("_k2").is_not_null() & (pl.col("_k1") != pl.col("_k2")) & ratio.is_between(0.8, 1.05))
        .filter(pl.len().over("_k1", "_k2", "_mid") >= min_count)
        .select(
            pl.lit(_VARIANTS["via"], pl.Int8).alias("_variant"),
            "_k1",
            "_k2",
            pl.col("_mid").alias("_k3"),
            S.TS,
            "_row",
            "_row_in",
        )
    )


def _with_ids(kept: pl.DataFrame, txns: pl.DataFrame) -> pl.DataFrame:
    """Kept series rows with their ids read from `txns`: payer, receiver, intermediary and evidence txn_ids."""
    row, row_in = kept["_row"], kept["_row_in"]
    sender, receiver, txn = txns[S.SENDER_ID], txns[S.RECEIVER_ID], txns[S.TXN_ID]
    via = row_in.is_not_null()
    in_sender = sender.gather(row_in.fill_null(0))
    in_txn = txn.gather(row_in.fill_null(0))
    return kept.with_columns(
        pl.Series("_payer", sender.gather(row)).zip_with(~via, in_sender).alias("_payer"),
        pl.Series("_receiver", receiver.gather(row)),
        pl.when(pl.lit(via)).then(pl.lit(sender.gather(row))).otherwise(None).alias("_via"),
        pl.when(pl.lit(via))
        .then(pl.concat_list(pl.lit(in_txn), pl.lit(txn.gather(row))))
        .otherwise(pl.concat_list(pl.lit(txn.gather(row))))
        .alias("_txn_ids"),
    )


class RecurringPair(Detector):
    """A payer->receiver series (or receiver series with payers taking turns, or a series forwarded by an
    intermediary) with >= min_count payments on a weekly/fortnightly/monthly schedule (jitter, missed
    periods and stray payments allowed) of small, stable (or slowly drifting, or round) amounts."""

    kind = "recurring_pair"
    summary = "regular, small, stable payments from one payer (or payers taking turns, or via a go-between)"
    params: ClassVar[dict[str, Param]] = {
        "min_count": Param(int, 4, "fewest payments that keep the schedule"),
        "periods": Param(list, ["weekly", "fortnightly", "monthly"], "schedules to try", tuple(PERIOD_DAYS)),
        "max_missed": Param(int, 2, "missed periods allowed over the series"),
        "max_gap_cv": Param(
            float, 0.35, "largest spread of payment times around the schedule, as a share of the period"
        ),
        "max_period_error": Param(float, 0.2, "largest relative difference between fitted and nominal period"),
        "jitter_days": Param(float, 3.0, "how far (days) a payment may fall from its schedule point"),
        "max_extra_share": Param(float, 0.25, "largest share of payments off the schedule (stray or doubled)"),
        "max_median_usd": Param(float, 500.0, "largest median payment (small payments only)"),
        "max_amount_cv": Param(float, 0.25, "largest coefficient of variation of amounts (raw or trend-adjusted)"),
        "min_round_share": Param(float, 0.8, "or: at least this share of amounts are multiples of 100"),
        "rotating_payers": Param(bool, True, "also fit all small payments into a receiver, whoever pays"),
        "forward_days": Param(
            float, 2.0, "also fit series forwarded by an intermediary within this many days (0 = off)"
        ),
    }
    evidence: ClassVar[dict[str, pl.DataType]] = {
        "route": pl.String(),
        "route_text": pl.String(),
        "via_id": pl.String(),
        "n_payers": pl.Int64(),
        "member_ids": pl.List(pl.String()),
        "period_name": pl.String(),
        "period_days": pl.Float64(),
        "fitted_period_days": pl.Float64(),
        "gap_cv": pl.Float64(),
        "max_deviation_days": pl.Float64(),
        "missed_periods": pl.Int64(),
        "extra_payments": pl.Int64(),
        "amount_median": pl.Float64(),
        "amount_min": pl.Float64(),
        "amount_max": pl.Float64(),
        "amount_cv": pl.Float64(),
        "amount_trend_cv": pl.Float64(),
        "round_share": pl.Float64(),
        "cross_border": pl.Boolean(),
    }

    def detect(
        self, txns: pl.DataFrame, params: dict[str, Any], officials: OfficialScreen | None = None
    ) -> pl.DataFrame:
        """Every series that keeps a schedule with small, stable amounts."""
        min_count = int(params["min_count"])
        # Every series' counterparty is its receiver (a forwarded series': the intermediary's receiver).
        receivers = officials.keys if officials is not None and officials.side == "counterparty" else None
        sub = _series(txns, params, receivers)
        if sub.height == 0:
            return self.empty()
        starts = group_starts(sub.select("_variant", "_k1", "_k2", "_k3"))
        periods = np.sort(np.array([PERIOD_DAYS[p] for p in params["periods"]], dtype=np.float64))[::-1].copy()
        t_days = np.ascontiguousarray(sub[S.TS].dt.epoch("us").to_numpy().astype(np.float64) / _DAY_US)
        period, p_hat, cv, dev, missed, _used_n, used = schedule_regularity_threads(
            starts,
            t_days,
            periods,
            np.int64(params["max_missed"]),
            np.float64(params["max_gap_cv"]),
            np.float64(params["max_period_error"]),
            np.float64(params["jitter_days"]),
            np.float64(params["max_extra_share"]),
            threads=os.cpu_count() or 1,
        )
        sizes = np.diff(starts)
        gid = np.repeat(np.arange(sizes.shape[0], dtype=np.int64), sizes)
        fits = pl.DataFrame(
            {
                "_gid": np.arange(sizes.shape[0], dtype=np.int64),
                "_size": sizes.astype(np.int64),
                "period_days": period,
                "fitted_period_days": np.round(p_hat, 2),
                "gap_cv": np.round(cv, 3),
                "max_deviation_days": np.round(dev, 1),
                "missed_periods": missed,
            }
        ).filter(pl.col("period_days") > 0)
        kept = sub.with_columns(pl.Series("_gid", gid), pl.Series("_used", used)).filter(pl.col("_used"))
        if kept.height == 0 or fits.height == 0:
            return self.empty()
        kept = _with_ids(_payment_facts(kept.filter(pl.col("_gid").is_in(fits["_gid"].implode())), txns), txns)
        amount = pl.col(S.AMOUNT_USD)
        t = pl.col(S.TS).dt.epoch("s").cast(pl.Float64) / 86_400.0
        resid_var = (amount.var(ddof=0) - pl.cov(t, amount, ddof=0).pow(2) / t.var(ddof=0)).clip(0, None)
        payers = pl.col("_payer")
        stats = (
            kept.group_by("_gid")
            .agg(
                pl.col("_variant").first(),
                _owner().first().alias(OWNER_KEY),
                payers.mode().sort().first().alias("subject_id"),
                pl.col("_receiver").first().alias("counterparty_id"),
                pl.col("_via").drop_nulls().mode().sort().first().alias("via_id"),
                payers.n_unique().cast(pl.Int64).alias("n_payers"),
                payers.unique().sort().alias("member_ids"),
                pl.col(S.TS).min().alias("window_start"),
                pl.col(S.TS).max().alias("window_end"),
                pl.len().cast(pl.Int64).alias("n_txns"),
                amount.sum().alias("total_usd"),
                pl.col("_txn_ids").explode().unique().sort().alias("txn_ids"),
                amount.median().alias("amount_median"),
                amount.min().alias("amount_min"),
                amount.max().alias("amount_max"),
                (amount.std(ddof=0) / amount.mean()).alias("amount_cv"),
                (resid_var.sqrt() / amount.mean()).fill_nan(0.0).alias("amount_trend_cv"),
                pl.col("_round").mean().alias("round_share"),
                pl.col("_cross").any().alias("cross_border"),
            )
            .join(fits, on="_gid", how="inner")
        )
        names = {v: k for k, v in PERIOD_DAYS.items()}
        variant_names = {v: k for k, v in _VARIANTS.items()}
        stats = stats.with_columns(
            pl.col("period_days").replace_strict(names, default=None, return_dtype=pl.String).alias("period_name"),
            pl.col("_variant").replace_strict(variant_names, return_dtype=pl.String).alias("route"),
            (pl.col("_size") - pl.col("n_txns")).alias("extra_payments"),
        ).with_columns(
            pl.col("route").replace_strict(ROUTE_TEXT, return_dtype=pl.String).alias("route_text"),
        )
        amount_ok = pl.min_horizontal("amount_cv", "amount_trend_cv") <= params["max_amount_cv"]
        stable = amount_ok | (pl.col("round_share") >= params["min_round_share"])
        found = stats.filter(
            (pl.col("n_txns") >= min_count)
            & (pl.col("amount_median") <= params["max_median_usd"])
            & stable
            & ((pl.col("route") != "rotating") | (pl.col("n_payers") >= 2))
        ).sort("_variant", "subject_id", "counterparty_id", "window_start")
        count_term = ((pl.col("n_txns") - min_count + 1) / 9).clip(0, 1)
        regular_term = (1 - pl.col("gap_cv") / params["max_gap_cv"]).clip(0, 1)
        amount_term = (1 - pl.min_horizontal("amount_cv", "amount_trend_cv") / params["max_amount_cv"]).clip(0, 1)
        return found.select(
            *candidate_head(0.4 * count_term + 0.3 * regular_term + 0.3 * amount_term),
            *self.evidence,
            OWNER_KEY,
        ).cast(self.evidence)  # type: ignore[arg-type]
