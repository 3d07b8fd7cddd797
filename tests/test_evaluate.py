"""`followmoney evaluate`: entity-level figures on a hand-built alert list and its labels."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from followmoney import schema as S
from followmoney.evaluate import evaluate


def _labels() -> pl.DataFrame:
    rows = [
        ("P1", "structuring", True, "structuring", ["A", "A2"]),
        ("P2", "corridor_burst", True, "anomaly", ["B", "B2"]),
        ("P3", "corridor_burst", True, "anomaly", ["C"]),
        ("P4", "shop_small_payments", False, None, ["SHOP", "CUST1"]),
        ("P5", "payroll", False, None, ["BOSS"]),
    ]
    return pl.DataFrame(
        {
            "pattern_id": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "suspicious": [r[2] for r in rows],
            "typology": [r[3] for r in rows],
            "variant": ["v"] * len(rows),
            "subject_id": [r[4][0] for r in rows],
            "counterparty_id": [None] * len(rows),
            "party_ids": [r[4] for r in rows],
            "official_id": [None] * len(rows),
            "network_id": [None] * len(rows),
            "threshold_usd": [None] * len(rows),
            "txn_ids": [[]] * len(rows),
        },
        schema=S.LABEL_SCHEMA,
    )


def _alerts(rows: list[tuple[str, str, str, str | None, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "alert_id": [r[0] for r in rows],
            "typology": [r[1] for r in rows],
            "rule_code": ["FM190" if r[1] == "anomaly" else "FM101" for r in rows],
            "subject_id": [r[2] for r in rows],
            "counterparty_id": [r[3] for r in rows],
            "score": [r[4] for r in rows],
        }
    )


def test_figures_per_typology_ranking_and_lookalikes() -> None:
    alerts = _alerts(
        [
            ("a1", "structuring", "A", None, 90.0),  # hit
            ("a2", "anomaly", "B", "B2", 60.0),  # hit
            ("a3", "anomaly", "SHOP", None, 55.0),  # a look-alike
            ("a4", "structuring", "C", None, 40.0),  # hits an anomaly pattern, but not as its typology
        ]
    )
    result = evaluate(alerts, _labels(), ks=(2, 3))
    anomaly = result["per_typology"]["anomaly"]
    assert (anomaly["alerts"], anomaly["planted"], anomaly["patterns_found"]) == (2, 2, 1)
    assert anomaly["precision"] == 0.5 and anomaly["recall"] == 0.5
    assert result["per_typology"]["structuring"]["precision"] == 0.5
    assert result["precision@2"] == 1.0 and result["precision@3"] == pytest.approx(0.6667)
    # hits at ranks 1, 2 and 4: AP = (1/1 + 2/2 + 3/4) / 3
    assert result["average_precision"] == pytest.approx((1 + 1 + 0.75) / 3, abs=1e-4)
    assert result["lookalike_parties"] == 3 and result["lookalike_parties_alerted"] == 1
    assert result["lookalike_parties_by_alert_typology"] == {"anomaly": 1}
    assert result["patterns_found_by_any_alert"] == 3 and result["planted_patterns"] == 3


def test_cli_prints_the_figures(tmp_path: Path, run_cli) -> None:
    alerts = _alerts([("a1", "anomaly", "B", None, 60.0)])
    alerts.write_parquet(tmp_path / "alerts.parquet")
    _labels().write_parquet(tmp_path / "labels.parquet")
    result = run_cli(
        "evaluate", tmp_path / "alerts.parquet", tmp_path / "labels.parquet", "--json", tmp_path / "e.json"
    )
    assert result.exit_code == 0, result.output
    assert "average precision 1.000" in result.stdout and "found by any alert 1/3" in result.stdout
    assert (tmp_path / "e.json").exists()
