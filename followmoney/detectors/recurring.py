"""Kind `recurring_pair`: regular, small, stable payments from one payer to one receiver."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl

from followmoney import schema as S
from followmoney.detectors.base import Detector, Param, group_starts
from followmoney.kernels import schedule_regularity
from followmoney.normalise import RECEIVER_KEY, SENDER_KEY

PERIOD_DAYS = {"weekly": 7.0, "fortnightly": 14.0, "monthly": 30.4375}
_DAY_US = 86_400_000_000.0


class RecurringPair(Detector):
    """A (payer, receiver) pair with >= min_count payments on a weekly/fortnightly/monthly schedule
    (jitter and a few missed periods allowed) of small, stable (or round) amounts."""

    kind = "recurring_pair"
    summary = "regular, small, stable payments from one payer to one receiver"
    params: ClassVar[dict[str, Param]] = {
        "min_count": Param(int, 4, "fewest payments in the series"),
        "periods": Param(list, ["weekly", "fortnightly", "monthly"], "schedules to try", tuple(PERIOD_DAYS)),
        "max_missed": Param(int, 2, "missed periods allowed over the series"),
        "max_gap_cv": Param(
            float, 0.35, "largest spread of payment times around the schedule, as a share of the period"
        ),
        "max_period_error": Param(float, 0.2, "largest relative difference between fitted and nominal period"),
        "max_median_usd": Param(float, 500.0, "largest median payment (small payments only)"),
        "max_amount_cv": Param(float, 0.25, "largest coefficient of variation of amounts (stable amounts)"),
        "min_round_share": Param(float, 0.8, "or: at least this share of amounts are multiples of 100"),
    }
    evidence: ClassVar[dict[str, pl.DataType]] = {
        "period_name": pl.String(),
        "period_days": pl.Float64(),
        "fitted_period_days": pl.Float64(),
        "gap_cv": pl.Float64(),
        "max_deviation_days": pl.Float64(),
        "missed_periods": pl.Int64(),
        "amount_median": pl.Float64(),
        "amount_min": pl.Float64(),
        "amount_max": pl.Float64(),
        "amount_cv": pl.Float64(),
        "round_share": pl.Float64(),
        "cross_border": pl.Boolean(),
    }

    def detect(self, txns: pl.DataFrame, params: dict[str, Any]) -> pl.DataFrame:
        """Every payer->receiver series that keeps a schedule with small, stable amounts."""
        min_count = int(params["min_count"])
        cap = 3.0 * float(params["max_median_usd"])  # larger payments cannot be part of a small series
        pair = [SENDER_KEY, RECEIVER_KEY]
        countries = [c for c in (S.SENDER_COUNTRY, S.RECEIVER_COUNTRY) if c in txns.columns]
        sub = (
            txns.lazy()
            .filter(pl.col(S.AMOUNT_USD) <= cap)
            .select(*pair, S.TS, S.AMOUNT_USD, S.AMOUNT, S.TXN_ID, S.SENDER_ID, S.RECEIVER_ID, *countries)
            .filter(pl.len().over(pair) >= min_count)
            .sort(*pair, S.TS, S.TXN_ID)
            .collect()
        )
        if sub.height == 0:
            return self.empty()
        starts = group_starts(sub.select(pair))
        periods = np.array([PERIOD_DAYS[p] for p in params["periods"]], dtype=np.float64)
        t_days = np.ascontiguousarray(sub[S.TS].dt.epoch("us").to_numpy().astype(np.float64) / _DAY_US)
        period, p_hat, cv, dev, missed = schedule_regularity(
            starts,
            t_days,
            np.sort(periods)[::-1].copy(),
            np.int64(params["max_missed"]),
            np.float64(params["max_gap_cv"]),
            np.float64(params["max_period_error"]),
        )
        sizes = np.diff(starts)
        gid = np.repeat(np.arange(sizes.shape[0], dtype=np.int64), sizes)
        amount = pl.col(S.AMOUNT_USD)
        cross = (
            (pl.col(S.SENDER_COUNTRY) != pl.col(S.RECEIVER_COUNTRY)).any()
            if len(countries) == 2
            else pl.lit(None, pl.Boolean)
        )
        stats = (
            sub.with_columns(pl.Series("_gid", gid))
            .group_by("_gid", maintain_order=True)
            .agg(
                pl.col(S.SENDER_ID).first().alias("subject_id"),
                pl.col(S.RECEIVER_ID).first().alias("counterparty_id"),
                pl.col(S.TS).min().alias("window_start"),
                pl.col(S.TS).max().alias("window_end"),
                pl.len().cast(pl.Int64).alias("n_txns"),
                amount.sum().alias("total_usd"),
                pl.col(S.TXN_ID).sort().alias("txn_ids"),
                amount.median().alias("amount_median"),
                amount.min().alias("amount_min"),
                amount.max().alias("amount_max"),
                (amount.std(ddof=0) / amount.mean()).alias("amount_cv"),
                ((pl.col(S.AMOUNT) % 100).abs() < 1e-9).mean().alias("round_share"),
                cross.alias("cross_border"),
            )
        )
        names = {v: k for k, v in PERIOD_DAYS.items()}
        stats = stats.with_columns(
            pl.Series("period_days", period),
            pl.Series("fitted_period_days", p_hat).round(2),
            pl.Series("gap_cv", cv).round(3),
            pl.Series("max_deviation_days", dev).round(1),
            pl.Series("missed_periods", missed),
        ).with_columns(
            pl.col("period_days").replace_strict(names, default=None, return_dtype=pl.String).alias("period_name")
        )
        stable = (pl.col("amount_cv") <= params["max_amount_cv"]) | (pl.col("round_share") >= params["min_round_share"])
        found = stats.filter(
            (pl.col("period_days") > 0)
            & (pl.col("n_txns") >= min_count)
            & (pl.col("amount_median") <= params["max_median_usd"])
            & stable
        )
        count_term = ((pl.col("n_txns") - min_count + 1) / 9).clip(0, 1)
        regular_term = (1 - pl.col("gap_cv") / params["max_gap_cv"]).clip(0, 1)
        amount_term = (1 - pl.col("amount_cv") / params["max_amount_cv"]).clip(0, 1)
        return found.select(
            pl.lit(None, pl.String).alias("rule_code"),
            "subject_id",
            "counterparty_id",
            "window_start",
            "window_end",
            "n_txns",
            "total_usd",
            (0.4 * count_term + 0.3 * regular_term + 0.3 * amount_term).alias("strength"),
            "txn_ids",
            *self.evidence,
        )
