"""End to end on a tiny hand-built world: planted patterns alert, look-alikes do not."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from conftest import T0, frame, txn, weekly, write_networks, write_officials


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    rows = []
    # Planted: weekly ~100 USD from a network member (phone match) to a listed police officer (name match).
    rows += weekly(
        "B",
        "C_PAYER",
        "C_OFFICER",
        8,
        100.0,
        sender_name="Vichai Ruangsri",
        sender_phone="081-234-5678",
        receiver_name="SOMCHAI  srisuk",
        receiver_country="TH",
    )
    # Look-alike: a relative abroad who shares the family name, monthly support to the same kind of official.
    rows += weekly(
        "F",
        "C_NEPHEW",
        "C_OFFICER2",
        8,
        300.0,
        days=30.4,
        sender_name="Anan Chaiyaporn",
        sender_country="US",
        receiver_name="Chaiyaporn Prasert",
    )
    # Look-alike: monthly family remittance to a namesake of the officer living in Cambodia.
    rows += weekly(
        "R",
        "C_MIGRANT",
        "C_NAMESAKE",
        8,
        200.0,
        days=30.4,
        sender_country="TH",
        receiver_name="Somchai Srisuk",
        receiver_country="KH",
        receiver_phone="+855 12 345 678",
    )
    # Planted: structuring, three sends of ~9,500 within 3 days at two agents.
    rows += [
        txn("S001", "C_SMURF", "C_X", T0, 9500.0, agent="AG1"),
        txn("S002", "C_SMURF", "C_Y", T0 + dt.timedelta(days=1), 9300.0, agent="AG2"),
        txn("S003", "C_SMURF", "C_X", T0 + dt.timedelta(days=3), 9800.0, agent="AG1"),
    ]
    # Look-alike: a trader's near-threshold sends, weeks apart.
    rows += [txn(f"N{i:03d}", "C_TRADER", "C_SUPPLIER", T0 + dt.timedelta(days=20 * i), 9400.0) for i in range(4)]
    path = tmp_path / "txns.arrow"
    frame(rows).write_ipc(path)
    officials = write_officials(
        tmp_path / "officials.csv",
        [
            "Q100,Person,Somchai Srisuk,Pol. Col. Somchai Srisuk,1970-01-01,th,,,,+66899999999,,,th_police,2024-01-01,2025-01-01,2025-01-01",
            "Q200,Person,Prasert Chaiyaporn,,1965-01-01,th,,,,,,,th_officials,2024-01-01,2025-01-01,2025-01-01",
        ],
    )
    networks = write_networks(
        tmp_path / "networks.csv",
        [
            "N-7,E-1,Vichai Ruangsri,,+66812345678,th,recruiter",
        ],
    )
    return {"txns": path, "officials": officials, "networks": networks, "out": tmp_path / "out"}


def test_planted_alert_and_lookalikes_silent(world: dict[str, Path], run_cli) -> None:
    result = run_cli(
        "scan",
        world["txns"],
        "--officials",
        world["officials"],
        "--networks",
        world["networks"],
        "--out",
        world["out"],
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    alerts = pl.read_parquet(world["out"] / "alerts.parquet")
    by_subject = {r["subject_id"]: r for r in alerts.to_dicts()}
    bribe = by_subject["C_PAYER"]
    assert bribe["typology"] == "recurring_payment_to_official"
    assert bribe["counterparty_id"] == "C_OFFICER" and bribe["official_id"] == "Q100"
    assert bribe["network_id"] == "N-7" and "E-1" in bribe["network_path"]
    assert "weekly" in bribe["reasons"] and "Q100" in bribe["reasons"]
    assert bribe["n_txns"] == 8
    assert by_subject["C_SMURF"]["typology"] == "structuring"
    assert by_subject["C_SMURF"]["n_txns"] == 3
    for benign in ("C_NEPHEW", "C_MIGRANT", "C_TRADER"):
        assert benign not in by_subject
    summary = json.loads((world["out"] / "summary.json").read_text())
    assert summary["rows_read"] == summary["rows_scanned"] + summary["rows_quarantined"] == 8 * 3 + 3 + 4
    assert not (world["out"] / "quarantine.parquet").exists()
    assert summary["alerts_linked"] == {"official": 1, "network": 1, "networks": 1}


def test_family_support_scores_below_floor_but_visible_with_min_score_zero(world: dict[str, Path], run_cli) -> None:
    result = run_cli(
        "scan", world["txns"], "--officials", world["officials"], "--out", world["out"], "--quiet", "--min-score", "0"
    )
    assert result.exit_code == 0, result.output
    alerts = pl.read_parquet(world["out"] / "alerts.parquet")
    nephew = alerts.filter(pl.col("subject_id") == "C_NEPHEW")
    payer = alerts.filter(pl.col("subject_id") == "C_PAYER")
    assert nephew.height == 1 and "family support" in nephew["reasons"][0]
    assert nephew["score"][0] < 25 <= payer["score"][0]


def test_rerun_is_byte_identical(world: dict[str, Path], run_cli) -> None:
    args = ["scan", world["txns"], "--officials", world["officials"], "--networks", world["networks"], "--quiet"]
    run_cli(*args, "--out", world["out"] / "a")
    run_cli(*args, "--out", world["out"] / "b")
    for name in ("alerts.parquet", "alerts.csv"):
        assert (world["out"] / "a" / name).read_bytes() == (world["out"] / "b" / name).read_bytes()


def test_link_section_of_config_file_is_used_and_checked(world: dict[str, Path], run_cli, tmp_path: Path) -> None:
    args = ["scan", world["txns"], "--officials", world["officials"], "--networks", world["networks"], "--quiet"]
    no_hops = tmp_path / "nohops.toml"
    no_hops.write_text("[link]\nmax_hops = 0\n")
    assert run_cli(*args, "--out", world["out"] / "a", "--config", no_hops).exit_code == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[link]\nthreshold = 'high'\nwhatever = 1\n")
    result = run_cli(*args, "--out", world["out"] / "b", "--config", bad)
    assert result.exit_code == 2
    assert "whatever" in result.stderr and "threshold" in result.stderr
    assert not (world["out"] / "b").exists()
