"""Kind `near_threshold_window`: transfers kept under a reporting threshold, grouped per party.

Two criteria around one threshold T, both computed by the Numba kernel `window_clusters`:
- band: >= min_count transfers each in [band_low*T, T) within window_days, together >= min_total_factor*T;
- sum: >= sum_min_count transfers each in [sum_band_low*T, T) within any of sum_windows_days (1 or 3
  days), together >= T (the aggregation a reporting line is meant to catch).
Rows flagged by either criterion, per party, that lie within the longest window of each other form one
candidate; its evidence says which criteria fired and how many agents were used. Sends and receipts are
grouped separately (side = sender, receiver or both).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl

from followmoney import schema as S
from followmoney.detectors.base import (
    OWN_RECEIVER,
    OWN_SENDER,
    Detector,
    OfficialScreen,
    Param,
    candidate_head,
    owned_rows,
    owner_key,
)
from followmoney.kernels import window_clusters
from followmoney.normalise import RECEIVER_KEY, SENDER_KEY
from followmoney.sorting import group_starts, sort_rows

_US_PER_DAY = 86_400_000_000


class NearThresholdWindow(Detector):
    """One party's sends (or receipts) kept under a threshold T: several in [band_low*T, T) within
    window_days that together reach T, or any transfers under T that together reach T within 1 or 3 days."""

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
        "side": Param(str, "both", "whose transfers are grouped", ("sender", "receiver", "both")),
        "sum_windows_days": Param(list, [1.0, 3.0], "windows (days) for the sum criterion (empty = off)"),
        "sum_min_count": Param(int, 2, "sum criterion: fewest transfers, each under T, that together reach T"),
        "sum_band_low": Param(float, 0.3, "sum criterion: smallest transfer counted, as a share of T"),
    }
    evidence: ClassVar[dict[str, pl.DataType]] = {
        "threshold": pl.Float64(),
        "currency": pl.String(),
        "side": pl.String(),
        "direction": pl.String(),
        "criteria": pl.String(),
        "n_agents": pl.Int64(),
        "n_counterparties": pl.Int64(),
        "amount_min": pl.Float64(),
        "amount_max": pl.Float64(),
        "total_amount": pl.Float64(),
        "span_days": pl.Float64(),
    }

    def detect(
        self, txns: pl.DataFrame, params: dict[str, Any], officials: OfficialScreen | None = None
    ) -> pl.DataFrame:
        """Clusters of under-threshold transfers per party (per side), one candidate per cluster."""
        sides = ["sender", "receiver"] if params["side"] == "both" else [str(params["side"])]
        parts = [self._detect_side(txns, params, side) for side in sides]
        found = [p for p in parts if p.height]
        return pl.concat(found) if found else self.empty()

    def _criteria(self, params: dict[str, Any]) -> list[tuple[str, float, float, int, float]]:
        """(label, low share of T, window days, min count, min total) for each criterion."""
        threshold = float(params["threshold"])
        window = float(params["window_days"])
        out = [
            (
                f"{params['min_count']}+ within {window:g} days each in {params['band_low']:.0%}-100% of the line",
                float(params["band_low"]),
                window,
                int(params["min_count"]),
                float(params["min_total_factor"]) * threshold,
            )
        ]
        for days in params["sum_windows_days"]:
            out.append(
                (
                    f"{params['sum_min_count']}+ under the line adding up to it within {float(days):g} day(s)",
                    float(params["sum_band_low"]),
                    float(days),
                    int(params["sum_min_count"]),
                    threshold,
                )
            )
        return out

    def _detect_side(self, txns: pl.DataFrame, params: dict[str, Any], side: str) -> pl.DataFrame:
        threshold = float(params["threshold"])
        currency = str(params["currency"]).upper()
        key, party, other = (
            (SENDER_KEY, S.SENDER_ID, S.RECEIVER_ID) if side == "sender" else (RECEIVER_KEY, S.RECEIVER_ID, S.SENDER_ID)
        )
        criteria = self._criteria(params)
        low = min(c[1] for c in criteria)
        value = pl.col(S.AMOUNT_USD) if currency == "USD" else pl.col(S.AMOUNT)
        band = (value >= low * threshold) & (value < threshold)
        if currency != "USD":
            band = band & (pl.col(S.CURRENCY) == currency)
        own = owned_rows(txns, OWN_SENDER if side == "sender" else OWN_RECEIVER)
        sub = (
            txns.lazy()
            .filter(own & band)
            .select(key, S.TS, value.alias("_value"), S.AMOUNT_USD, S.TXN_ID, S.AGENT_ID, party, other)
            .filter(pl.len().over(key) >= min(c[3] for c in criteria))
            .collect()
        )
        sub = sort_rows(sub, [key, S.TS, S.TXN_ID])
        if sub.height == 0:
            return self.empty()
        ts = np.ascontiguousarray(sub[S.TS].dt.epoch("us").to_numpy())
        values = np.ascontiguousarray(sub["_value"].to_numpy())
        labels = []
        flagged = np.zeros(sub.height, dtype=np.bool_)
        for _label, share, days, min_count, min_total in criteria:
            mask = values >= share * threshold
            idx = np.flatnonzero(mask)
            if idx.shape[0] == 0:
                labels.append(np.zeros(sub.height, dtype=np.bool_))
                continue
            starts = group_starts(sub[idx].select(key))
            cluster = window_clusters(
                starts,
                np.ascontiguousarray(ts[idx]),
                np.ascontiguousarray(values[idx]),
                np.int64(round(days * _US_PER_DAY)),
                np.int64(min_count),
                np.float64(min_total),
            )
            hit = np.zeros(sub.height, dtype=np.bool_)
            hit[idx[cluster >= 0]] = True
            flagged |= hit
            labels.append(hit)
        if not flagged.any():
            return self.empty()
        longest = max(c[2] for c in criteria) * _US_PER_DAY
        fired = [pl.Series(f"_c{i}", hit) for i, hit in enumerate(labels)]
        hits = (
            sub.with_columns(*fired, pl.Series("_flag", flagged))
            .filter(pl.col("_flag"))
            .with_columns(
                (
                    (pl.col(key) != pl.col(key).shift(1)).fill_null(True)
                    | ((pl.col(S.TS) - pl.col(S.TS).shift(1)).dt.total_microseconds() > longest).fill_null(True)
                )
                .cum_sum()
                .alias("_cluster")
            )
        )
        criteria_text = pl.concat_str(
            [pl.when(pl.col(f"_c{i}").any()).then(pl.lit(c[0])) for i, c in enumerate(criteria)],
            separator="; ",
            ignore_nulls=True,
        )
        single_other = pl.col(other).n_unique() == 1
        out = hits.group_by("_cluster", maintain_order=True).agg(
            pl.col(party).first().alias("subject_id"),
            pl.when(single_other).then(pl.col(other).first()).otherwise(None).alias("counterparty_id"),
            pl.col(S.TS).min().alias("window_start"),
            pl.col(S.TS).max().alias("window_end"),
            pl.len().cast(pl.Int64).alias("n_txns"),
            pl.col(S.AMOUNT_USD).sum().alias("total_usd"),
            pl.col(S.TXN_ID).sort().alias("txn_ids"),
            criteria_text.alias("criteria"),
            pl.col(S.AGENT_ID).drop_nulls().n_unique().cast(pl.Int64).alias("n_agents"),
            pl.col(other).n_unique().cast(pl.Int64).alias("n_counterparties"),
            pl.col("_value").min().alias("amount_min"),
            pl.col("_value").max().alias("amount_max"),
            pl.col("_value").sum().alias("total_amount"),
            pl.col("_value").mean().alias("_mean"),
        )
        count_term = ((pl.col("n_txns") - 1) / 4).clip(0, 1)
        agent_term = ((pl.col("n_agents") - 1) / 2).clip(0, 1)
        closeness = ((pl.col("_mean") / threshold - 0.5) / 0.5).clip(0, 1)
        return out.select(
            *candidate_head(0.4 * count_term + 0.3 * agent_term + 0.3 * closeness),
            pl.lit(threshold).alias("threshold"),
            pl.lit(currency).alias("currency"),
            pl.lit(side).alias("side"),
            pl.lit("sends" if side == "sender" else "receipts").alias("direction"),
            "criteria",
            "n_agents",
            "n_counterparties",
            "amount_min",
            "amount_max",
            "total_amount",
            ((pl.col("window_end") - pl.col("window_start")).dt.total_seconds() / 86_400).round(1).alias("span_days"),
            owner_key("subject_id"),
        )
