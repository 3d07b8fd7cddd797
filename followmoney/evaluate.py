"""Score an alert file against ground-truth labels (entity level), as `followmoney evaluate` prints it.

An alert *hits* a labelled pattern when its subject or counterparty is one of the pattern's parties.
- precision (per typology / rule): share of its alerts that hit a planted pattern of that typology;
- recall (per typology): share of planted patterns of that typology hit by an alert of it;
- precision@k: share of the k top-scored alerts that hit any planted (suspicious) pattern;
- false-positive rate on look-alikes: share of benign look-alike parties (in no planted pattern)
  that are the subject or counterparty of any alert (also: how many of them each alert typology reaches);
- average precision: mean of precision@k over the ranks of the alerts that hit a planted pattern
  (how well the score orders true alerts above false ones, all k at once);
- patterns found by any alert: planted patterns whose parties any alert names, whatever its typology.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from followmoney.errors import InputError


def _read(path: Path, what: str) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(
            f"unreadable {what} Parquet file ({' '.join(str(exc).split())[:150]})", file=str(path)
        ) from None


def _alert_parties(alerts: pl.DataFrame) -> pl.DataFrame:
    """(alert_id, party_id) for the subject and counterparty of each alert."""
    return (
        pl.concat(
            [
                alerts.select("alert_id", pl.col("subject_id").alias("party_id")),
                alerts.select("alert_id", pl.col("counterparty_id").alias("party_id")),
            ]
        )
        .drop_nulls("party_id")
        .unique()
    )


def evaluate(alerts: pl.DataFrame, labels: pl.DataFrame, ks: tuple[int, ...] = (50, 200)) -> dict[str, Any]:
    """Precision, recall, F1 per typology and per rule, precision@k, and look-alike false-positive rate."""
    planted = labels.filter(pl.col("suspicious"))
    pattern_parties = planted.select("pattern_id", "typology", pl.col("party_ids").alias("party_id")).explode(
        "party_id"
    )
    alert_parties = _alert_parties(alerts)
    hits = alert_parties.join(pattern_parties, on="party_id").join(
        alerts.select("alert_id", pl.col("typology").alias("alert_typology"), "rule_code", "score"), on="alert_id"
    )
    same = hits.filter(pl.col("typology") == pl.col("alert_typology"))
    hit_alerts_typed = set(same["alert_id"].to_list())
    hit_any = set(hits["alert_id"].to_list())

    per_typology: dict[str, dict[str, float | int]] = {}
    typologies = sorted(set(alerts["typology"].to_list()) | set(planted["typology"].drop_nulls().to_list()))
    for typ in typologies:
        own = alerts.filter(pl.col("typology") == typ)
        n_planted = planted.filter(pl.col("typology") == typ).height
        tp_alerts = own.filter(pl.col("alert_id").is_in(list(hit_alerts_typed))).height
        found = same.filter(pl.col("typology") == typ)["pattern_id"].n_unique()
        precision = tp_alerts / own.height if own.height else float("nan")
        recall = found / n_planted if n_planted else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        per_typology[typ] = {
            "alerts": own.height,
            "planted": n_planted,
            "true_alerts": tp_alerts,
            "patterns_found": found,
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
        }
    per_rule: dict[str, dict[str, float | int]] = {}
    for code in alerts["rule_code"].unique().sort():
        own = alerts.filter(pl.col("rule_code") == code)
        tp = own.filter(pl.col("alert_id").is_in(list(hit_alerts_typed))).height
        found = same.filter(pl.col("rule_code") == code)["pattern_id"].n_unique()
        per_rule[code] = {
            "alerts": own.height,
            "true_alerts": tp,
            "precision": round(tp / own.height, 4),
            "patterns_found": found,
        }
    ranked = alerts.sort(["score", "alert_id"], descending=[True, False])
    at_k = {}
    for k in ks:
        top = ranked.head(k)
        at_k[f"precision@{k}"] = (
            round(top.filter(pl.col("alert_id").is_in(list(hit_any))).height / top.height, 4)
            if top.height
            else float("nan")
        )
    suspicious_parties = set(pattern_parties["party_id"].to_list())
    benign = (
        labels.filter(~pl.col("suspicious"))
        .select("kind", pl.col("party_ids").alias("party_id"))
        .explode("party_id")
        .filter(~pl.col("party_id").is_in(list(suspicious_parties)))
        .unique()
    )
    alerted = set(alert_parties["party_id"].to_list())
    fp_by_kind = {}
    for kind in benign["kind"].unique().sort():
        parties = benign.filter(pl.col("kind") == kind)["party_id"].unique()
        n_fp = parties.is_in(list(alerted)).sum()
        fp_by_kind[kind] = {"parties": parties.len(), "alerted": int(n_fp), "fp_rate": round(n_fp / parties.len(), 4)}
    all_benign = benign["party_id"].unique()
    n_fp = int(all_benign.is_in(list(alerted)).sum())
    # Which alert typologies reach the look-alikes (where to look when the FP rate is high).
    benign_hits = alert_parties.filter(pl.col("party_id").is_in(all_benign.implode())).join(
        alerts.select("alert_id", "typology"), on="alert_id"
    )
    fp_by_typology = {
        typ: int(benign_hits.filter(pl.col("typology") == typ)["party_id"].n_unique())
        for typ in benign_hits["typology"].unique().sort()
    }
    hits_in_order = ranked["alert_id"].is_in(list(hit_any)).to_numpy()
    found_any = hits.select("pattern_id").n_unique() if hits.height else 0
    return {
        "alerts": alerts.height,
        "per_typology": per_typology,
        "per_rule": per_rule,
        **at_k,
        "lookalike_parties": all_benign.len(),
        "lookalike_parties_alerted": n_fp,
        "lookalike_fp_rate": round(n_fp / all_benign.len(), 4) if all_benign.len() else float("nan"),
        "lookalike_fp_by_kind": fp_by_kind,
        "lookalike_parties_by_alert_typology": fp_by_typology,
        "average_precision": _average_precision(hits_in_order),
        "patterns_found_by_any_alert": found_any,
        "planted_patterns": planted.height,
    }


def _average_precision(hit: Any) -> float:
    """Mean of precision@k over the ranks k of the hitting alerts (1.0 = every hit ranks above every miss)."""
    n_hits = int(hit.sum())
    if n_hits == 0:
        return float("nan")
    ranks = (hit.nonzero()[0] + 1).astype(float)
    return round(float(((hit.cumsum()[hit.astype(bool)]) / ranks).mean()), 4)


def evaluate_files(alerts_path: Path, labels_path: Path) -> dict[str, Any]:
    """evaluate() on an alerts.parquet and a labels.parquet."""
    return evaluate(_read(alerts_path, "alerts"), _read(labels_path, "labels"))
