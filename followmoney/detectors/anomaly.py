"""Kind `anomaly`: payer->receiver pairs that behave unlike the pairs the anomaly model was trained on.

The model (models.py) scores every pair from its own, its payer's and its receiver's features
(features.py); a pair whose score ranks at or above `min_percentile` of the training pairs, and
whose behaviour can be explained by at least `min_unusual` features in the far tails of their
training distributions, becomes a candidate about the side that makes it unusual (the payer, or the
receiver when receiver features dominate). Percentiles are against the training world, not the
scanned batch, so a rule example of a dozen rows is scored as meaningfully as a 10M-row dump.

The pipeline runs this kind in its own stage (`anomaly_stage`): it scores pairs once, attaches each
rule candidate's payer percentile (used by the score), and after linking `finalize_anomalies`
drops anomaly candidates already covered by a rule alert and keeps the most anomalous: those unusual
on the most features at once, then the highest percentile (at most `max_alerts`, and at most
`max_per_10k_pairs` per 10,000 pairs scanned).
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import polars as pl

from followmoney import schema as S
from followmoney.config import DEFAULT_MODELS_DIR
from followmoney.detectors.base import OWN_RECEIVER, Detector, OfficialScreen, Param, owned_rows
from followmoney.features import FEATURE_BY_NAME, PAIR_TABLE_COLUMNS, pair_table, receiver_features
from followmoney.forest import attribution
from followmoney.models import FEATURE_LEVELS, Model, feature_percentiles, load, score_table
from followmoney.normalise import RECEIVER_KEY, SENDER_KEY
from followmoney.rowsets import Rows, collect_rows, own_buffers
from followmoney.schema import usd_total
from followmoney.timing import LOG

KIND = "anomaly"
PERCENTILE = "anomaly_percentile"
_MAX_REASONS = 3
MIN_SENDS_FOR_SHARES = 3


class AnomalousPair(Detector):
    """Pairs (and the party behind them) whose features an anomaly model finds far from typical."""

    kind = KIND
    summary = "payer->receiver pairs an anomaly model ranks as unlike the training world, explained by features"
    params: ClassVar[dict[str, Param]] = {
        "model": Param(str, "iforest", "model name (latest version), name-vN, or a model directory"),
        "min_percentile": Param(float, 0.998, "lowest anomaly percentile, among training pairs, that alerts"),
        "feature_tail": Param(float, 0.002, "a feature is unusual in this two-sided tail of its training values"),
        "min_unusual": Param(int, 2, "fewest unusual features needed to explain (and raise) an alert"),
        "max_alerts": Param(int, 25, "keep at most this many anomaly alerts (the most anomalous) per scan"),
        "max_per_10k_pairs": Param(float, 2.0, "and at most this many per 10,000 payer->receiver pairs scanned"),
    }
    evidence: ClassVar[dict[str, pl.DataType]] = {
        "anomaly_score": pl.Float64(),
        "anomaly_percentile": pl.Float64(),
        "top_percent": pl.Float64(),
        "explanation": pl.String(),
        "n_unusual": pl.Int64(),
        "n_pairs": pl.Int64(),
        "side": pl.String(),
        "model": pl.String(),
        "n_scanned_pairs": pl.Int64(),
    }

    def detect(
        self, txns: pl.DataFrame, params: dict[str, Any], officials: OfficialScreen | None = None
    ) -> pl.DataFrame:
        """Anomalous pairs in `txns` under the model named by params['model'] (from the default models dir)."""
        model = load(str(params["model"]), DEFAULT_MODELS_DIR)
        table = pair_table(txns, model.corridors(), features=model.feature_names)
        return anomaly_candidates(txns, model, score_table(model, table), params)


def _explain(model: Model, rows: pl.DataFrame, tail_share: float) -> tuple[list[str], np.ndarray, list[str]]:
    """Per row: the explanation text, the number of unusual features, and the side that drives it."""
    feats = model.features
    values = rows.select(pl.col(f.name).cast(pl.Float64) for f in feats).to_numpy()
    filled = np.where(np.isnan(values), model.arrays["fill"][None, :], values)
    q = model.arrays["feature_q"]
    pct = feature_percentiles(filled, q)
    typical = q[len(FEATURE_LEVELS) // 2]
    high = np.array([f.unusual in ("high", "both") for f in feats])
    low = np.array([f.unusual in ("low", "both") for f in feats])
    tail = np.minimum(np.where(high[None, :], 1.0 - pct, 1.0), np.where(low[None, :], pct, 1.0))
    unusual = (tail <= tail_share) & ~np.isnan(values) & (np.abs(filled - typical[None, :]) > 1e-12)
    # A share of one or two sends says little ("100% at night" after a single transfer).
    few = rows["payer_n"].cast(pl.Float64).fill_null(0).to_numpy() < MIN_SENDS_FOR_SHARES
    shares = np.array([f.level == "payer" and f.name.endswith("_share") for f in feats])
    unusual &= ~(few[:, None] & shares[None, :])
    # Say published red-flag indicators first, then the other unusual traits, each group ordered by how
    # much the model itself relies on the feature for this row.
    weight = attribution(model.kind, model.matrix(rows), model.arrays)
    flag = np.array([f.red_flag for f in feats])
    receiver = np.array([f.level == "receiver" for f in feats])
    texts, sides = [], []
    for i in range(values.shape[0]):  # one loop per alerted pair (a few thousand at most), never per transfer
        order = [j for j in np.lexsort((-weight[i], ~flag)) if unusual[i, j]][:_MAX_REASONS]
        texts.append("; ".join(feats[j].text.format(value=filled[i, j], typical=typical[j]) for j in order))
        drive = weight[i] * unusual[i]
        sides.append("receiver" if drive[receiver].sum() > drive[~receiver].sum() else "sender")
    return texts, unusual.sum(axis=1).astype(np.int64), sides


def anomaly_candidates(
    txns: Rows,
    model: Model,
    scored: pl.DataFrame,
    params: dict[str, Any],
    n_scanned: int | None = None,
) -> pl.DataFrame:
    """Candidates from a scored pair table: one per anomalous party, evidence = its anomalous pairs' transfers.

    `scored` may hold only the pairs at or above some percentile (gathered from partitions); `n_scanned`
    then says how many pairs were scored in all (default: the height of `scored`)."""
    hits = scored.filter(pl.col(PERCENTILE) >= float(params["min_percentile"]))
    if hits.height == 0:
        return AnomalousPair.empty()
    texts, n_unusual, sides = _explain(model, hits, float(params["feature_tail"]))
    hits = hits.with_columns(
        pl.Series("explanation", texts, dtype=pl.String),
        pl.Series("n_unusual", n_unusual, dtype=pl.Int64),
        pl.Series("side", sides, dtype=pl.String),
    ).filter(pl.col("n_unusual") >= int(params["min_unusual"]))
    if hits.height == 0:
        return AnomalousPair.empty()
    hits = hits.with_columns(
        pl.when(pl.col("side") == "sender").then(pl.col("subject_id")).otherwise(pl.col("counterparty_id")).alias("_p"),
        pl.when(pl.col("side") == "sender").then(pl.col("counterparty_id")).otherwise(pl.col("subject_id")).alias("_o"),
    )
    # Evidence: every transfer of the alerted party on the alerted side (its sends, or its receipts),
    # since the features that make it unusual describe all of them.
    evidence = side_evidence(txns, hits.select("_p", "side").unique("_p", keep="first"))
    top = pl.col(PERCENTILE).rank("ordinal", descending=True).over("_p") == 1
    best = hits.sort(PERCENTILE, "anomaly_score", "_o", descending=[True, True, False]).filter(top)
    floor = float(params["min_percentile"])
    pct_term = ((pl.col(PERCENTILE) - floor) / max(1e-9, 1.0 - floor)).clip(0, 1)
    out = (
        best.select("_p", "anomaly_score", PERCENTILE, "explanation", "n_unusual", "side")
        .join(evidence, on="_p")
        .sort("n_unusual", PERCENTILE, "_p", descending=[True, True, False])
    )
    return out.select(
        pl.lit(None, pl.String).alias("rule_code"),
        pl.col("_p").alias("subject_id"),
        pl.col("_single").alias("counterparty_id"),
        "window_start",
        "window_end",
        "n_txns",
        "total_usd",
        (0.6 * pct_term + 0.4 * ((pl.col("n_unusual") - 1) / 3).clip(0, 1)).alias("strength"),
        "txn_ids",
        pl.col("anomaly_score").round(6),
        pl.col(PERCENTILE).round(6),
        ((1 - pl.col(PERCENTILE)) * 100).clip(0.01, 100).round(2).alias("top_percent"),
        "explanation",
        "n_unusual",
        "n_pairs",
        "side",
        pl.lit(model.label).alias("model"),
        pl.lit(scored.height if n_scanned is None else n_scanned, pl.Int64).alias("n_scanned_pairs"),
    )


def side_evidence(txns: Rows, parties: pl.DataFrame) -> pl.DataFrame:
    """Per party of `parties` (_p, side: "sender" or "receiver", one row per party): its transfers on that side
    (its sends, or its receipts) summed up — _p, n_txns, total_usd, txn_ids (sorted), n_pairs (distinct
    counterparties), _single (the counterparty when there is one), window_start, window_end.

    `txns` is read once for both sides and only the parties' transfers are kept. Partitioned, `txns` is every
    spilled row: a lazy join of it with each side (the earlier form) read it twice, and at 50M the anomaly stage
    took 14.0 s and set the scan's peak, 7.38 GiB; filtered in one pass, 9.2 s, and the scan peaks at 5.32 GiB."""
    senders = parties.filter(pl.col("side") == "sender").select("_p")
    receivers = parties.filter(pl.col("side") == "receiver").select("_p")
    mine = pl.col(S.SENDER_ID).is_in(senders["_p"].implode()) | pl.col(S.RECEIVER_ID).is_in(receivers["_p"].implode())
    touching = collect_rows(
        txns, lambda rows: rows.filter(mine).select(S.SENDER_ID, S.RECEIVER_ID, S.TS, S.TXN_ID, S.AMOUNT_USD)
    )
    sends = touching.join(senders, left_on=S.SENDER_ID, right_on="_p").select(
        pl.col(S.SENDER_ID).alias("_p"), pl.col(S.RECEIVER_ID).alias("_o"), S.TS, S.TXN_ID, S.AMOUNT_USD
    )
    receipts = touching.join(receivers, left_on=S.RECEIVER_ID, right_on="_p").select(
        pl.col(S.RECEIVER_ID).alias("_p"), pl.col(S.SENDER_ID).alias("_o"), S.TS, S.TXN_ID, S.AMOUNT_USD
    )
    return (
        pl.concat([sends, receipts])
        .group_by("_p")
        .agg(
            pl.len().cast(pl.Int64).alias("n_txns"),
            usd_total(pl.col(S.AMOUNT_USD)).alias("total_usd"),
            pl.col(S.TXN_ID).sort().alias("txn_ids"),
            pl.col("_o").n_unique().cast(pl.Int64).alias("n_pairs"),
            pl.when(pl.col("_o").n_unique() == 1).then(pl.col("_o").first()).otherwise(None).alias("_single"),
            pl.col(S.TS).min().alias("window_start"),
            pl.col(S.TS).max().alias("window_end"),
        )
        .sort("_p")
    )


def _hits(model: Model, table: pl.DataFrame, scores: np.ndarray, floor: float) -> pl.DataFrame:
    """The pairs whose percentile reaches `floor`, with score and percentile (only the scores that can
    reach it are turned into percentiles)."""
    near = scores >= model.score_below(floor)
    top = scores[near]
    return (
        table.filter(pl.Series(near))
        .with_columns(pl.Series("anomaly_score", top), pl.Series(PERCENTILE, model.percentiles(top)))
        .filter(pl.col(PERCENTILE) >= floor)
    )


def _payer_percentiles(model: Model, table: pl.DataFrame, scores: np.ndarray) -> pl.DataFrame:
    """Each sending party's highest pair percentile (what the score adds to rule alerts about it). A
    percentile rises with the score, so a payer's highest percentile is its highest score's, grouped on the
    numeric payer key."""
    best = (
        table.select(SENDER_KEY, "subject_id", pl.Series("anomaly_score", scores))
        .group_by(SENDER_KEY)
        .agg(pl.col("subject_id").first(), pl.col("anomaly_score").max())
    )
    return best.select("subject_id", pl.Series(PERCENTILE, model.percentiles(best["anomaly_score"].to_numpy())))


class PartitionedTransfers(Protocol):
    """What the anomaly stage reads (partition.Transfers): partitions, ownership, every row once."""

    n_parts: int

    def partitions(self, columns: Collection[str] | None = None) -> Iterator[tuple[int, pl.DataFrame]]: ...

    def owned(self, key: str | pl.Expr, part: int) -> pl.Expr: ...

    def every_row_parts(self, *, with_duplicates: bool = False) -> Rows: ...


@dataclass
class ScoredPairs:
    """What scoring every pair leaves for the candidates: the pairs that may alert, payer percentiles, a count."""

    hits: pl.DataFrame  # scored pairs at or above the lowest min_percentile of the model's rules
    payer_percentiles: pl.DataFrame  # subject_id, anomaly_percentile (the payer's highest pair percentile)
    n_pairs: int


def owned_receiver_features(frame: pl.DataFrame, features: Collection[str] | None = None) -> pl.DataFrame:
    """Features (among `features`, default all) of the receivers one partition owns (all of them in memory):
    gathered over every partition before pairs are scored, since a receiver's payers are spread over partitions."""
    return receiver_features(frame.lazy().filter(owned_rows(frame, OWN_RECEIVER)), features).collect()


class PairScorer:
    """Scores one model's payer->receiver pairs partition by partition, keeping what the candidates need.

    Each partition's pairs are those of the payers it owns (every transfer of a payer meets in its
    partition); `receivers` (receiver features of every receiver) replaces what one partition cannot see
    of a receiver, and is None in memory (one partition: pair_table computes them from the same frame)."""

    def __init__(self, model: Model, floor: float, receivers: pl.DataFrame | None = None) -> None:
        self.model, self.floor, self.receivers = model, floor, receivers
        self.corridors = model.corridors()
        self.hits: list[pl.DataFrame] = []
        self.payers: list[pl.DataFrame] = []
        self.n_pairs = 0
        self.seconds = {"pair features": 0.0, "model scores": 0.0}

    def add(self, frame: pl.DataFrame, owned_payers: pl.Expr) -> None:
        """Score the pairs of the payers `owned_payers` (a condition on SENDER_KEY) selects in `frame`."""
        started = time.perf_counter()
        # Unordered: the hits kept are sorted in result(), and a payer's percentile is a maximum.
        model = self.model
        features = model.feature_names
        table = pair_table(frame, self.corridors, self.receivers, owned_payers, ordered=False, features=features)
        self.seconds["pair features"] += time.perf_counter() - started
        started = time.perf_counter()
        scores = model.table_scores(table)
        self.n_pairs += table.height
        hits, payers = _hits(model, table, scores, self.floor), _payer_percentiles(model, table, scores)
        if self.receivers is not None:  # partitioned: kept past their partition, so in buffers of their own (their
            # ids are views into the partition's text); in memory the one frame lives on and a copy is waste
            hits, payers = own_buffers(hits), own_buffers(payers)
        self.hits.append(hits)
        self.payers.append(payers)
        self.seconds["model scores"] += time.perf_counter() - started

    def result(self) -> ScoredPairs:
        """Every partition's hits and payer percentiles, in one canonical order."""
        LOG.info("  %s pairs: %s", f"{self.n_pairs:,}", ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))
        if not self.hits:
            return ScoredPairs(
                pl.DataFrame(), pl.DataFrame(schema={"subject_id": pl.String, PERCENTILE: pl.Float64}), 0
            )
        return ScoredPairs(
            pl.concat(self.hits).sort(SENDER_KEY, RECEIVER_KEY),
            pl.concat(self.payers).sort("subject_id"),
            self.n_pairs,
        )


def score_pairs(
    transfers: PartitionedTransfers, model: Model, floor: float, receivers: pl.DataFrame | None = None
) -> ScoredPairs:
    """Score every payer->receiver pair, partition by partition, each in its payer's partition. When
    partitioned, `receivers` (owned_receiver_features of every partition, e.g. gathered while detecting)
    is computed here if not given."""
    if transfers.n_parts > 1 and receivers is None:
        receivers = pl.concat(
            [owned_receiver_features(frame, model.feature_names) for _, frame in transfers.partitions((S.TS,))]
        )
    scorer = PairScorer(model, floor, receivers if transfers.n_parts > 1 else None)
    reading = 0.0
    started = time.perf_counter()
    for part, frame in transfers.partitions(PAIR_TABLE_COLUMNS):
        reading += time.perf_counter() - started
        scorer.add(frame, transfers.owned(SENDER_KEY, part))
        started = time.perf_counter()
    LOG.info("  partitions read for the model: %.1f s", reading)
    return scorer.result()


def anomaly_models(
    rules: list[Any], model_ref: str | None, models_dir: Path = DEFAULT_MODELS_DIR
) -> dict[str, tuple[Model, list[Any]]]:
    """Each model the `anomaly` rules use (`model_ref`, when given, overrides every rule's), loaded once, with
    the rules that use it; empty without an anomaly rule."""
    own = [r for r in rules if r.kind == KIND]
    refs = sorted({model_ref or str(r.params["model"]) for r in own})
    return {
        ref: (load(ref, models_dir), [r for r in own if (model_ref or str(r.params["model"])) == ref]) for ref in refs
    }


def model_feature_names(models: dict[str, tuple[Model, list[Any]]]) -> tuple[str, ...]:
    """Every feature some model of `models` (anomaly_models) reads, sorted: what gathered features must hold."""
    return tuple(sorted({name for model, _ in models.values() for name in model.feature_names}))


def receivers_countable(models: dict[str, tuple[Model, list[Any]]]) -> bool:
    """True when the only receiver feature any model of `models` reads is receiver_n: a count of each
    receiver's transfers that the pass spilling the partitions can keep, so pairs can be scored in the
    detection pass instead of a pass of their own (partition.spill_transfers' count_receivers)."""
    wanted = {name for name in model_feature_names(models) if FEATURE_BY_NAME[name].level == "receiver"}
    return bool(models) and wanted <= {"receiver_n"}


def _score_floor(rules: list[Any]) -> float:
    """The lowest min_percentile of the anomaly rules using one model: the pairs kept as hits for all of them."""
    return min(float(r.params["min_percentile"]) for r in rules)


def pair_scorers(
    models: dict[str, tuple[Model, list[Any]]], receivers: pl.DataFrame | None = None
) -> dict[str, PairScorer]:
    """One PairScorer per model of `models`, its floor the lowest min_percentile of the rules using it."""
    return {ref: PairScorer(model, _score_floor(mine), receivers) for ref, (model, mine) in models.items()}


def anomaly_stage(
    transfers: PartitionedTransfers,
    candidates: pl.DataFrame,
    models: dict[str, tuple[Model, list[Any]]],
    receivers: pl.DataFrame | None = None,
    scored: dict[str, ScoredPairs] | None = None,
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Score pairs once per model of `models` (anomaly_models); add anomaly candidates of every `anomaly`
    rule and payer percentiles to all.

    Returns (candidates, models used) — the latter for summary.json. Without an anomaly rule the
    candidates come back unchanged. `receivers`: see score_pairs. `scored` (by model reference): pairs
    already scored in the detection pass (pair_scorers), which are then not scored again.
    """
    if not models:
        return candidates, []
    parts: list[pl.DataFrame] = []
    first: ScoredPairs | None = None
    for ref, (model, mine) in models.items():
        if scored is not None and ref in scored:
            pairs = scored[ref]
        else:
            pairs = score_pairs(transfers, model, _score_floor(mine), receivers)
        first = first if first is not None else pairs
        if pairs.hits.height == 0:
            continue
        for rule in mine:
            found = anomaly_candidates(transfers.every_row_parts(), model, pairs.hits, rule.params, pairs.n_pairs)
            parts.append(found.with_columns(pl.lit(rule.code).alias("rule_code")))
    assert first is not None
    base = candidates.drop(PERCENTILE, strict=False).join(first.payer_percentiles, on="subject_id", how="left")
    merged = pl.concat([base, *parts], how="diagonal_relaxed")
    return merged, [model.info() for model, _ in models.values()]


def finalize_anomalies(linked: pl.DataFrame, rules: list[Any]) -> pl.DataFrame:
    """Drop anomaly candidates whose parties a rule candidate (meeting its requirements) already covers,
    then keep each anomaly rule's most anomalous: at most `max_alerts`, and at most `max_per_10k_pairs`
    per 10,000 pairs scanned (an anomaly is rare by definition; a small batch gets few)."""
    own = {r.code: r.params for r in rules if r.kind == KIND}
    if not own or linked.height == 0:
        return linked
    is_anomaly = pl.col("rule_code").is_in(list(own))
    rule_rows = linked.filter(~is_anomaly)
    covered = pl.concat([rule_rows["subject_id"], rule_rows["counterparty_id"].drop_nulls()]).unique().implode()
    anomalies = linked.filter(
        is_anomaly & ~pl.col("subject_id").is_in(covered) & ~pl.col("counterparty_id").is_in(covered).fill_null(False)
    )
    kept = []
    for code, params in sorted(own.items()):
        mine = anomalies.filter(pl.col("rule_code") == code)
        if mine.height == 0:
            continue
        scanned = int(mine["n_scanned_pairs"].fill_null(0).cast(pl.Int64).max() or 0)  # type: ignore[arg-type]
        limit = min(int(params["max_alerts"]), math.ceil(scanned * float(params["max_per_10k_pairs"]) / 10_000))
        # Most anomalous first: unusual on the most counts at once, then the highest percentile.
        ranked = mine.sort("n_unusual", PERCENTILE, "subject_id", descending=[True, True, False])
        kept.append(ranked.head(limit))
    return pl.concat([rule_rows, *kept], how="diagonal_relaxed")
