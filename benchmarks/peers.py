"""The two core rules written the way a user would without followmoney: pandas, DuckDB SQL and Polars.

Same work as followmoney's FM101 (sends in [0.8T, T) of T = 10,000 USD, >= 3 within 7 days summing
to >= T) and FM120's detector (payer->receiver pairs with >= 4 payments of median <= 500 USD, gaps
regular: coefficient of variation <= 0.35, amounts stable: CV <= 0.25). Peers have no linking, so
they report every regular pair; followmoney additionally matches receivers to the officials list.
Each function returns (structuring hits, regular pairs) counts so runs can be sanity-checked.
"""

from __future__ import annotations

from pathlib import Path

T = 10_000.0
NEEDED = ["txn_id", "ts", "sender_id", "receiver_id", "amount_usd", "agent_id"]


def pandas_rules(path: Path) -> tuple[int, int]:
    """pandas: boolean filter, groupby + time-based rolling for structuring; groupby + diff for pairs."""
    import pandas as pd

    df = pd.read_parquet(path, columns=NEEDED)
    band = df[(df["amount_usd"] >= 0.8 * T) & (df["amount_usd"] < T)].sort_values(["sender_id", "ts"])
    roll = band.groupby("sender_id").rolling("7D", on="ts")["amount_usd"]
    count = roll.count()
    total = roll.sum()
    structuring = int(((count >= 3) & (total >= T)).groupby(level=0).any().sum())

    small = df[df["amount_usd"] <= 1500].sort_values(["sender_id", "receiver_id", "ts"])
    small = small[small.groupby(["sender_id", "receiver_id"])["txn_id"].transform("size") >= 4]
    gaps = small.groupby(["sender_id", "receiver_id"])["ts"].diff().dt.total_seconds() / 86400
    small = small.assign(gap=gaps)
    stats = small.groupby(["sender_id", "receiver_id"]).agg(
        gap_mean=("gap", "mean"),
        gap_std=("gap", "std"),
        amt_median=("amount_usd", "median"),
        amt_mean=("amount_usd", "mean"),
        amt_std=("amount_usd", "std"),
    )
    regular = (
        (stats["gap_std"] / stats["gap_mean"] <= 0.35)
        & (stats["amt_median"] <= 500)
        & (stats["amt_std"] / stats["amt_mean"] <= 0.25)
    )
    return structuring, int(regular.sum())


def duckdb_rules(path: Path) -> tuple[int, int]:
    """DuckDB SQL with window functions (RANGE frames over time, LAG for gaps)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    src = f"read_parquet('{path}')"
    structuring = con.execute(
        f"""
        WITH band AS (
            SELECT sender_id, ts, amount_usd FROM {src}
            WHERE amount_usd >= {0.8 * T} AND amount_usd < {T}
        ), win AS (
            SELECT sender_id,
                   COUNT(*) OVER w AS n, SUM(amount_usd) OVER w AS total
            FROM band
            WINDOW w AS (PARTITION BY sender_id ORDER BY ts
                         RANGE BETWEEN CURRENT ROW AND INTERVAL 7 DAYS FOLLOWING)
        )
        SELECT COUNT(DISTINCT sender_id) FROM win WHERE n >= 3 AND total >= {T}
        """
    ).fetchone()
    pairs = con.execute(
        f"""
        WITH small AS (
            SELECT sender_id, receiver_id, ts, amount_usd FROM {src} WHERE amount_usd <= 1500
        ), g AS (
            SELECT sender_id, receiver_id, amount_usd,
                   epoch(ts - LAG(ts) OVER (PARTITION BY sender_id, receiver_id ORDER BY ts)) / 86400.0 AS gap
            FROM small
        ), stats AS (
            SELECT sender_id, receiver_id, COUNT(*) AS n,
                   STDDEV_SAMP(gap) / AVG(gap) AS gap_cv,
                   MEDIAN(amount_usd) AS med,
                   STDDEV_SAMP(amount_usd) / AVG(amount_usd) AS amt_cv
            FROM g GROUP BY sender_id, receiver_id
        )
        SELECT COUNT(*) FROM stats WHERE n >= 4 AND gap_cv <= 0.35 AND med <= 500 AND amt_cv <= 0.25
        """
    ).fetchone()
    assert structuring is not None and pairs is not None
    return int(structuring[0]), int(pairs[0])


def polars_rules(path: Path) -> tuple[int, int]:
    """Polars, lazy and streaming: a rolling group-by over a forward 7-day window for structuring (DuckDB's
    frame: from each send to 7 days after it); for the recurring pairs, the pairs with four or more small
    payments, then one group-by per pair with the gaps computed inside the aggregation."""
    import polars as pl

    lf = pl.scan_parquet(path).select(NEEDED)
    amount = pl.col("amount_usd")
    band = lf.filter((amount >= 0.8 * T) & (amount < T)).select("sender_id", "ts", "amount_usd").sort("sender_id", "ts")
    windows = band.rolling(index_column="ts", period="7d", offset="0d", closed="both", group_by="sender_id").agg(
        pl.len().alias("n"), amount.sum().alias("total")
    )
    structuring = (
        windows.filter((pl.col("n") >= 3) & (pl.col("total") >= T))
        .select(pl.col("sender_id").n_unique())
        .collect(engine="streaming")
        .item()
    )
    # Like pandas' transform("size") >= 4: the pairs with four or more small payments first. Without it the
    # per-pair aggregation runs over all 9.9M pairs of the 10M world, almost all of one payment (30 s, not 1.6).
    small = lf.filter(amount <= 1500).filter(pl.len().over("sender_id", "receiver_id") >= 4)
    gap = pl.col("ts").sort().diff().dt.total_seconds() / 86400
    stats = small.group_by("sender_id", "receiver_id").agg(
        pl.len().alias("n"),
        (gap.std() / gap.mean()).alias("gap_cv"),
        amount.median().alias("med"),
        (amount.std() / amount.mean()).alias("amt_cv"),
    )
    pairs = (
        stats.filter(
            (pl.col("n") >= 4) & (pl.col("gap_cv") <= 0.35) & (pl.col("med") <= 500) & (pl.col("amt_cv") <= 0.25)
        )
        .select(pl.len())
        .collect(engine="streaming")
        .item()
    )
    return int(structuring), int(pairs)


def floor(path: Path) -> int:
    """The floor: read the columns the detectors need and sort them by (party, time)."""
    import polars as pl

    frame = pl.scan_parquet(path).select(NEEDED).sort("sender_id", "ts").collect()
    return frame.height
