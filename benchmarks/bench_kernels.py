"""Each Numba kernel against the best Polars-only version of the same step, on ~10M sorted rows.

Run: .venv/bin/python benchmarks/bench_kernels.py [--rows 10000000] [--repeat 3]

Prints one table: kernel, rows, Numba seconds (median of --repeat, after a warm-up call), Polars
seconds, rows/s of each, the ratio Polars/Numba, and whether both flag the same rows. The Polars
versions:
- window_clusters / window_distinct: a backward `rolling` (count, sum or n_unique over (t-w, t]) per
  group, then a forward `rolling` on reversed time to mark every row inside a qualifying window
  (the same rows as the kernel's windows anchored at each row);
- forwarded_amounts: first-in-first-out matching without the expiry rule (cumulative sums and a
  join_asof at t + horizon): Polars cannot express "oldest receipt no older than 48 h" exactly, so
  this is an approximation, and 'same' compares only rows where both agree by construction;
- schedule_regularity: the gap-CV test per group and nominal period (gaps in whole periods, CV of
  the deviations); no densest-arc phase fit, no stray payments, so it is a simplification, not an
  equal: 'same' is not claimed.
Not a test: no timing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from followmoney.kernels import forwarded_amounts, schedule_regularity, window_clusters, window_distinct

DAY_US = 86_400_000_000


def _time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up (JIT compile / cache load, polars thread pool)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _world(rows: int, seed: int = 7) -> pl.DataFrame:
    """rows transfers of rows/20 parties over a year, sorted by (party, ts)."""
    rng = np.random.default_rng(seed)
    party = rng.integers(0, max(rows // 20, 1), rows)
    ts = rng.integers(0, 365 * DAY_US, rows)
    frame = pl.DataFrame(
        {
            "g": party,
            "t": ts,
            "v": np.round(rng.lognormal(5.0, 1.0, rows)),
            "code": rng.integers(0, 50, rows),
            "inflow": rng.random(rows) < 0.5,
        }
    ).sort("g", "t")
    return frame.with_columns(pl.col("t").cast(pl.Datetime("us")).alias("ts"))


def _starts(frame: pl.DataFrame) -> np.ndarray:
    g = frame["g"].to_numpy()
    change = np.flatnonzero(np.diff(g)) + 1
    return np.concatenate([[0], change, [g.size]]).astype(np.int64)


def _polars_marks(frame: pl.DataFrame, window: str, agg: pl.Expr, qualifies: pl.Expr) -> np.ndarray:
    """Rows inside any qualifying window, with Polars only (two rolling passes)."""
    ends = frame.rolling(index_column="ts", period=window, group_by="g").agg(agg)
    q = ends.select(qualifies.alias("q"))["q"]
    back = frame.select("g", (-pl.col("t")).cast(pl.Datetime("us")).alias("rts")).with_columns(q.alias("q"))
    back = back.with_row_index("i").sort("g", "rts")
    marked = back.rolling(index_column="rts", period=window, group_by="g").agg(
        pl.col("q").any().alias("m"), pl.col("i").last()
    )
    return marked.sort("i")["m"].to_numpy()


def bench_window_clusters(frame: pl.DataFrame, repeat: int) -> dict[str, Any]:
    sub = frame.filter(pl.col("v") >= 150.0)  # a pre-filter like the detector's band
    starts, ts, v = _starts(sub), sub["t"].to_numpy(), sub["v"].to_numpy().astype(np.float64)
    numba_s, cluster = _time(lambda: window_clusters(starts, ts, v, 7 * DAY_US, 3, 1500.0), repeat)
    agg = [pl.len().alias("n"), pl.col("v").sum().alias("s")]
    polars_s, marks = _time(lambda: _polars_marks(sub, "7d", agg, (pl.col("n") >= 3) & (pl.col("s") >= 1500.0)), repeat)
    return {"rows": sub.height, "numba": numba_s, "polars": polars_s, "same": bool(((cluster >= 0) == marks).all())}


def bench_window_distinct(frame: pl.DataFrame, repeat: int) -> dict[str, Any]:
    starts, ts = _starts(frame), frame["t"].to_numpy()
    codes, v = frame["code"].to_numpy(), frame["v"].to_numpy().astype(np.float64)
    numba_s, cluster = _time(lambda: window_distinct(starts, ts, codes, v, 7 * DAY_US, 5, 0.0), repeat)
    agg = [pl.col("code").n_unique().alias("d")]
    polars_s, marks = _time(lambda: _polars_marks(frame, "7d", agg, pl.col("d") >= 5), repeat)
    return {
        "rows": frame.height,
        "numba": numba_s,
        "polars": polars_s,
        "same": bool(((cluster >= 0) == marks).all()),
    }


def bench_forwarded(frame: pl.DataFrame, repeat: int) -> dict[str, Any]:
    starts, ts = _starts(frame), frame["t"].to_numpy()
    inflow, v = frame["inflow"].to_numpy(), frame["v"].to_numpy().astype(np.float64)
    horizon = 2 * DAY_US
    numba_s, _ = _time(lambda: forwarded_amounts(starts, ts, inflow, v, horizon), repeat)

    def polars_fifo() -> pl.Series:
        f = frame.with_row_index("i").with_columns(
            pl.when("inflow").then("v").otherwise(0.0).cum_sum().over("g").alias("cin"),
            pl.when(~pl.col("inflow")).then("v").otherwise(0.0).cum_sum().over("g").alias("cout"),
        )
        receipts = f.filter("inflow").with_columns(
            (pl.col("t") + horizon).alias("due"), (pl.col("cin") - pl.col("v")).alias("before")
        )
        sends = f.select("g", pl.col("t").alias("due"), "cout").sort("due")
        joined = receipts.sort("due").join_asof(sends, on="due", by="g", strategy="backward", check_sortedness=False)
        fwd = (pl.col("cout").fill_null(0.0) - pl.col("before")).clip(0, None)
        return joined.select(pl.min_horizontal(fwd, pl.col("v")).alias("fwd"), "i").sort("i")["fwd"]

    polars_s, _ = _time(polars_fifo, repeat)
    return {"rows": frame.height, "numba": numba_s, "polars": polars_s, "same": None}


def bench_schedule(frame: pl.DataFrame, repeat: int) -> dict[str, Any]:
    starts = _starts(frame)
    t_days = frame["t"].to_numpy().astype(np.float64) / DAY_US
    periods = np.array([30.4375, 14.0, 7.0])
    numba_s, _ = _time(lambda: schedule_regularity(starts, t_days, periods, 2, 0.35, 0.2, 3.0, 0.25), repeat)

    def polars_gap_cv() -> pl.DataFrame:
        f = frame.select("g", (pl.col("t") / DAY_US).alias("d"))
        parts = []
        for p in periods:
            k = ((pl.col("d").diff().over("g")) / p).round(0)
            parts.append(
                f.with_columns(k.alias("k"))
                .with_columns(pl.col("k").cum_sum().over("g").fill_null(0).alias("m"))
                .group_by("g")
                .agg(
                    (pl.col("k") < 1).sum().alias("bad"),
                    ((pl.col("d") - pl.col("d").first() - pl.col("m") * p).std() / p).alias("cv"),
                )
                .with_columns(pl.lit(p).alias("p"))
            )
        return pl.concat(parts).filter((pl.col("bad") == 0) & (pl.col("cv") <= 0.35))

    polars_s, _ = _time(polars_gap_cv, repeat)
    return {"rows": frame.height, "numba": numba_s, "polars": polars_s, "same": None}


def main() -> None:
    """Print the benchmark table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = _world(args.rows)
    results = {
        "window_clusters": bench_window_clusters(frame, args.repeat),
        "window_distinct": bench_window_distinct(frame, args.repeat),
        "forwarded_amounts": bench_forwarded(frame, args.repeat),
        "schedule_regularity": bench_schedule(frame, args.repeat),
    }
    print(
        f"{'kernel':<22}{'rows':>12}{'numba s':>10}{'polars s':>10}{'numba rows/s':>15}{'polars rows/s':>15}"
        f"{'ratio':>8}  same rows"
    )
    for name, r in results.items():
        same = "n/a (not equal semantics)" if r["same"] is None else str(r["same"])
        print(
            f"{name:<22}{r['rows']:>12,}{r['numba']:>10.3f}{r['polars']:>10.3f}{r['rows'] / r['numba']:>15,.0f}"
            f"{r['rows'] / r['polars']:>15,.0f}{r['polars'] / r['numba']:>7.1f}x  {same}"
        )


if __name__ == "__main__":
    main()
