"""Turn linked candidates into alerts: a 0-100 score, plain-language reasons, a stable id, a fixed order.

Score (documented in the README): a noisy-or of four independent signals, then a damping factor,

    rule     = severity * (0.5 + 0.5 * strength)          # the pattern and how strong its evidence is
    official = 0.5 * official_confidence                  # a listed official is a party
    network  = 0.6 * network_confidence * 0.7 ** hops     # a listed network member is (or is near) a party
    anomaly  = 0.3 * clip((percentile - 0.99) / 0.01, 0, 1)   # the anomaly model ranks the party's pairs
                                                          # in the top 1% of its training pairs
    score    = 100 * (1 - (1-rule)(1-official)(1-network)(1-anomaly)) * damping

damping is 0.25 for a recurring payment that looks like family support (payer abroad, sharing a
family name with the receiver), else 1. Each term lies in [0, 1) and only grows with its input
(hops excepted: more hops, weaker link), so stronger evidence never lowers a score; a missing input
counts as absent (0). For `anomaly` alerts the rule's strength is itself derived from the percentile
and the number of unusual features, so such alerts reach the top only when unusual on several counts.
"""

from __future__ import annotations

import hashlib
import string
from typing import Any

import polars as pl

from followmoney import schema as S
from followmoney.rules import Rule

FAMILY_SUPPORT_DAMPING = 0.25
NETWORK_HOP_DECAY = 0.7
ANOMALY_WEIGHT = 0.3
ANOMALY_FLOOR = 0.99  # percentiles below this add nothing: only the top 1% of pairs is unusual


def alert_id(rule_code: str, subject: str | None, counterparty: str | None, txn_ids: list[str]) -> str:
    """A stable id: the same rule, parties and evidence transfers always give the same id."""
    text = "\x1f".join([rule_code, subject or "", counterparty or "", *sorted(txn_ids)])
    return f"{rule_code}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"


def score_expr(
    severity: pl.Expr,
    strength: pl.Expr,
    official_conf: pl.Expr,
    network_conf: pl.Expr,
    hops: pl.Expr,
    damping: pl.Expr,
    anomaly_pct: pl.Expr | None = None,
) -> pl.Expr:
    """The 0-100 score from its inputs (see the module docstring); null inputs count as absent."""
    rule = severity * (0.5 + 0.5 * strength.fill_null(0).clip(0, 1))
    official = 0.5 * official_conf.fill_null(0).clip(0, 1)
    network = 0.6 * network_conf.fill_null(0).clip(0, 1) * pl.lit(NETWORK_HOP_DECAY).pow(hops.fill_null(0).clip(0))
    pct = (anomaly_pct if anomaly_pct is not None else pl.lit(None, pl.Float64)).fill_null(0).fill_nan(0)
    anomaly = ANOMALY_WEIGHT * ((pct - ANOMALY_FLOOR) / (1 - ANOMALY_FLOOR)).clip(0, 1)
    noisy_or = 1 - (1 - rule) * (1 - official) * (1 - network) * (1 - anomaly)
    return (100 * noisy_or * damping).clip(0, 100).round(1)


class _Template(string.Formatter):
    """str.format restricted to plain field names (validated by rules.py); nulls print as 'n/a'."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:
            return "n/a"
        return super().format_field(value, format_spec)


def _format_reason(template: str, fields: pl.DataFrame) -> pl.Series:
    formatter = _Template()
    return pl.Series([formatter.vformat(template, (), row) for row in fields.to_dicts()], dtype=pl.String)


def _link_sentences() -> pl.Expr:
    """Plain-language sentences on who the parties are, as found by the link stage."""

    def opt(cond: pl.Expr, text: pl.Expr) -> pl.Expr:
        return pl.when(cond).then(text).otherwise(None)

    network = opt(pl.col("network_id").is_not_null(), pl.format("Network link: {}.", pl.col("network_path")))
    family = opt(
        pl.col("_family_support"),
        pl.format(
            "Payer sends from abroad and shares the family name '{}' with the receiver: "
            "may be family support (score lowered).",
            pl.col("shared_family_name"),
        ),
    )
    unusual = opt(
        (pl.col("anomaly_percentile").fill_null(0) >= ANOMALY_FLOOR) & (pl.col("typology") != "anomaly"),
        pl.format(
            "The anomaly model also ranks the subject's payments above {}% of the pairs it was trained on.",
            (pl.col("anomaly_percentile") * 100).round(2),
        ),
    )
    return pl.concat_list(pl.col("official_text"), network, family, unusual).list.drop_nulls().list.join(" ")


def score_alerts(linked: pl.DataFrame, rules: dict[str, Rule]) -> pl.DataFrame:
    """Alerts in the contract's shape, sorted by score descending then alert_id."""
    if linked.height == 0:
        return pl.DataFrame(schema=S.ALERT_SCHEMA)
    parts = []
    for code in linked["rule_code"].unique().sort():
        rule = rules[code]
        rows = linked.filter(pl.col("rule_code") == code)
        text = _format_reason(rule.reason, rows.select(list(dict.fromkeys(rule.reason_fields()))))
        parts.append(
            rows.with_columns(
                pl.lit(rule.typology).alias("typology"),
                pl.lit(rule.severity).alias("_severity"),
                pl.concat_str(pl.lit(f"[{code}] "), pl.lit(text)).alias("_rule_text"),
            )
        )
    frame = pl.concat(parts, how="diagonal_relaxed")
    if "anomaly_percentile" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.Float64).alias("anomaly_percentile"))
    cross = pl.col("cross_border") if "cross_border" in frame.columns else pl.lit(False)
    frame = frame.with_columns(
        (
            (pl.col("typology") == "recurring_payment_to_official")
            & pl.col("shared_family_name").is_not_null()
            & cross.fill_null(False)
        ).alias("_family_support")
    )
    frame = frame.with_columns(
        score_expr(
            pl.col("_severity"),
            pl.col("strength"),
            pl.col("official_confidence"),
            pl.col("network_confidence"),
            pl.col("network_hops"),
            pl.when(pl.col("_family_support")).then(FAMILY_SUPPORT_DAMPING).otherwise(1.0),
            pl.col("anomaly_percentile"),
        ).alias("score"),
    )
    frame = frame.with_columns(
        pl.concat_str(pl.col("_rule_text"), pl.lit(". "), _link_sentences()).str.strip_chars().alias("reasons"),
        pl.struct("rule_code", "subject_id", "counterparty_id", "txn_ids")
        .map_elements(
            lambda r: alert_id(r["rule_code"], r["subject_id"], r["counterparty_id"], r["txn_ids"]),
            return_dtype=pl.String,
        )
        .alias("alert_id"),
    )
    return (
        frame.select(list(S.ALERT_SCHEMA))
        .cast(S.ALERT_SCHEMA)  # type: ignore[arg-type]
        .sort(["score", "alert_id"], descending=[True, False])
    )
