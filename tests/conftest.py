"""Shared helpers: tiny transaction files built inline, and a CLI runner."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import settings
from typer.testing import CliRunner

from followmoney import schema as S
from followmoney.cli import app

# `make test` (and CI) runs the property and fuzz tests on the same examples every time, so a run's verdict
# is reproducible; `make fuzz` (HYPOTHESIS_PROFILE=explore) draws new random examples to look for new bugs.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


def txn(
    txn_id: str,
    sender: str,
    receiver: str,
    when: dt.datetime,
    usd: float,
    *,
    agent: str | None = "AG1",
    sender_name: str | None = None,
    receiver_name: str | None = None,
    sender_country: str = "TH",
    receiver_country: str = "TH",
    sender_phone: str | None = None,
    receiver_phone: str | None = None,
    currency: str = "USD",
    amount: float | None = None,
) -> dict[str, Any]:
    """One transfer as a row dict in contract columns."""
    return {
        S.TXN_ID: txn_id,
        S.TS: when,
        S.SENDER_ID: sender,
        S.SENDER_NAME: sender_name or f"Name {sender}",
        S.SENDER_COUNTRY: sender_country,
        S.RECEIVER_ID: receiver,
        S.RECEIVER_NAME: receiver_name or f"Name {receiver}",
        S.RECEIVER_COUNTRY: receiver_country,
        S.AMOUNT: usd if amount is None else amount,
        S.CURRENCY: currency,
        S.AMOUNT_USD: usd,
        S.AGENT_ID: agent,
        S.SENDER_PHONE: sender_phone,
        S.RECEIVER_PHONE: receiver_phone,
    }


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows as a frame with the contract's dtypes."""
    return pl.DataFrame(rows, schema=S.TXN_SCHEMA)


def weekly(
    prefix: str,
    sender: str,
    receiver: str,
    n: int,
    usd: float,
    *,
    start: dt.datetime = T0,
    days: float = 7.0,
    **kw: Any,
) -> list[dict[str, Any]]:
    """n payments every `days` days of about `usd` (small deterministic wobble)."""
    wobble = [0.0, 3.0, -2.0, 4.0, -4.0, 1.0]
    return [
        txn(
            f"{prefix}{i:03d}",
            sender,
            receiver,
            start + dt.timedelta(days=days * i, hours=i % 3),
            usd + wobble[i % len(wobble)],
            **kw,
        )
        for i in range(n)
    ]


OFFICIALS_HEADER = (
    "id,schema,name,aliases,birth_date,countries,addresses,identifiers,sanctions,phones,emails,"
    "program_ids,dataset,first_seen,last_seen,last_change"
)


def write_officials(path: Path, rows: list[str]) -> Path:
    """An OpenSanctions targets.simple.csv file with the given data lines."""
    path.write_text(OFFICIALS_HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_networks(path: Path, rows: list[str]) -> Path:
    """A networks CSV with the given data lines."""
    path.write_text(
        "network_id,entity_id,name,aliases,phones,countries,role\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return path


@pytest.fixture
def run_cli() -> Callable[..., Any]:
    """Invoke the CLI in-process; returns the click Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def scan_world(world: Path, inputs: str | Path, out: Path, *extra: str) -> dict[str, Any]:
    """Scan a synth world's transactions (or `inputs`) with its officials and networks lists; the summary."""
    import json

    args = ["scan", str(inputs), "--officials", str(world / "officials.csv"), "--networks", str(world / "networks.csv")]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--quiet", *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())
