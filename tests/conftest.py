"""Shared helpers: tiny transaction files built inline, and a CLI runner."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
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


def whole_scan_settings(examples: int) -> settings:
    """Hypothesis settings for a test that runs whole scans: `examples` of them, no deadline, and a shared
    tmp_path (each example makes its own directory in it)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def random_transfers(
    data: st.DataObject,
    n: int,
    parties: int,
    *,
    max_hours: int = 120 * 24,
    max_usd: float = 30_000.0,
    bad: bool = False,
) -> list[dict[str, Any]]:
    """`n` transfers among parties C0..C{parties-1}, drawn by Hypothesis: repeats and self-transfers, times up
    to `max_hours` after T0, amounts from cents to `max_usd` and at the rules' thresholds (with `bad`, some
    negative: quarantined), three agents or none, and phones, one number written two ways (small_lists names
    C0 an official by it)."""
    party = st.integers(0, parties - 1).map(lambda i: f"C{i}")
    usd = st.floats(0.01, max_usd) | st.sampled_from([9_500.0, 9_999.99, 100.0, 300.0, 500.0, *([-5.0] if bad else [])])
    phone = st.sampled_from([None, "+66 81 234 5678", "081 234 5678", "+66 89 000 1111"])
    return [
        txn(
            f"T{i}",
            data.draw(party),
            data.draw(party),
            T0 + dt.timedelta(hours=data.draw(st.integers(0, max_hours))),
            data.draw(usd),
            agent=data.draw(st.sampled_from(["AG1", "AG2", "AG3", None])),
            sender_phone=data.draw(phone),
        )
        for i in range(n)
    ]


def small_lists(work: Path) -> list[str]:
    """--officials and --networks arguments for random_transfers: C0 an official by phone, C1 and C2 members of
    network N-1 by name."""
    officials = write_officials(work / "officials.csv", ["Q1,Person,Name C0,,,th,,,,+66 81 234 5678,,,x,,,"])
    networks = write_networks(work / "networks.csv", ["N-1,M1,Name C1,,,TH,boss", "N-1,M2,Name C2,,,TH,"])
    return ["--officials", str(officials), "--networks", str(networks)]


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
