"""Time single stages of a scan on a cached synth world, to compare code versions run one after the other.

Run (from the repository, after `make bench` or `followmoney synth` made the world):

    .venv/bin/python benchmarks/bench_stages.py pair-table benchmarks/cache/world-10000000-7
    .venv/bin/python benchmarks/bench_stages.py spill benchmarks/cache/world-10000000-7 --memory-limit 3GiB
    .venv/bin/python benchmarks/bench_stages.py partitions benchmarks/cache/world-10000000-7 --memory-limit 3GiB

- pair-table: the anomaly model's pair table of the whole world in memory (`features.pair_table` with the
  shipped model's features), and `payer_features` alone; then `Model.table_scores` of that table.
- spill: the spilling pass (`pipeline.load_transfers` out of core, with the phones several ids use found first
  as a full scan finds them, untimed), with the seconds each of its steps took on each thread (the spill files
  are written on a writer thread while the main one reads on).
- partitions: every partition read once (`Transfers.partition`), with and without the key-collision check.

To time another commit's code, run the script from a worktree of it with PYTHONPATH set to that worktree.
Not a test: no timing is asserted. Each step prints its wall seconds over --repeat runs.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from followmoney.config import ReadOptions, ScanConfig
from followmoney.memory import parse_size, plan_memory
from followmoney.read import inspect_files


def _times(label: str, fn: Callable[[], Any], repeat: int) -> Any:
    result, seconds = None, []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    print(f"{label:<36} " + " ".join(f"{s:6.2f}" for s in seconds) + " s", flush=True)
    return result


def pair_table(world: Path, repeat: int) -> None:
    """The pair table, payer features and model scores of the whole world in memory."""
    from followmoney import features as F
    from followmoney.models import load
    from followmoney.pipeline import load_transactions

    path = world / "transactions.arrow"
    files = inspect_files([path], ReadOptions())
    txns, _ = load_transactions(files, ScanConfig(inputs=str(path), out_dir=world), None, lambda _: None)
    txns = txns.select(F.PAIR_TABLE_COLUMNS).rechunk()
    model = load("iforest")
    features, corridors = model.feature_names, model.corridors()
    print(f"{txns.height:,} rows", flush=True)
    table = _times(
        "pair_table", lambda: F.pair_table(txns, corridors, None, None, ordered=False, features=features), repeat
    )
    lazy = F._with_rarity(txns.lazy(), corridors).collect().lazy()
    _times("payer_features", lambda: F.payer_features(lazy, lazy, features).collect(), repeat)
    _times("table_scores", lambda: model.table_scores(table), repeat)


def _shared_phones(world: Path, limit: int) -> Any:
    """The phones several ids use (parties.shared_phone_numbers), as a full scan finds them before spilling."""
    from followmoney.parties import shared_phone_numbers
    from followmoney.pipeline import directory_of, shared_phones_suffice, transfer_columns
    from followmoney.rules import load_rules

    path = world / "transactions.arrow"
    with tempfile.TemporaryDirectory(dir=world.parent) as out:
        config = ScanConfig(inputs=str(path), out_dir=Path(out), memory_limit=limit)
        files = inspect_files([path], ReadOptions())
        rules = load_rules(config.rules_dir)
        if not shared_phones_suffice(rules):
            return None  # as the scan: every phone's sends are copied
        plan = plan_memory(files, transfer_columns(rules), out_of_core_available=True, limit=limit)
        with directory_of(files, config, plan) as directory:
            return shared_phone_numbers(directory)


def _transfers(world: Path, limit: int, out: Path, shared_phones: Any = None) -> Any:
    from followmoney.pipeline import load_transfers, transfer_columns
    from followmoney.rules import load_rules

    path = world / "transactions.arrow"
    rules = load_rules(ScanConfig(inputs=str(path), out_dir=out).rules_dir)
    files = inspect_files([path], ReadOptions())
    config = ScanConfig(inputs=str(path), out_dir=out, memory_limit=limit)
    plan = plan_memory(files, transfer_columns(rules), out_of_core_available=True, limit=limit)
    return load_transfers(files, config, None, rules, plan, lambda _: None, True, shared_phones)


def spill(world: Path, limit: int, repeat: int) -> None:
    """The spilling pass, with each step's seconds per thread."""
    from followmoney import partition as P

    spent: dict[tuple[str, str], float] = {}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                key = (name, "writer" if threading.current_thread() is not threading.main_thread() else "main")
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - started

        return call

    steps = ["load_columns", "_normalised", "_split", "_assignments", "_write_parts", "_duplicates"]
    originals = {name: getattr(P, name) for name in steps}
    for name in steps:
        setattr(P, name, timed(name, originals[name]))
    shared = _shared_phones(world, limit)
    if shared is not None:
        print(f"{shared.shape[0]:,} phones used by several ids (their sends alone are copied to a phone's partition)")
    try:
        for _ in range(repeat):
            spent.clear()
            with tempfile.TemporaryDirectory(dir=world.parent) as out:
                started = time.perf_counter()
                transfers = _transfers(world, limit, Path(out), shared)
                wall = time.perf_counter() - started
                transfers.close()
            print(f"spill pass {wall:.2f} s, {transfers.n_parts} partitions", flush=True)
            for (name, thread), seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
                print(f"  {name:<16} {thread:<7} {seconds:6.2f} s", flush=True)
    finally:
        for name in steps:
            setattr(P, name, originals[name])


def partitions(world: Path, limit: int, repeat: int) -> None:
    """Every partition read once, with the key-collision check (first read) and without it."""
    shared = _shared_phones(world, limit)
    with tempfile.TemporaryDirectory(dir=world.parent) as out:
        transfers = _transfers(world, limit, Path(out), shared)
        try:

            def read_all(check: bool) -> int:
                transfers.checked = set() if check else set(range(transfers.n_parts))
                return sum(transfers.partition(part).height for part in range(transfers.n_parts))

            rows = _times("partitions, collision check", lambda: read_all(True), repeat)
            _times("partitions, no collision check", lambda: read_all(False), repeat)
            print(f"{rows:,} rows in {transfers.n_parts} partitions", flush=True)
        finally:
            transfers.close()


def main() -> None:
    """Parse arguments and run the named stage."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["pair-table", "spill", "partitions"])
    parser.add_argument("world", type=Path, help="a synth world's directory (with transactions.arrow)")
    parser.add_argument("--memory-limit", default="3GiB", help="for spill and partitions (default 3GiB)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    pl.Config.set_tbl_rows(0)
    if args.stage == "pair-table":
        pair_table(args.world, args.repeat)
    elif args.stage == "spill":
        spill(args.world, parse_size(args.memory_limit), args.repeat)
    else:
        partitions(args.world, parse_size(args.memory_limit), args.repeat)


if __name__ == "__main__":
    main()
