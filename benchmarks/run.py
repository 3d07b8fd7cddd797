"""Benchmark followmoney against the floor and its peers, side by side on the same files, in one run.

    python benchmarks/run.py --rows 1M,10M            # or: make bench
    python benchmarks/run.py --rows 50M --memory-limit 8GiB   # followmoney within the issue's 8 GiB

For each size it generates (and caches under benchmarks/cache/) a synth world, converts it to Parquet
once, then runs every step in its own subprocess, timing wall clock and reading the child's peak RSS
(os.wait4). It prints a table (wall s, rows/s, peak RSS, ratio to the floor, ratio to each peer)
and writes it as JSON under benchmarks/results/. Ratios, not absolute times, are the claims.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / "cache"
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent
PEERS = ("pandas", "duckdb", "polars")  # the two rules as a user would write them (peers.py)


def parse_rows(text: str) -> list[int]:
    """'1M,10M,500k' -> [1_000_000, 10_000_000, 500_000]."""
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        mult = 1_000_000 if part.endswith("m") else 1_000 if part.endswith("k") else 1
        out.append(int(float(part.rstrip("mk")) * mult))
    return out


def world(rows: int, seed: int) -> Path:
    """A cached synth world with a Parquet copy of its transactions."""
    path = CACHE / f"world-{rows}-{seed}"
    if not (path / "world.json").exists():
        subprocess.run(
            [str(BIN / "followmoney"), "synth", "--rows", str(rows), "--seed", str(seed), "--out", str(path), "-q"],
            check=True,
        )
    parquet = path / "transactions.parquet"
    if not parquet.exists():
        import polars as pl

        pl.scan_ipc(path / "transactions.arrow").sink_parquet(parquet, compression="zstd")
    return path


def measure(cmd: list[str]) -> dict[str, float]:
    """Run cmd; wall seconds and the child's peak RSS in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"step failed: {' '.join(cmd)}\n{err[-2000:]}")
    return {"wall_s": round(wall, 3), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def measure_repeated(cmd: list[str], repeat: int) -> dict[str, Any]:
    """measure() `repeat` times: the median wall time (what ratios use: one run on a shared machine moves by
    +-10%), every run's wall time, and the highest peak RSS."""
    runs = [measure(cmd) for _ in range(max(1, repeat))]
    walls = sorted(r["wall_s"] for r in runs)
    return {
        "wall_s": walls[len(walls) // 2],
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "runs_wall_s": [r["wall_s"] for r in runs],
    }


def steps(w: Path, out: Path, memory_limit: str | None = None) -> dict[str, list[str]]:
    """The commands measured, by step name (`memory_limit`: followmoney's --memory-limit, if any)."""
    py = [sys.executable, str(HERE / "step.py")]
    parquet = str(w / "transactions.parquet")
    limit = ["--memory-limit", memory_limit] if memory_limit else []
    scan = [
        str(BIN / "followmoney"),
        "scan",
        parquet,
        "--officials",
        str(w / "officials.csv"),
        "--networks",
        str(w / "networks.csv"),
        *limit,
        "--quiet",
    ]
    return {
        "floor": [*py, "floor", parquet],
        "pandas": [*py, "pandas", parquet],
        "duckdb": [*py, "duckdb", parquet],
        "polars": [*py, "polars", parquet],
        "followmoney_detect": [*py, "detect", parquet, *([memory_limit] if memory_limit else [])],
        "followmoney_two_rules": [*scan, "--select", "FM101,FM120", "--out", str(out / "two")],
        "followmoney_full": [*scan, "--out", str(out / "full")],
    }


def main() -> None:
    """Parse arguments, run every step at every size, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1M,10M")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip", default="", help="comma-separated steps to skip (e.g. pandas)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per step; the median wall time is reported")
    parser.add_argument(
        "--memory-limit",
        default=None,
        help="followmoney's --memory-limit for its steps (e.g. 8GiB: the issue's bound at 50M); default: none",
    )
    args = parser.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    # Warm the Numba cache so no step pays compilation.
    subprocess.run([str(BIN / "followmoney"), "rules", "check"], check=True, stdout=subprocess.DEVNULL)
    results = []
    for rows in parse_rows(args.rows):
        w = world(rows, args.seed)
        out = CACHE / f"out-{rows}"
        row: dict[str, object] = {"rows": rows}
        for name, cmd in steps(w, out, args.memory_limit).items():
            if name in skip:
                continue
            m = measure_repeated(cmd, args.repeat)
            row[name] = {**m, "rows_per_s": round(rows / m["wall_s"])}
            print(f"{rows:>11,} {name:<24} {m['wall_s']:>8.2f} s {m['peak_rss_mib']:>9.0f} MiB", flush=True)
        results.append(row)
    print_table(results)
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {
        "when": stamp,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "memory_limit": args.memory_limit,
        "repeat": args.repeat,
        "results": results,
    }
    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / "latest.json").write_text(json.dumps(payload, indent=2) + "\n")


def print_table(results: list[dict[str, object]]) -> None:
    """Markdown table: wall, rows/s, peak RSS and ratios to floor and peers."""
    print("\n| rows | step | wall s | rows/s | peak RSS MiB | × floor | pandas ÷ it | duckdb ÷ it | polars ÷ it |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in results:
        floor = row.get("floor")
        for name, m in row.items():
            if not isinstance(m, dict):
                continue
            wall = m["wall_s"]
            ratio_floor = f"{wall / floor['wall_s']:.2f}" if isinstance(floor, dict) else "-"
            peers = []
            for peer in PEERS:
                p = row.get(peer)
                peers.append(f"{p['wall_s'] / wall:.2f}" if isinstance(p, dict) else "-")
            print(
                f"| {row['rows']:,} | {name} | {wall:.2f} | {m['rows_per_s']:,} | {m['peak_rss_mib']:.0f} "
                f"| {ratio_floor} | {' | '.join(peers)} |"
            )


if __name__ == "__main__":
    main()
