"""Measure a compact in-memory form of a world's transfers: what the redesign in the README's "Where the time goes"
would hold instead of text ids (an experiment for that redesign, not a step of the scan).

    python benchmarks/bench_compact.py benchmarks/cache/world-50000000-7/transactions.arrow --ids keys

The transfers are read in chunks and kept as: time, sender and receiver party (`--ids keys`: the scan's own 64-bit
hash keys; `--ids codes`: dense 32-bit codes, an enum of every distinct id), amount, amount_usd, currency and both
countries as enums, the agent as a 16-bit code; no txn_id. Prints how long the form takes to build, its bytes per
row, and how long it takes to sort by (sender, time) and to group by sender, with the process's memory after each.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import polars as pl

from followmoney import schema as S
from followmoney.normalise import PARTY_KEY_SEED

CHUNK_ROWS = 5_000_000


def _mib() -> tuple[int, int]:
    """(resident now, peak) of this process, in MiB."""
    now = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                now = int(line.split()[1]) // 1024
    return now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _enum_of(lf: pl.LazyFrame, *columns: str) -> pl.Enum:
    """An enum of every distinct non-null value of `columns`, sorted."""
    values = pl.concat([lf.select(pl.col(c).drop_nulls().alias("v")) for c in columns]).unique().sort("v")
    return pl.Enum(values.collect(engine="streaming")["v"])


def compact(path: Path, ids: str) -> pl.DataFrame:
    """The transfers of the Arrow or Parquet file at `path` in compact form (see the module docstring)."""
    lf = pl.scan_parquet(path) if path.suffix == ".parquet" else pl.scan_ipc(path)
    started = time.perf_counter()
    countries = _enum_of(lf, S.SENDER_COUNTRY, S.RECEIVER_COUNTRY)
    currencies = _enum_of(lf, S.CURRENCY)
    agents = _enum_of(lf, S.AGENT_ID)
    parties = _enum_of(lf, S.SENDER_ID, S.RECEIVER_ID) if ids == "codes" else None
    print(f"dictionaries: {time.perf_counter() - started:.1f} s; resident, peak MiB: {_mib()}")

    def party(column: str) -> pl.Expr:
        if parties is None:
            return pl.col(column).hash(PARTY_KEY_SEED)
        return pl.col(column).cast(parties).to_physical()

    started = time.perf_counter()
    rows = lf.select(pl.len()).collect().item()
    chunks = [
        lf.slice(offset, CHUNK_ROWS)
        .select(
            S.TS,
            party(S.SENDER_ID).alias("sender"),
            party(S.RECEIVER_ID).alias("receiver"),
            S.AMOUNT,
            S.AMOUNT_USD,
            pl.col(S.CURRENCY).cast(currencies),
            pl.col(S.SENDER_COUNTRY).cast(countries),
            pl.col(S.RECEIVER_COUNTRY).cast(countries),
            pl.col(S.AGENT_ID).cast(agents).to_physical().alias("agent"),
        )
        .collect()
        for offset in range(0, rows, CHUNK_ROWS)
    ]
    frame = pl.concat(chunks, rechunk=True)
    del chunks
    size = frame.estimated_size()
    print(
        f"built: {time.perf_counter() - started:.1f} s; {size / 2**30:.2f} GiB, {size / max(rows, 1):.1f} bytes a row; "
        f"resident, peak MiB: {_mib()}"
    )
    return frame


def main() -> None:
    """Build the compact form of one file, then sort and group it, printing the costs."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="a world's transactions.arrow or transactions.parquet")
    parser.add_argument("--ids", choices=("keys", "codes"), default="keys")
    args = parser.parse_args()
    frame = compact(args.path, args.ids)
    started = time.perf_counter()
    ordered = frame.sort("sender", S.TS)
    print(f"sorted by (sender, time): {time.perf_counter() - started:.1f} s; resident, peak MiB: {_mib()}")
    del ordered
    started = time.perf_counter()
    groups = frame.group_by("sender").agg(pl.len(), pl.col(S.AMOUNT_USD).sum())
    print(f"grouped by sender: {time.perf_counter() - started:.1f} s, {groups.height:,} senders")


if __name__ == "__main__":
    main()
