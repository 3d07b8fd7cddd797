"""Behaviour features of parties and payer->receiver pairs, as plain functions returning pl.Expr.

The anomaly models (models.py) score one row per payer->receiver pair: the pair's own features
beside its payer's (sending side) and its receiver's (receiving side) features. Every feature is an
absolute property of the party or pair (counts, shares, USD), never a rank within the batch being
scanned, so a model trained on one world scores another. The only learned lookup, how rare a
country corridor is, travels with the model (`corridor_table`).

Features are kept in natural units (counts, USD, shares) so explanations can quote them; the
model applies `log1p` to the heavy-tailed ones (`Feature.log`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from followmoney import schema as S
from followmoney.kernels import group_gap_cv, group_sums_cv, payer_time_stats
from followmoney.normalise import RECEIVER_KEY, SENDER_KEY
from followmoney.sorting import group_starts, sort_order, sort_rows

NEAR_THRESHOLDS_USD = (3_000.0, 10_000.0)  # the MSB record-keeping and CTR lines (see DOMAIN.md)
NEAR_BAND = 0.2  # "within 20% below" a threshold
VELOCITY_HOURS = 48
_US_PER_HOUR = 3_600_000_000
_US_PER_WEEK = 7 * 24 * _US_PER_HOUR
CORRIDOR = "_corridor"
RARITY = "_corridor_rarity"
UNSEEN_CORRIDOR_SHARE = 1e-7  # a corridor absent from training counts as rarer than any seen one


@dataclass(frozen=True)
class Feature:
    """One model input: its column name, which side it describes, whether the model logs it, how to say it."""

    name: str
    level: str  # "pair", "payer" or "receiver"
    log: bool
    text: str  # format fields: {value}, {typical}; pct features are shares 0-1 printed as %
    unusual: str = "high"  # which tail is worth saying: "high", "low" or "both"
    red_flag: bool = False  # a published red-flag indicator (DOMAIN.md): said first when unusual
    judged_by: str = ""  # rules that already judge this behaviour; default models leave it out (see MODEL_FEATURES)


# Order matters: it is the model's column order (recorded in every manifest).
FEATURES: tuple[Feature, ...] = (
    Feature("pair_n", "pair", True, "{value:,.0f} transfers to this receiver vs a typical {typical:,.0f}"),
    Feature("pair_usd", "pair", True, "{value:,.0f} USD to this receiver vs a typical {typical:,.0f}"),
    Feature(
        "pair_amount_cv",
        "pair",
        False,
        "amount variation (CV) {value:.2f} vs a typical {typical:.2f}",
        "low",
        judged_by="FM120",
    ),
    Feature(
        "pair_gap_cv",
        "pair",
        False,
        "gap variation (CV) {value:.2f} vs a typical {typical:.2f}",
        "low",
        judged_by="FM120",
    ),
    Feature(
        "pair_corridor_rarity",
        "pair",
        False,
        "corridor rarity {value:.1f} (-log10 of its share of transfers) vs a typical {typical:.1f}",
    ),
    Feature("payer_n", "payer", True, "sends {value:,.0f} transfers vs a typical {typical:,.0f}"),
    Feature("payer_usd", "payer", True, "sends {value:,.0f} USD in all vs a typical {typical:,.0f}"),
    Feature(
        "payer_receivers",
        "payer",
        True,
        "sends to {value:,.0f} distinct receivers vs a typical {typical:,.0f}",
        judged_by="FM111",
    ),
    Feature(
        "payer_receivers_week",
        "payer",
        True,
        "sends to {value:,.0f} distinct receivers a week vs a typical {typical:,.0f}",
        red_flag=True,
        judged_by="FM111",
    ),
    Feature(
        "payer_burst_share", "payer", False, "{value:.0%} of its sends fall in one week vs a typical {typical:.0%}"
    ),
    Feature(
        "payer_agents",
        "payer",
        True,
        "uses {value:,.0f} agents vs a typical {typical:,.0f}",
        red_flag=True,
        judged_by="FM132",
    ),
    Feature("payer_corridors", "payer", True, "sends along {value:,.0f} corridors vs a typical {typical:,.0f}"),
    Feature("payer_cross_share", "payer", False, "{value:.0%} of its sends cross a border vs a typical {typical:.0%}"),
    Feature(
        "payer_rare_corridor_share",
        "payer",
        False,
        "{value:.0%} of its sends go along rare corridors vs a typical {typical:.0%}",
        red_flag=True,
    ),
    Feature(
        "payer_near_share",
        "payer",
        False,
        "{value:.0%} of its amounts are within 20% below 3,000 or 10,000 USD vs a typical {typical:.0%}",
        red_flag=True,
        judged_by="FM101-FM104",
    ),
    Feature(
        "payer_round_share",
        "payer",
        False,
        "{value:.0%} of its amounts are round vs a typical {typical:.0%}",
        red_flag=True,
        judged_by="FM140",
    ),
    Feature(
        "payer_velocity_share",
        "payer",
        False,
        "{value:.0%} of its sends follow money received within 48 h vs a typical {typical:.0%}",
        red_flag=True,
        judged_by="FM131",
    ),
    Feature(
        "payer_night_share",
        "payer",
        False,
        "{value:.0%} of its sends are at night (local time) vs a typical {typical:.0%}",
        red_flag=True,
    ),
    Feature(
        "payer_weekend_share", "payer", False, "{value:.0%} of its sends are at weekends vs a typical {typical:.0%}"
    ),
    Feature(
        "payer_gap_cv",
        "payer",
        False,
        "gap variation (CV) of its sends {value:.2f} vs a typical {typical:.2f}",
        "low",
        judged_by="FM120",
    ),
    Feature("receiver_n", "receiver", True, "the receiver gets {value:,.0f} transfers vs a typical {typical:,.0f}"),
    Feature(
        "receiver_senders",
        "receiver",
        True,
        "the receiver has {value:,.0f} senders vs a typical {typical:,.0f}",
        judged_by="FM110",
    ),
    Feature(
        "receiver_senders_week",
        "receiver",
        True,
        "the receiver has {value:,.0f} distinct senders a week vs a typical {typical:,.0f}",
        red_flag=True,
        judged_by="FM110",
    ),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURE_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
# What default models learn from: behaviour no rule judges. The anomaly half should add what the rules
# miss; a party whose near-threshold sends, fan-out, agents, pass-through speed or round amounts are
# unusual is the rules' business (they looked, and alerted or judged it benign).
MODEL_FEATURES: tuple[Feature, ...] = tuple(f for f in FEATURES if not f.judged_by)
RARE_CORRIDOR = 3.0  # rarity >= 3: fewer than 1 transfer in 1,000 goes along this corridor


# ---------------------------------------------------------------- per-transfer expressions


def near_threshold(
    amount: pl.Expr, thresholds: tuple[float, ...] = NEAR_THRESHOLDS_USD, band: float = NEAR_BAND
) -> pl.Expr:
    """True for an amount within `band` below any of the thresholds."""
    return pl.any_horizontal([(amount >= (1 - band) * t) & (amount < t) for t in thresholds])


def is_round(amount: pl.Expr) -> pl.Expr:
    """True for a whole multiple of 100 (in the transfer's own currency)."""
    return (amount % 100).abs() < 1e-9


# Standard UTC offsets (hours) of the sender's country, to read times of day where the money is handed in.
# Single-zone countries of the region and its main remittance hosts; other countries are read in UTC.
# (Multi-zone hosts take their most populous zone; no daylight saving: a one-hour shift moves few sends
# across the night boundary.)
UTC_OFFSET_HOURS: dict[str, float] = {
    "TH": 7, "KH": 7, "LA": 7, "VN": 7, "MM": 6.5, "MY": 8, "SG": 8, "PH": 8, "ID": 7, "BN": 8, "TL": 9,
    "CN": 8, "HK": 8, "MO": 8, "TW": 8, "KR": 9, "JP": 9, "IN": 5.5, "BD": 6, "NP": 5.75, "LK": 5.5,
    "PK": 5, "AE": 4, "OM": 4, "QA": 3, "SA": 3, "KW": 3, "BH": 3, "JO": 3, "IL": 2, "GB": 0, "US": -6,
    "CA": -5, "AU": 10, "NZ": 12,
}  # fmt: skip


def local_ts(ts: pl.Expr, country: pl.Expr) -> pl.Expr:
    """The transfer time shifted to the sender country's standard time (UTC for unknown countries)."""
    offsets = {k: float(v) for k, v in UTC_OFFSET_HOURS.items()}
    hours = country.replace_strict(offsets, default=0.0, return_dtype=pl.Float64).fill_null(0.0)
    return ts + pl.duration(minutes=(hours * 60).cast(pl.Int64))


def is_night(local: pl.Expr) -> pl.Expr:
    """True between 22:00 and 06:00 local time (pass `local_ts`)."""
    hour = local.dt.hour()
    return (hour >= 22) | (hour < 6)


def is_weekend(local: pl.Expr) -> pl.Expr:
    """True on a local Saturday or Sunday (pass `local_ts`)."""
    return local.dt.weekday() >= 6


def is_cross_border() -> pl.Expr:
    """True when sender and receiver countries differ."""
    return pl.col(S.SENDER_COUNTRY).fill_null("") != pl.col(S.RECEIVER_COUNTRY).fill_null("")


def corridor() -> pl.Expr:
    """The country corridor as 'XX>YY'."""
    return pl.concat_str(
        pl.col(S.SENDER_COUNTRY).fill_null("??"), pl.lit(">"), pl.col(S.RECEIVER_COUNTRY).fill_null("??")
    )


def week(ts: pl.Expr) -> pl.Expr:
    """Index of the 7-day bucket since the epoch."""
    return ts.dt.epoch("us") // _US_PER_WEEK


# ---------------------------------------------------------------- aggregate expressions


def share(cond: pl.Expr) -> pl.Expr:
    """Share of rows where `cond` holds (in an aggregation)."""
    return cond.cast(pl.Float64).mean()


def corridor_table(txns: pl.DataFrame) -> pl.DataFrame:
    """Corridor rarity learned from training data: -log10 of each corridor's share of transfers."""
    counts = txns.lazy().select(corridor().alias(CORRIDOR)).group_by(CORRIDOR).len().collect()
    total = float(counts["len"].sum()) if counts.height else 1.0
    return counts.select(pl.col(CORRIDOR), (-(pl.col("len").cast(pl.Float64) / total).log10()).alias(RARITY)).sort(
        CORRIDOR
    )


def _with_rarity(txns: pl.LazyFrame, corridors: pl.DataFrame) -> pl.LazyFrame:
    unseen = -float(np.log10(UNSEEN_CORRIDOR_SHARE))
    return (
        txns.with_columns(corridor().alias(CORRIDOR))
        .join(corridors.lazy(), on=CORRIDOR, how="left")
        .with_columns(pl.col(RARITY).fill_null(unseen))
    )


def _velocity(txns: pl.LazyFrame, receipts: pl.LazyFrame) -> pl.LazyFrame:
    """Per payer that received money: share of its sends (in `txns`) made within VELOCITY_HOURS after it
    received money (`receipts`). Payers absent from the result received nothing: their share is 0."""
    outs = txns.select(pl.col(SENDER_KEY).alias("_party"), pl.col(S.TS).alias("_t"))
    ins = receipts.select(pl.col(RECEIVER_KEY).alias("_party"), pl.col(S.TS).alias("_in"))
    # Only parties on both sides can match (10M world: a fifth of the rows), so only they are sorted and joined.
    outs = outs.join(ins.select("_party").unique(), on="_party", how="semi").sort("_t")
    ins = ins.join(outs.select("_party").unique(), on="_party", how="semi").sort("_in")
    joined = outs.join_asof(
        ins,
        left_on="_t",
        right_on="_in",
        by="_party",
        strategy="backward",
        tolerance=f"{VELOCITY_HOURS}h",
        check_sortedness=False,
    )
    return joined.group_by("_party").agg(share(pl.col("_in").is_not_null()).alias("payer_velocity_share"))


def _wanted(features: Collection[str] | None, level: str) -> frozenset[str]:
    """The `level` features among `features` (None: every feature)."""
    names = FEATURE_NAMES if features is None else features
    return frozenset(n for n in names if n in FEATURE_BY_NAME and FEATURE_BY_NAME[n].level == level)


def payer_features(
    txns: pl.LazyFrame, receipts: pl.LazyFrame | None = None, features: Collection[str] | None = None
) -> pl.LazyFrame:
    """One row per sending party (SENDER_KEY) of `txns` with payer_n and the payer_* features among `features`
    (default: all); needs the rarity column. `receipts` (default: `txns`) holds the transfers payers received
    (for the velocity feature). Features nobody asked for are not computed: the weekly distinct receivers and
    the velocity join cost more than the rest together."""
    want = _wanted(features, "payer")
    # Per-row facts first, only those the wanted features read, with every share's condition already a flag:
    # the sort then moves a few numbers, flags and category codes, not strings or timestamps it does not need.
    # Sorted by payer (stable: each payer's rows together, in input order), so the group-bys meet each payer's
    # rows at once, and what depends on time order (amounts summed, gaps, the busiest week) is computed payer
    # by payer by a kernel that puts the payer's rows in time order: the sums do not depend on the rows around
    # the payer's (a partition or the whole input) nor on how Polars splits the work (a parallel group-by's
    # sums changed in the last bit with the thread count). Counts and shares (sums of 0s and 1s) are exact in
    # any order.
    timed = bool(want & {"payer_usd", "payer_gap_cv", "payer_burst_share"})
    local = pl.col("_local")
    flags = {  # share feature -> the per-transfer condition it is the share of
        "payer_cross_share": is_cross_border(),
        "payer_rare_corridor_share": pl.col(RARITY) >= RARE_CORRIDOR,
        "payer_near_share": near_threshold(pl.col(S.AMOUNT_USD)),
        "payer_round_share": is_round(pl.col(S.AMOUNT)),
        "payer_night_share": is_night(local),
        "payer_weekend_share": is_weekend(local),
    }
    columns: list[pl.Expr] = [pl.col(SENDER_KEY)]
    if timed or "payer_receivers_week" in want:
        columns.append(pl.col(S.TS))
    if timed:
        columns.append(pl.col(S.AMOUNT_USD))
    if want & {"payer_receivers", "payer_receivers_week"}:
        columns.append(pl.col(RECEIVER_KEY))
    if "payer_agents" in want:
        columns.append(pl.col(S.AGENT_ID).cast(pl.Categorical))
    if "payer_corridors" in want:
        columns.append(pl.col(CORRIDOR).cast(pl.Categorical))
    columns += [cond.alias(name) for name, cond in flags.items() if name in want]
    rows = txns
    if want & {"payer_night_share", "payer_weekend_share"}:
        rows = rows.with_columns(local_ts(pl.col(S.TS), pl.col(S.SENDER_COUNTRY)).alias("_local"))
    # One chunk: gathering from a filtered query's many chunks costs several times more.
    facts = rows.select(columns).collect().rechunk()
    facts = facts[sort_order(facts, [SENDER_KEY])]
    base = facts.lazy().with_columns(pl.col(SENDER_KEY).set_sorted().alias("_party"))
    if "payer_receivers_week" in want:
        base = base.with_columns(week(pl.col(S.TS)).alias("_week"))
    aggregations = {
        "payer_receivers": pl.col(RECEIVER_KEY).n_unique().cast(pl.Float64),
        "payer_agents": pl.col(S.AGENT_ID).drop_nulls().n_unique().cast(pl.Float64),
        "payer_corridors": pl.col(CORRIDOR).n_unique().cast(pl.Float64),
        **{name: share(pl.col(name)) for name in flags},
    }
    table = base.group_by("_party").agg(
        pl.len().cast(pl.Float64).alias("payer_n"),
        *(expr.alias(name) for name, expr in aggregations.items() if name in want),
    )
    if timed:
        table = table.join(_payer_time_stats(facts).lazy(), on="_party", how="left")
    finish = []
    if "payer_receivers_week" in want:
        # Distinct receivers in a week are counted in any order: exact.
        weekly = (
            base.group_by("_party", "_week")
            .agg(pl.col(RECEIVER_KEY).n_unique().alias("_rw"))
            .group_by("_party")
            .agg(pl.col("_rw").max().cast(pl.Float64).alias("payer_receivers_week"))
        )
        table = table.join(weekly, on="_party", how="left")
    if "payer_burst_share" in want:
        finish.append((pl.col("_max_week") / pl.col("payer_n")).alias("payer_burst_share"))
    if "payer_velocity_share" in want:
        table = table.join(_velocity(txns, txns if receipts is None else receipts), on="_party", how="left")
        # Every payer here sent; those absent received nothing.
        finish.append(pl.col("payer_velocity_share").fill_null(0.0))
    table = table.with_columns(finish)
    order = ["payer_n", "payer_usd", *aggregations, "payer_gap_cv", *_LATE_PAYER_FEATURES]
    return table.select(pl.col("_party").alias(SENDER_KEY), *(n for n in order if n == "payer_n" or n in want))


# Payer features that came after the rest, in this order (pair tables keep one column order).
_LATE_PAYER_FEATURES = ("payer_receivers_week", "payer_velocity_share", "payer_burst_share")


def _payer_time_stats(facts: pl.DataFrame) -> pl.DataFrame:
    """_party, payer_usd, payer_gap_cv, _max_week (the most sends in one week) of the payers of `facts`
    (sorted by payer, each payer's rows in input order), each payer's rows taken in time order, ties in input
    order (kernels.payer_time_stats)."""
    keys = facts[SENDER_KEY].to_numpy()
    starts = group_starts(facts.select(SENDER_KEY))
    sums, gap_cv, busiest = payer_time_stats(
        starts, facts[S.TS].dt.epoch("us").to_numpy(), _floats(facts[S.AMOUNT_USD]), np.int64(_US_PER_WEEK)
    )
    return pl.DataFrame(
        {
            "_party": keys[starts[:-1]],
            "payer_usd": sums,
            "payer_gap_cv": pl.Series(gap_cv).fill_nan(None),
            "_max_week": busiest,
        }
    )


def receiver_features(txns: pl.LazyFrame, features: Collection[str] | None = None) -> pl.LazyFrame:
    """One row per receiving party (RECEIVER_KEY) with receiver_n and the receiver_* features among
    `features` (default: all)."""
    want = _wanted(features, "receiver")
    base = txns.select(pl.col(RECEIVER_KEY).alias("_party"), week(pl.col(S.TS)).alias("_week"), SENDER_KEY)
    senders = pl.col(SENDER_KEY).n_unique().cast(pl.Float64).alias("receiver_senders")
    table = base.group_by("_party").agg(
        pl.len().cast(pl.Float64).alias("receiver_n"), *([senders] if "receiver_senders" in want else [])
    )
    if "receiver_senders_week" in want:
        weekly = (
            base.group_by("_party", "_week")
            .agg(pl.col(SENDER_KEY).n_unique().alias("_sw"))
            .group_by("_party")
            .agg(pl.col("_sw").max().cast(pl.Float64).alias("receiver_senders_week"))
        )
        table = table.join(weekly, on="_party", how="left")
    return table.rename({"_party": RECEIVER_KEY})


def mixed_pair_key() -> pl.Expr:
    """One 64-bit number per (sender, receiver) pair: the sender key times an odd constant plus the receiver
    key. Grouping or a window on it is faster than on the two key columns; two pairs may (astronomically
    rarely) share a number, so it is only for counts where a shared number cannot change a result."""
    return pl.col(SENDER_KEY) * pl.lit(0x9E3779B97F4A7C15, pl.UInt64) + pl.col(RECEIVER_KEY)


def pair_features(txns: pl.LazyFrame, features: Collection[str] | None = None) -> pl.LazyFrame:
    """One row per (SENDER_KEY, RECEIVER_KEY) with ids, span, pair_n, pair_usd, pair_corridor_rarity and the
    other pair_* features among `features` (default: all).

    Most pairs of a dump are a single transfer: their features are that transfer's values, so only the
    transfers of repeated pairs are sorted and grouped (the features come out the same)."""
    want = _wanted(features, "pair")
    pairs = [SENDER_KEY, RECEIVER_KEY]
    cols = [*pairs, S.SENDER_ID, S.RECEIVER_ID, S.TS, S.AMOUNT_USD, RARITY]
    # Transfers per pair, by a window over one number per pair (the party keys mixed: 10M rows 0.43 s, against
    # 0.7-1.3 s over the two key columns). Two pairs mixing to one number would only send a lone transfer down
    # the repeated path, whose group-by on the real pair gives a lone transfer the same values.
    rows = txns.select(cols).with_columns(pl.len().over(mixed_pair_key()).alias("_n")).collect()
    lone = {  # what the variation features are for a lone (positive) amount
        "pair_amount_cv": pl.lit(0.0),
        "pair_gap_cv": pl.lit(None, pl.Float64),
    }
    single = (
        rows.lazy()
        .filter(pl.col("_n") == 1)
        .select(
            *pairs,
            pl.col(S.SENDER_ID).alias("subject_id"),
            pl.col(S.RECEIVER_ID).alias("counterparty_id"),
            pl.col(S.TS).alias("window_start"),
            pl.col(S.TS).alias("window_end"),
            pl.lit(1.0).alias("pair_n"),
            pl.col(S.AMOUNT_USD).alias("pair_usd"),
            *(expr.alias(name) for name, expr in lone.items() if name in want),
            pl.col(RARITY).cast(pl.Float64).alias("pair_corridor_rarity"),
        )
    )
    repeated = _repeated_pairs(rows.filter(pl.col("_n") > 1).drop("_n"), want)
    return pl.concat([single, repeated.lazy()], how="vertical_relaxed")


def _floats(values: pl.Series) -> np.ndarray:
    return np.ascontiguousarray(values.cast(pl.Float64).to_numpy())


def _repeated_pairs(rows: pl.DataFrame, want: frozenset[str]) -> pl.DataFrame:
    """The pair_features rows of pairs with several transfers (`rows`: their transfers): amounts, rarity and
    gaps summed pair by pair in time order, ties in input order (kernels.group_sums_cv, group_gap_cv), so a
    pair's features are the same in a partition as in the whole input."""
    pairs = [SENDER_KEY, RECEIVER_KEY]
    rows = sort_rows(rows, [*pairs, S.TS])
    starts = group_starts(rows.select(pairs))
    n = np.diff(starts).astype(np.float64)
    usd, usd_cv = group_sums_cv(starts, _floats(rows[S.AMOUNT_USD]))
    rarity, _ = group_sums_cv(starts, _floats(rows[RARITY]))
    variation = []
    if "pair_amount_cv" in want:
        variation.append(pl.Series("pair_amount_cv", usd_cv))
    if "pair_gap_cv" in want:
        variation.append(pl.Series("pair_gap_cv", group_gap_cv(starts, rows[S.TS].dt.epoch("us").to_numpy())))
    heads = rows[pl.Series(starts[:-1])]
    return heads.select(
        *pairs,
        pl.col(S.SENDER_ID).alias("subject_id"),
        pl.col(S.RECEIVER_ID).alias("counterparty_id"),
        pl.col(S.TS).alias("window_start"),
        rows[S.TS].gather(starts[1:] - 1).alias("window_end"),
        pl.Series("pair_n", n),
        pl.Series("pair_usd", usd),
        *(values.fill_nan(None) for values in variation),  # a gap CV is NaN for fewer than three transfers
        pl.Series("pair_corridor_rarity", rarity / n),
    )


# The transfer columns pair_table reads.
PAIR_TABLE_COLUMNS = (
    SENDER_KEY, RECEIVER_KEY, S.SENDER_ID, S.RECEIVER_ID, S.TS, S.AMOUNT, S.AMOUNT_USD, S.AGENT_ID,
    S.SENDER_COUNTRY, S.RECEIVER_COUNTRY,
)  # fmt: skip


def pair_table(
    txns: pl.DataFrame,
    corridors: pl.DataFrame,
    receivers: pl.DataFrame | None = None,
    owned_payers: pl.Expr | None = None,
    ordered: bool = True,
    features: Collection[str] | None = None,
) -> pl.DataFrame:
    """Every payer->receiver pair with its own, its payer's and its receiver's features (`features`, default
    FEATURE_NAMES; a model asks for its own: Model.feature_names), sorted by payer and receiver key
    (`ordered`; a caller that orders what it keeps may skip the sort).

    On one partition of the transfers: `owned_payers` (a condition on SENDER_KEY) keeps the pairs of
    the payers whose every transfer the partition holds, and `receivers` (receiver_features of every
    receiver, gathered over all partitions) replaces the receiver features the partition cannot see."""
    rows = txns.lazy().select(PAIR_TABLE_COLUMNS)
    if owned_payers is not None and receivers is not None and "payer_velocity_share" not in _wanted(features, "payer"):
        # Only the owned payers' sends are read (no receiver features, no receipts to compute): half or less of
        # a partition, which also holds the copies of transfers to the parties it owns.
        rows, owned_payers = rows.filter(owned_payers), None
    # Materialise the projected rows (with rarity) once: three aggregations read them.
    lazy = _with_rarity(rows, corridors).collect().lazy()
    sends = lazy if owned_payers is None else lazy.filter(owned_payers)
    pairs, payers = pair_features(sends, features), payer_features(sends, lazy, features)
    if receivers is None and not ordered:
        # In memory and unordered (a scan's scorer), one lazy query: as fast as joining the collected tables, and
        # it holds less (10M: peak 6.3 GB against 6.7 GB).
        table = pairs.join(payers, on=SENDER_KEY, how="left").join(
            receiver_features(lazy, features), on=RECEIVER_KEY, how="left"
        )
        return table.collect()
    # Partitioned, the tables are collected each on its own and joined eagerly: one lazy query of it all (or lazy
    # joins of the collected tables) took a fifth longer per partition (10M world in 16 partitions, two passes:
    # 9.6-10.1 s against 7.7 s). Ordered, only the pairs are sorted, before the joins, which keep their order: the
    # joined table, half as wide again, sorted by two keys took longer than the rest (10M, every feature, as a
    # model is trained: 14.2-16.3 s and a 7.6 GB peak against 10.9-11.2 s and 6.6 GB; the same table).
    eager = pairs.collect()
    if ordered:
        eager = sort_rows(eager, [SENDER_KEY, RECEIVER_KEY])
    keep: Literal["left", "none"] = "left" if ordered else "none"
    if receivers is None:
        receivers = receiver_features(lazy, features).collect()
    eager = eager.join(payers.collect(), on=SENDER_KEY, how="left", maintain_order=keep)
    return eager.join(receivers, on=RECEIVER_KEY, how="left", maintain_order=keep)


def feature_matrix(
    table: pl.DataFrame, fill: np.ndarray, features: tuple[Feature, ...] = FEATURES, dtype: type = np.float64
) -> np.ndarray:
    """The model's input: `features` in order, nulls filled with `fill`, log1p where Feature.log; a C-ordered
    matrix of `dtype` (computed in float64, then rounded once: float32 gives what casting the float64
    matrix would, without that matrix)."""
    cols = []
    for i, f in enumerate(features):
        col = pl.col(f.name).cast(pl.Float64).fill_nan(None).fill_null(float(fill[i]))
        cols.append((col.log1p() if f.log else col).cast(pl.Float32 if dtype == np.float32 else pl.Float64))
    return np.ascontiguousarray(table.select(cols).to_numpy(order="c"), dtype=dtype)
