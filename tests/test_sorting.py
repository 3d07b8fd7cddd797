"""sorting.sort_rows against Polars' own multi-column sort with maintain_order=True, on generated frames
full of ties and nulls: the radix-style sort must put every row in exactly the same place."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from followmoney.sorting import sort_order, sort_rows

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY_COLUMNS = ["key", "ts", "flag", "txn"]


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    """Rows whose keys come from tiny pools (many ties), some null, with a row number to see ties' order."""
    n = draw(st.integers(0, 60))
    small = st.integers(0, 3)
    keys = draw(st.lists(st.one_of(st.none(), st.integers(0, 2**64 - 1), small), min_size=n, max_size=n))
    times = draw(st.lists(st.one_of(st.none(), small), min_size=n, max_size=n))
    flags = draw(st.lists(st.one_of(st.none(), st.booleans()), min_size=n, max_size=n))
    txns = draw(
        st.lists(st.one_of(st.none(), st.sampled_from(["", "a", "T-1", "T-10", "T-2", "é"])), min_size=n, max_size=n)
    )
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return pl.DataFrame(
        {
            "key": pl.Series(keys, dtype=pl.UInt64),
            "ts": pl.Series([None if t is None else start + dt.timedelta(seconds=t) for t in times]),
            "flag": pl.Series(flags, dtype=pl.Boolean),
            "txn": pl.Series(txns, dtype=pl.String),
            "row": pl.int_range(n, eager=True),
        }
    ).cast({"ts": pl.Datetime("us", "UTC")})


@SETTINGS
@given(frames(), st.permutations(KEY_COLUMNS), st.integers(1, 4))
def test_sort_rows_is_polars_stable_multi_column_sort(frame: pl.DataFrame, order: list[str], n_keys: int) -> None:
    keys = order[:n_keys]
    expected = frame.sort(keys, maintain_order=True)
    assert sort_rows(frame, keys).equals(expected)
    if frame.height:
        assert sort_order(frame, keys).to_list() == expected["row"].to_list()


def test_sort_rows_of_a_many_chunk_frame() -> None:
    """Frames from filtered queries come in many chunks; the result is the same as from one chunk."""
    parts = [pl.DataFrame({"k": [i % 3, (i * 7) % 5], "t": [i, -i]}) for i in range(50)]
    frame = pl.concat(parts, rechunk=False)
    assert frame.n_chunks() > 1
    assert sort_rows(frame, ["k", "t"]).equals(frame.sort("k", "t", maintain_order=True))


def test_sort_order_needs_a_key() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        sort_order(pl.DataFrame({"k": [1]}), [])
