"""Kind `oneoff_after_transfer`: a single large payment right after a transfer with someone else.

FM122 uses it for a one-off payment to an official within days of a network-linked transfer (the
event-like burst around a border crossing or a raid): the payment is >= min_ratio times the payer's
median send, the payer never paid that receiver otherwise, and the payer had another transfer (sent or
received) within `lookback_days` before it. Whether that earlier transfer is network-linked is a link
fact: the candidate lists the payer and the earlier transfer's parties in `member_ids`, and the rule's
`[requires]` asks that one of them is a listed network member. Polars only (joins, no row loop).
"""

from __future__ import annotations

from typing import Any, ClassVar

import polars as pl

from followmoney import schema as S
from followmoney.detectors.base import Detector, OfficialScreen, Param, owner_key, ownership
from followmoney.normalise import RECEIVER_KEY, SENDER_KEY


class OneOffAfterTransfer(Detector):
    """One payment >= min_ratio x the payer's median send, to a receiver paid only this once, within
    lookback_days after another transfer of the payer."""

    kind = "oneoff_after_transfer"
    summary = "a one-off large payment within days of another transfer of the payer"
    params: ClassVar[dict[str, Param]] = {
        "min_ratio": Param(float, 5.0, "the payment is at least this multiple of the payer's median send"),
        "min_history": Param(int, 3, "fewest sends of the payer (the median needs a history)"),
        "lookback_days": Param(float, 3.0, "the earlier transfer happened at most this many days before"),
        "min_amount_usd": Param(float, 0.0, "smallest payment considered"),
        "min_prior_ratio": Param(
            float, 0.0, "the earlier transfer is event-like: at least this multiple of the payer's median send"
        ),
    }
    evidence: ClassVar[dict[str, pl.DataType]] = {
        "ratio": pl.Float64(),
        "payer_median_usd": pl.Float64(),
        "n_prior": pl.Int64(),
        "hours_after": pl.Float64(),
        "member_ids": pl.List(pl.String()),
    }

    def detect(
        self, txns: pl.DataFrame, params: dict[str, Any], officials: OfficialScreen | None = None
    ) -> pl.DataFrame:
        """One candidate per qualifying payment."""
        # Windows, joins and semi-joins run on the 64-bit party keys; ids ride along for the evidence.
        base = txns.lazy().select(
            S.TXN_ID, S.TS, S.SENDER_ID, S.RECEIVER_ID, SENDER_KEY, RECEIVER_KEY, S.AMOUNT_USD, *ownership(txns)
        )
        sends = base.filter(pl.col("_own_s"))
        screened = officials is not None and officials.side == "counterparty"
        if officials is not None and screened:
            # Only payers of a possible official can make a candidate; their stats need all their sends.
            payers_of = sends.filter(officials.allows(pl.col(RECEIVER_KEY))).select(SENDER_KEY).unique()
            sends = sends.join(payers_of, on=SENDER_KEY, how="semi", maintain_order="left")
        payments = (
            sends.with_columns(
                pl.col(S.AMOUNT_USD).median().over(SENDER_KEY).alias("payer_median_usd"),
                pl.len().over(SENDER_KEY).alias("_sends"),
                pl.len().over(SENDER_KEY, RECEIVER_KEY).alias("_pair"),
            )
            .filter(
                (pl.col("_sends") >= int(params["min_history"]))
                & (pl.col("_pair") == 1)
                & (pl.col(S.AMOUNT_USD) >= float(params["min_amount_usd"]))
                & (pl.col(S.AMOUNT_USD) >= float(params["min_ratio"]) * pl.col("payer_median_usd"))
            )
            .collect()
        )
        if officials is not None and screened:
            payments = payments.filter(officials.allows(pl.col(RECEIVER_KEY)))  # the payment's receiver
        if payments.height == 0:
            return self.empty()
        payers = payments.select(pl.col(SENDER_KEY).unique().alias("_pk"))
        events = pl.concat(
            [
                base.filter(pl.col("_own_s")).select(
                    pl.col(SENDER_KEY).alias("_pk"),
                    pl.col(S.RECEIVER_ID).alias("_other"),
                    S.TS,
                    S.TXN_ID,
                    S.AMOUNT_USD,
                ),
                base.filter(pl.col("_own_r")).select(
                    pl.col(RECEIVER_KEY).alias("_pk"),
                    pl.col(S.SENDER_ID).alias("_other"),
                    S.TS,
                    S.TXN_ID,
                    S.AMOUNT_USD,
                ),
            ]
        ).join(payers.lazy(), on="_pk", how="semi")
        lookback = pl.duration(microseconds=round(float(params["lookback_days"]) * 86_400_000_000))
        prior = (
            payments.lazy()
            .select(
                pl.col(S.TXN_ID).alias("_pay_id"),
                pl.col(SENDER_KEY).alias("_pk"),
                pl.col(S.RECEIVER_ID).alias("_receiver"),
                pl.col(S.TS).alias("_pay_ts"),
                pl.col("payer_median_usd").alias("_median"),
            )
            .join(events, on="_pk")
            .filter(
                (pl.col(S.AMOUNT_USD) >= float(params["min_prior_ratio"]) * pl.col("_median"))
                & (pl.col(S.TS) < pl.col("_pay_ts"))
                & (pl.col(S.TS) >= pl.col("_pay_ts") - lookback)
                & (pl.col("_other") != pl.col("_receiver"))
            )
            .group_by("_pay_id")
            .agg(
                pl.len().cast(pl.Int64).alias("n_prior"),
                pl.col(S.TS).min().alias("_first_prior"),
                ((pl.col("_pay_ts").first() - pl.col(S.TS).max()).dt.total_seconds() / 3600).alias("hours_after"),
                pl.col("_other").unique().sort().alias("_others"),
                pl.col(S.TXN_ID).alias("_prior_ids"),
            )
            .collect()
        )
        out = payments.join(prior, left_on=S.TXN_ID, right_on="_pay_id", how="inner")
        if out.height == 0:
            return self.empty()
        ratio = pl.col(S.AMOUNT_USD) / pl.col("payer_median_usd")
        return out.sort(S.TS, S.TXN_ID).select(
            pl.lit(None, pl.String).alias("rule_code"),
            pl.col(S.SENDER_ID).alias("subject_id"),
            pl.col(S.RECEIVER_ID).alias("counterparty_id"),
            pl.col("_first_prior").alias("window_start"),
            pl.col(S.TS).alias("window_end"),
            (pl.col("n_prior") + 1).cast(pl.Int64).alias("n_txns"),
            pl.col(S.AMOUNT_USD).alias("total_usd"),
            ((ratio - float(params["min_ratio"])) / float(params["min_ratio"])).clip(0, 1).alias("strength"),
            pl.concat_list(pl.col(S.TXN_ID), "_prior_ids").list.unique().list.sort().alias("txn_ids"),
            ratio.round(1).alias("ratio"),
            pl.col("payer_median_usd").round(2),
            "n_prior",
            pl.col("hours_after").round(1),
            pl.concat_list(pl.col(S.SENDER_ID), "_others").list.unique().list.sort().alias("member_ids"),
            owner_key(S.SENDER_ID),
        )
