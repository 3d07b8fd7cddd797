"""Cases: alerts that share a known network, grouped into the unit an investigator opens.

One case per network_id that at least one alert links to (directly or through the transfer graph).
A case lists its alerts (best first), the parties involved, the officials matched, how each alert
reaches the network, and the span and total of the evidence. Written as `cases.parquet`.
"""

from __future__ import annotations

import polars as pl

CASE_SCHEMA: dict[str, pl.DataType] = {
    "case_id": pl.String(),  # "CASE-" + network_id: stable across runs
    "network_id": pl.String(),
    "n_alerts": pl.Int64(),
    "max_score": pl.Float64(),
    "total_usd": pl.Float64(),
    "window_start": pl.Datetime("us", "UTC"),
    "window_end": pl.Datetime("us", "UTC"),
    "typologies": pl.List(pl.String()),
    "alert_ids": pl.List(pl.String()),  # best score first
    "party_ids": pl.List(pl.String()),  # subjects and counterparties of the alerts
    "official_ids": pl.List(pl.String()),
    "network_paths": pl.List(pl.String()),  # one per alert, in alert_ids order
}


def build_cases(alerts: pl.DataFrame) -> pl.DataFrame:
    """Group alerts sharing a network_id into cases, sorted by their best score then case_id."""
    if alerts.height == 0 or "network_id" not in alerts.columns:
        return pl.DataFrame(schema=CASE_SCHEMA)
    linked = alerts.filter(pl.col("network_id").is_not_null()).sort(
        ["network_id", "score", "alert_id"], descending=[False, True, False]
    )
    if linked.height == 0:
        return pl.DataFrame(schema=CASE_SCHEMA)

    def uniq(expr: pl.Expr) -> pl.Expr:
        return expr.drop_nulls().unique().sort()

    cases = linked.group_by("network_id", maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("n_alerts"),
        pl.col("score").max().alias("max_score"),
        pl.col("total_usd").sum().alias("total_usd"),
        pl.col("window_start").min(),
        pl.col("window_end").max(),
        uniq(pl.col("typology")).alias("typologies"),
        pl.col("alert_id").alias("alert_ids"),
        uniq(pl.concat([pl.col("subject_id"), pl.col("counterparty_id")])).alias("party_ids"),
        uniq(pl.col("official_id")).alias("official_ids"),
        pl.col("network_path").fill_null("").alias("network_paths"),
    )
    return (
        cases.with_columns(pl.format("CASE-{}", pl.col("network_id")).alias("case_id"))
        .select(list(CASE_SCHEMA))
        .cast(CASE_SCHEMA)  # type: ignore[arg-type]
        .sort(["max_score", "case_id"], descending=[True, False])
    )
