"""Kind `distinct_in_window`: one party dealing with many distinct others (or agents) in a short window.

One kind covers fan-in / smurfing (a receiver, many senders), fan-out splitting (a sender, many
receivers), official fan-in (an official, several payers), shared identifiers (a phone, several
sender ids) and agent hopping (a sender, many agents). Rows are filtered by amount with Polars, the
sliding distinct count runs in the Numba kernel `window_distinct` (rows in overlapping qualifying
windows form one cluster), and a cluster is dropped when it has more distinct values than
`max_distinct` (e.g. an agent's shop phone used for every customer).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl

from followmoney import schema as S
from followmoney.detectors.base import (
    OWN_PHONE,
    OWN_RECEIVER,
    OWN_SENDER,
    OWNER_KEY,
    Detector,
    OfficialScreen,
    Param,
    candidate_head,
    owned_rows,
)
from followmoney.kernels import window_distinct
from followmoney.normalise import PARTY_KEY_SEED, RECEIVER_KEY, SENDER_KEY
from followmoney.phones import PHONE_KEY, phone_digits, phone_group_keys, phone_owner_key
from followmoney.sorting import group_starts, sort_rows

_US_PER_DAY = 86_400_000_000
_PARTY_COLUMN = {"sender": S.SENDER_ID, "receiver": S.RECEIVER_ID, "sender_phone": S.SENDER_PHONE}
_DISTINCT_COLUMN = {"sender": S.SENDER_ID, "receiver": S.RECEIVER_ID, "agent": S.AGENT_ID}
_WORDS = {"sender": "senders", "receiver": "receivers", "agent": "agents"}


_KEYS = {S.SENDER_ID: SENDER_KEY, S.RECEIVER_ID: RECEIVER_KEY}


def _key_of(column: str) -> str:
    """The 64-bit key column standing for an id column (party keys exist; others are hashed here)."""
    return _KEYS.get(column, f"_{column}_key")


def _key(column: str) -> pl.Expr:
    """The key of an id column: the party key, or the same seeded hash (null stays null)."""
    if column in _KEYS:
        return pl.col(_KEYS[column])
    return pl.when(pl.col(column).is_not_null()).then(pl.col(column).hash(PARTY_KEY_SEED))


class DistinctInWindow(Detector):
    """>= min_distinct distinct senders/receivers/agents (optionally <= max_distinct) for one party
    within window_days, each transfer in [min_amount_usd, max_amount_usd), together >= min_total_usd."""

    kind = "distinct_in_window"
    summary = "one party dealing with many distinct others (or agents) within a short window"
    params: ClassVar[dict[str, Param]] = {
        "party": Param(str, "receiver", "whose transfers are grouped", ("sender", "receiver", "sender_phone")),
        "distinct": Param(str, "sender", "what is counted", ("sender", "receiver", "agent")),
        "window_days": Param(float, 7.0, "length of the sliding window in days"),
        "min_distinct": Param(int, 5, "fewest distinct values in the window"),
        "max_distinct": Param(int, 0, "most distinct values over the whole cluster (0 = no cap)"),
        "min_distinct_share": Param(
            float, 0.0, "distinct values per transfer in the cluster at least this (1 = a new one every time)"
        ),
        "min_amount_usd": Param(float, 0.0, "smallest transfer counted"),
        "max_amount_usd": Param(float, 0.0, "transfers must stay under this (0 = no cap)"),
        "min_total_usd": Param(float, 0.0, "the window's transfers must add up to this"),
        "max_repeat_share": Param(
            float, 1.0, "largest share of transfers to counterparties also paid outside the burst (1 = off)"
        ),
        "repeat_lookback_days": Param(float, 45.0, "how far before or after the burst another transfer makes a repeat"),
    }
    evidence: ClassVar[dict[str, pl.DataType]] = {
        "party_kind": pl.String(),
        "distinct_kind": pl.String(),
        "n_distinct": pl.Int64(),
        "member_ids": pl.List(pl.String()),
        "n_agents": pl.Int64(),
        "n_counterparties": pl.Int64(),
        "amount_min": pl.Float64(),
        "amount_max": pl.Float64(),
        "span_days": pl.Float64(),
        "repeat_share": pl.Float64(),
    }

    def detect(
        self, txns: pl.DataFrame, params: dict[str, Any], officials: OfficialScreen | None = None
    ) -> pl.DataFrame:
        """One candidate per cluster of qualifying windows."""
        party_kind = str(params["party"])
        distinct_kind = str(params["distinct"])
        if party_kind == "sender_phone" and S.SENDER_PHONE not in txns.columns:
            return self.empty()  # optional column absent: nothing to group by
        party = _PARTY_COLUMN[party_kind]  # a phone is grouped by its PHONE_KEY, its text carried along
        counted = _DISTINCT_COLUMN[distinct_kind]
        if party_kind == "sender_phone" and distinct_kind == "sender":
            counted = S.SENDER_ID
        other = S.RECEIVER_ID if party_kind in ("sender", "sender_phone") else S.SENDER_ID
        window_us = round(float(params["window_days"]) * _US_PER_DAY)
        own = owned_rows(txns, {"sender": OWN_SENDER, "receiver": OWN_RECEIVER, "sender_phone": OWN_PHONE}[party_kind])
        if party_kind == "sender_phone":
            if OWN_PHONE in txns.columns:  # a partition: key only the phones it owns (about a third of its rows)
                txns, own = txns.filter(own), pl.lit(True)
            txns = txns.with_columns(phone_group_keys(txns[S.SENDER_PHONE]))
        frame = txns.lazy().filter(own)
        if officials is not None and officials.side == "subject" and party in _KEYS:
            # The grouped party is the subject: a party that cannot be an official needs none of its rows.
            frame = frame.filter(officials.allows(pl.col(_KEYS[party])))
        # Grouping and counting run on 64-bit keys (ids are only carried along for the candidates).
        pk = PHONE_KEY if party_kind == "sender_phone" else _key_of(party)
        ck = _key_of(counted)
        # A phone's candidates are owned by the partition its phone_owner_key falls in (partition.phone_parts).
        owner = phone_owner_key(phone_digits(S.SENDER_PHONE)) if party_kind == "sender_phone" else pl.col(pk)
        if party_kind != "sender_phone":
            frame = frame.with_columns(_key(party).alias(pk))
        frame = frame.with_columns(_key(counted).alias(ck))
        amount = pl.col(S.AMOUNT_USD)
        keep = (amount >= float(params["min_amount_usd"])) & pl.col(pk).is_not_null() & pl.col(ck).is_not_null()
        if float(params["max_amount_usd"]) > 0:
            keep = keep & (amount < float(params["max_amount_usd"]))
        # The parties (or phones) with enough distinct counterparts among the qualifying rows, by one group-by:
        # a window n_unique over every row cost 1.1 s at 10M rows against 0.35 s, and few groups pass (the
        # 10M world: 201 phones). Both uses below share `frame.filter(keep)`, which Polars computes once.
        qualifying = (
            frame.filter(keep)
            .group_by(pk)
            .agg(pl.col(ck).n_unique().alias("_n"))
            .filter(pl.col("_n") >= int(params["min_distinct"]))
            .select(pk)
        )

        def enough(rows: pl.LazyFrame) -> pl.LazyFrame:
            return rows.join(qualifying, on=pk, how="semi", maintain_order="left")

        if float(params["max_repeat_share"]) < 1.0:
            # A repeat: the same pair also dealt outside the burst (before or after) within the lookback,
            # e.g. a payroll's workers are paid again next month; a one-off split is not. Every transfer
            # of a pair counts, so it is computed over all rows of the pairs that can make a candidate
            # (those of the qualifying rows), not over every pair of the dump.
            pairs = enough(frame.filter(keep)).select(pk, ck).unique()
            frame = frame.join(pairs, on=[pk, ck], how="semi", maintain_order="left")
            pair = [pk, ck]
            ts = pl.col(S.TS)
            before = (ts - ts.shift(1).over(pair, order_by=S.TS)).dt.total_microseconds()
            after = (ts.shift(-1).over(pair, order_by=S.TS) - ts).dt.total_microseconds()
            lookback = round(float(params["repeat_lookback_days"]) * _US_PER_DAY)
            is_repeat = ((before > window_us) & (before <= lookback)).fill_null(False) | (
                (after > window_us) & (after <= lookback)
            ).fill_null(False)
            frame = frame.with_columns(is_repeat.alias("_repeat"))
        else:
            frame = frame.with_columns(pl.lit(False).alias("_repeat"))
        sub = enough(
            frame.filter(keep).select(
                *dict.fromkeys([pk, ck, party, counted, other, S.TS, S.AMOUNT_USD, S.TXN_ID, S.AGENT_ID, S.SENDER_ID]),
                "_repeat",
            )
        ).collect()
        sub = sort_rows(sub, [pk, S.TS, S.TXN_ID]).with_columns(
            pl.col(ck).rank("dense").cast(pl.Int64).sub(1).alias("_code")
        )
        if sub.height == 0:
            return self.empty()
        starts = group_starts(sub.select(pk))
        cluster = window_distinct(
            starts,
            np.ascontiguousarray(sub[S.TS].dt.epoch("us").to_numpy()),
            np.ascontiguousarray(sub["_code"].to_numpy()),
            np.ascontiguousarray(sub[S.AMOUNT_USD].to_numpy()),
            np.int64(window_us),
            np.int64(params["min_distinct"]),
            np.float64(params["min_total_usd"]),
        )
        hits = sub.with_columns(pl.Series("_cluster", cluster)).filter(pl.col("_cluster") >= 0)
        if hits.height == 0:
            return self.empty()
        subject = pl.col(S.SENDER_ID).mode().sort().first() if party_kind == "sender_phone" else pl.col(party).first()
        single_other = pl.col(other).n_unique() == 1
        out = hits.group_by("_cluster", maintain_order=True).agg(
            subject.alias("subject_id"),
            pl.when(single_other).then(pl.col(other).first()).otherwise(None).alias("counterparty_id"),
            pl.col(S.TS).min().alias("window_start"),
            pl.col(S.TS).max().alias("window_end"),
            pl.len().cast(pl.Int64).alias("n_txns"),
            pl.col(S.AMOUNT_USD).sum().alias("total_usd"),
            pl.col(S.TXN_ID).sort().alias("txn_ids"),
            pl.col(ck).n_unique().cast(pl.Int64).alias("n_distinct"),
            (pl.col(counted) if distinct_kind != "agent" else pl.col(other)).unique().sort().alias("member_ids"),
            pl.col(S.AGENT_ID).drop_nulls().n_unique().cast(pl.Int64).alias("n_agents"),
            pl.col(other).n_unique().cast(pl.Int64).alias("n_counterparties"),
            pl.col(S.AMOUNT_USD).min().alias("amount_min"),
            pl.col(S.AMOUNT_USD).max().alias("amount_max"),
            pl.col("_repeat").mean().alias("repeat_share"),
            owner.first().alias(OWNER_KEY),
        )
        cap = int(params["max_distinct"])
        if cap > 0:
            out = out.filter(pl.col("n_distinct") <= cap)
        out = out.filter(
            (pl.col("repeat_share") <= float(params["max_repeat_share"]))
            & (pl.col("n_distinct") >= float(params["min_distinct_share"]) * pl.col("n_txns"))
        )
        min_distinct = int(params["min_distinct"])
        distinct_term = ((pl.col("n_distinct") - min_distinct + 1) / max(min_distinct, 1)).clip(0, 1)
        count_term = (pl.col("n_txns") / (2 * max(min_distinct, 1))).clip(0, 1)
        return out.select(
            *candidate_head(0.6 * distinct_term + 0.4 * count_term),
            pl.lit(party_kind).alias("party_kind"),
            pl.lit(_WORDS[distinct_kind]).alias("distinct_kind"),
            "n_distinct",
            "member_ids",
            "n_agents",
            "n_counterparties",
            "amount_min",
            "amount_max",
            ((pl.col("window_end") - pl.col("window_start")).dt.total_seconds() / 86_400).round(1).alias("span_days"),
            pl.col("repeat_share").round(2),
            OWNER_KEY,
        )

    def partition_sides(self, params: dict[str, Any]) -> frozenset[str]:
        """A phone's sends (whoever sent them), or a party's transfers."""
        return frozenset({"phone"}) if params["party"] == "sender_phone" else frozenset({"party"})

    def needs_shared_phone(self, params: dict[str, Any]) -> bool:
        """A phone's distinct sender ids counted, at least two of them needed."""
        return params["party"] == "sender_phone" and params["distinct"] == "sender" and int(params["min_distinct"]) >= 2
