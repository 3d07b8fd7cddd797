"""Kind `near_threshold_window`: several transfers just under a reporting threshold within a few days."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl

from followmoney import schema as S
from followmoney.detectors.base import Detector, Param, group_starts
from followmoney.kernels import window_clusters
from followmoney.normalise import RECEIVER_KEY, SENDER_KEY

_US_PER_DAY = 86_400_000_000


class NearThresholdWindow(Detector):
    """One party's sends (or receipts) in [band_low*T, T) of a threshold T, >= min_count of them
    within window_days and together >= min_total_factor*T (the classic structuring pattern)."""

    kind = "near_threshold_window"
    summary = "several transfers just under a reporting threshold within a short window"
    params: ClassVar[dict[str, Param]] = {
        "threshold": Param(float, 10_000.0, "reporting threshold T, in `currency`"),
        "currency": Param(
            str, "USD", "USD compares amount_usd of every row; another code compares `amount` of rows in it"
        ),
        "band_low": Param(float, 0.8, "lower edge of the band as a share of T (0 = any amount below T)"),
        "window_days": Param(float, 7.0, "length of the sliding window in days"),
        "min_count": Param(int, 3, "fewest transfers in the window"),
        "min_total_factor": Param(float, 1.0, "their sum must reach this multiple of T"),
        "side": Param(str, "sender", "whose transfers are grouped", ("sender", "receiver")),
    }
    evidence: ClassVar[dict[str, pl.DataType]] = {
        "threshold": pl.Float64(),
        "currency": pl.String(),
        "side": pl.String(),
        "n_agents": pl.Int64(),
        "n_counterparties": pl.Int64(),
        "amount_min": pl.Float64(),
        "amount_max": pl.Float64(),
        "total_amount": pl.Float64(),
        "span_days": pl.Float64(),
    }

    def detect(self, txns: pl.DataFrame, params: dict[str, Any]) -> pl.DataFrame:
        """Clusters of near-threshold transfers per party, one candidate per cluster."""
        threshold = float(params["threshold"])
        currency = str(params["currency"]).upper()
        by_sender = params["side"] == "sender"
        key, party, other = (
            (SENDER_KEY, S.SENDER_ID, S.RECEIVER_ID) if by_sender else (RECEIVER_KEY, S.RECEIVER_ID, S.SENDER_ID)
        )
        value = pl.col(S.AMOUNT_USD) if currency == "USD" else pl.col(S.AMOUNT)
        band = (value >= params["band_low"] * threshold) & (value < threshold)
        if currency != "USD":
            band = band & (pl.col(S.CURRENCY) == currency)
        sub = (
            txns.lazy()
            .filter(band)
            .select(key, S.TS, value.alias("_value"), S.AMOUNT_USD, S.TXN_ID, S.AGENT_ID, party, other)
            .sort(key, S.TS, S.TXN_ID)
            .collect()
        )
        if sub.height == 0:
            return self.empty()
        starts = group_starts(sub.select(key))
        cluster = window_clusters(
            starts,
            np.ascontiguousarray(sub[S.TS].dt.epoch("us").to_numpy()),
            np.ascontiguousarray(sub["_value"].to_numpy()),
            np.int64(round(float(params["window_days"]) * _US_PER_DAY)),
            np.int64(params["min_count"]),
            np.float64(params["min_total_factor"] * threshold),
        )
        hits = sub.with_columns(pl.Series("_cluster", cluster)).filter(pl.col("_cluster") >= 0)
        if hits.height == 0:
            return self.empty()
        single_other = pl.col(other).n_unique() == 1
        out = hits.group_by("_cluster", maintain_order=True).agg(
            pl.col(party).first().alias("subject_id"),
            pl.when(single_other).then(pl.col(other).first()).otherwise(None).alias("counterparty_id"),
            pl.col(S.TS).min().alias("window_start"),
            pl.col(S.TS).max().alias("window_end"),
            pl.len().cast(pl.Int64).alias("n_txns"),
            pl.col(S.AMOUNT_USD).sum().alias("total_usd"),
            pl.col(S.TXN_ID).sort().alias("txn_ids"),
            pl.col(S.AGENT_ID).drop_nulls().n_unique().cast(pl.Int64).alias("n_agents"),
            pl.col(other).n_unique().cast(pl.Int64).alias("n_counterparties"),
            pl.col("_value").min().alias("amount_min"),
            pl.col("_value").max().alias("amount_max"),
            pl.col("_value").sum().alias("total_amount"),
            pl.col("_value").mean().alias("_mean"),
        )
        count_term = ((pl.col("n_txns") - 2) / 4).clip(0, 1)
        agent_term = ((pl.col("n_agents") - 1) / 2).clip(0, 1)
        closeness = ((pl.col("_mean") / threshold - 0.8) / 0.2).clip(0, 1)
        return out.select(
            pl.lit(None, pl.String).alias("rule_code"),
            "subject_id",
            "counterparty_id",
            "window_start",
            "window_end",
            "n_txns",
            "total_usd",
            (0.4 * count_term + 0.3 * agent_term + 0.3 * closeness).alias("strength"),
            "txn_ids",
            pl.lit(threshold).alias("threshold"),
            pl.lit(currency).alias("currency"),
            pl.lit(params["side"]).alias("side"),
            "n_agents",
            "n_counterparties",
            "amount_min",
            "amount_max",
            "total_amount",
            ((pl.col("window_end") - pl.col("window_start")).dt.total_seconds() / 86_400).round(1).alias("span_days"),
        )
