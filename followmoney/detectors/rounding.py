"""Kind `round_amounts`: a payer->receiver pair whose transfers are mostly round amounts.

A supporting signal only (FATF-APG 2018 lists round amounts among weak indicators): rules of this kind
carry a low severity and `[requires] alone = true`, so they are kept only for pairs no other rule
flagged. Polars only.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import polars as pl

from followmoney import schema as S
from followmoney.detectors.base import OWN_SENDER, Detector, OfficialScreen, Param, owned_rows, owner_key
from followmoney.features import mixed_pair_key


class RoundAmounts(Detector):
    """>= min_count transfers from one payer to one receiver, >= min_round_share of them multiples of `unit`."""

    kind = "round_amounts"
    summary = "a payer->receiver pair paying mostly round amounts"
    params: ClassVar[dict[str, Param]] = {
        "min_count": Param(int, 5, "fewest transfers of the pair"),
        "min_round_share": Param(float, 0.6, "smallest share of transfers that are round"),
        "unit": Param(float, 100.0, "a round amount is a multiple of this (in the transfer's currency)"),
        "min_amount": Param(float, 100.0, "smallest amount that counts as round (0 is not a round sum)"),
    }
    evidence: ClassVar[dict[str, pl.DataType]] = {
        "n_round": pl.Int64(),
        "round_share": pl.Float64(),
        "amount_min": pl.Float64(),
        "amount_max": pl.Float64(),
        "currency": pl.String(),
    }

    def detect(
        self, txns: pl.DataFrame, params: dict[str, Any], officials: OfficialScreen | None = None
    ) -> pl.DataFrame:
        """One candidate per qualifying pair."""
        unit = float(params["unit"])
        is_round = ((pl.col(S.AMOUNT) % unit).abs() < 1e-6) & (pl.col(S.AMOUNT) >= float(params["min_amount"]))
        min_count, share = int(params["min_count"]), float(params["min_round_share"])
        # Most pairs of a dump are one transfer, so the pairs that can qualify are found first, counted on one
        # 64-bit number per pair (the party keys mixed: one key column groups faster than two), and only their
        # transfers are grouped by ids and described (10M world: the detector 0.9 -> 0.65 s). Two pairs mixing
        # to one number only make the first count larger: the group-by on ids counts them again.
        mixed = mixed_pair_key().alias("_pair")
        rows = txns.lazy().filter(owned_rows(txns, OWN_SENDER)).with_columns(mixed)
        # A qualifying pair has at least share x min_count round transfers, and round amounts are few (7.7% of
        # the synth worlds' transfers): only the pairs with that many are counted whole (10M world: the
        # detector 0.59-0.64 -> 0.20-0.27 s). The bound is lowered by a hair so float rounding cannot drop a pair.
        least_round = math.ceil(share * min_count - 1e-9)
        if least_round > 0:
            rounds = rows.filter(is_round).group_by("_pair").len().filter(pl.col("len") >= least_round)
            rows_to_count = rows.join(rounds, on="_pair", how="semi")
        else:
            rows_to_count = rows
        qualifying = (
            rows_to_count.select("_pair", is_round.alias("_round"))
            .group_by("_pair")
            .agg(((pl.len() >= min_count) & (pl.col("_round").mean() >= share)).alias("_keep"))
            .filter(pl.col("_keep"))
        )
        pairs = (
            rows.join(qualifying, on="_pair", how="semi", maintain_order="left")
            .group_by(S.SENDER_ID, S.RECEIVER_ID)
            .agg(
                pl.col(S.TS).min().alias("window_start"),
                pl.col(S.TS).max().alias("window_end"),
                pl.len().cast(pl.Int64).alias("n_txns"),
                pl.col(S.AMOUNT_USD).sum().alias("total_usd"),
                pl.col(S.TXN_ID).sort().alias("txn_ids"),
                is_round.sum().cast(pl.Int64).alias("n_round"),
                is_round.mean().alias("round_share"),
                pl.col(S.AMOUNT).min().alias("amount_min"),
                pl.col(S.AMOUNT).max().alias("amount_max"),
                pl.col(S.CURRENCY).mode().sort().first().alias("currency"),
            )
            .filter((pl.col("n_txns") >= min_count) & (pl.col("round_share") >= share))
            .sort(S.SENDER_ID, S.RECEIVER_ID)
            .collect()
        )
        if pairs.height == 0:
            return self.empty()
        return pairs.select(
            pl.lit(None, pl.String).alias("rule_code"),
            pl.col(S.SENDER_ID).alias("subject_id"),
            pl.col(S.RECEIVER_ID).alias("counterparty_id"),
            "window_start",
            "window_end",
            "n_txns",
            "total_usd",
            ((pl.col("round_share") - share) / max(1.0 - share, 1e-9)).clip(0, 1).alias("strength"),
            "txn_ids",
            "n_round",
            pl.col("round_share").round(2),
            "amount_min",
            "amount_max",
            "currency",
            owner_key(S.SENDER_ID),
        )
