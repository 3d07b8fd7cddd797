"""The fused 0-100 score: monotonic in every input (stronger evidence never lowers it), bounded, documented."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from followmoney.score import ANOMALY_FLOOR, score_expr

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
maybe_unit = st.none() | unit
hops = st.none() | st.integers(min_value=0, max_value=6)
INPUTS = ("severity", "strength", "official", "network", "hops", "damping", "anomaly")


def _scores(rows: list[dict[str, float | int | None]]) -> list[float]:
    frame = pl.DataFrame(
        rows,
        schema={
            "severity": pl.Float64,
            "strength": pl.Float64,
            "official": pl.Float64,
            "network": pl.Float64,
            "hops": pl.Int64,
            "damping": pl.Float64,
            "anomaly": pl.Float64,
        },
    )
    expr = score_expr(*(pl.col(c) for c in INPUTS[:6]), anomaly_pct=pl.col("anomaly"))
    return frame.select(expr.alias("s"))["s"].to_list()


inputs = st.fixed_dictionaries(
    {
        "severity": unit,
        "strength": maybe_unit,
        "official": maybe_unit,
        "network": maybe_unit,
        "hops": hops,
        "damping": st.sampled_from([0.25, 1.0]),
        "anomaly": maybe_unit,
    }
)


@settings(max_examples=300, deadline=None)
@given(base=inputs, field=st.sampled_from(["severity", "strength", "official", "network", "anomaly"]), bump=unit)
def test_stronger_evidence_never_lowers_the_score(base: dict, field: str, bump: float) -> None:
    stronger = dict(base)
    stronger[field] = min(1.0, (base[field] or 0.0) + bump)
    low, high = _scores([base, stronger])
    assert high >= low
    assert 0.0 <= low <= 100.0 and 0.0 <= high <= 100.0


@settings(max_examples=200, deadline=None)
@given(base=inputs, extra=st.integers(min_value=1, max_value=4))
def test_a_more_distant_network_link_never_raises_the_score(base: dict, extra: int) -> None:
    farther = dict(base, hops=(base["hops"] or 0) + extra)
    near, far = _scores([base, farther])
    assert far <= near


@settings(max_examples=200, deadline=None)
@given(base=inputs)
def test_damping_only_lowers(base: dict) -> None:
    damped, plain = _scores([dict(base, damping=0.25), dict(base, damping=1.0)])
    assert damped <= plain


def test_anomaly_percentile_below_the_floor_adds_nothing() -> None:
    base = {"severity": 0.5, "strength": 0.5, "official": None, "network": None, "hops": None, "damping": 1.0}
    none, low, floor, top = _scores(
        [dict(base, anomaly=None), dict(base, anomaly=0.5), dict(base, anomaly=ANOMALY_FLOOR), dict(base, anomaly=1.0)]
    )
    assert none == low == floor == pytest.approx(37.5)
    assert top == pytest.approx(100 * (1 - (1 - 0.375) * (1 - 0.3)), abs=0.05)


def test_each_signal_alone_gives_its_documented_share() -> None:
    zero = {"severity": 0.0, "strength": 0.0, "official": None, "network": None, "hops": None, "damping": 1.0}
    rows = [
        dict(zero, anomaly=None),
        dict(zero, official=1.0, anomaly=None),
        dict(zero, network=1.0, hops=0, anomaly=None),
        dict(zero, network=1.0, hops=1, anomaly=None),
        dict(zero, anomaly=1.0),
        dict(zero, severity=1.0, strength=1.0, anomaly=None),
    ]
    assert _scores(rows) == [0.0, 50.0, 60.0, 42.0, 30.0, 100.0]


def test_readme_documents_the_formula() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### The score")[1].split("\n## ")[0]
    for needle in ("anomaly", "0.3", "0.99", "percentile", "noisy-or", "monotonic"):
        assert needle in section, needle
