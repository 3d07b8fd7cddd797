"""Build a larger-than-memory input from one cached synth world: the world's year of transfers, then
copies of it shifted by whole years with new txn_ids, one Arrow IPC file (zstd, as synth writes) per year.

    python benchmarks/stack_world.py benchmarks/cache/world-50000000-7 --years 2 --out benchmarks/cache/world-100m

gives two 50M-row files (100M rows). The first file is a symlink to the world's own file. The planted
patterns repeat in every year, so the lists and labels of the world still apply. Copies go forward a year at a
time (the last weeks of a later year then fall after the run date and are quarantined); with `--back` they go
back a year at a time, so every row stays scannable:

    python benchmarks/stack_world.py benchmarks/cache/world-50000000-7 --years 4 --back \\
        --out benchmarks/cache/world-200m
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl


def stack(world: Path, years: int, out: Path, back: bool = False) -> list[Path]:
    """Write year files under `out` (streaming, one pass per copy; `back`: copies in earlier years); their paths
    in order."""
    out.mkdir(parents=True, exist_ok=True)
    source = world / "transactions.arrow"
    first = out / "year1.arrow"
    if not first.exists():
        first.symlink_to(source.resolve())
    paths = [first]
    for year in range(1, years):
        path = out / f"year{year + 1}.arrow"
        if not path.exists():
            tmp = path.with_suffix(".partial")
            (
                pl.scan_ipc(source)
                .with_columns(
                    (pl.col("ts") + pl.duration(days=(-365 if back else 365) * year)).alias("ts"),
                    (pl.lit(chr(ord("A") + year)) + pl.col("txn_id")).alias("txn_id"),
                )
                .sink_ipc(tmp, compression="zstd")
            )
            tmp.rename(path)
        paths.append(path)
    return paths


def main() -> None:
    """Command line: WORLD --years N [--back] --out DIR."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("world", type=Path)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--back", action="store_true", help="shift the copies into earlier years, not later ones")
    args = parser.parse_args()
    for path in stack(args.world, args.years, args.out, args.back):
        size = path.resolve().stat().st_size
        print(f"{path}  {size / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
