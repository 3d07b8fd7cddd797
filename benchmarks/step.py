"""One benchmark step in its own process: `python benchmarks/step.py floor|pandas|duckdb|polars|detect FILE.parquet
[MEMORY_LIMIT]` (the limit, e.g. 8GiB, for the detect step only)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers


def followmoney_detect(path: Path, memory_limit: str | None = None) -> tuple[int, int]:
    """followmoney doing the peers' work: read, normalise (checks, quarantine, party keys), find the parties
    that could be officials (the party directory and the officials list beside the file: FM120 is about
    payments to officials, so a scan always has them) and run the FM101 and FM120 detectors, with no
    linking, scoring or writing. (structuring subjects, regular series). Like `scan`, it follows the memory
    plan: in memory when the input fits (`memory_limit`, e.g. 8GiB, else a share of the machine), else
    partitioned into spill files, with the party directory in slices."""
    import datetime as dt
    import tempfile

    from followmoney.config import ReadOptions, ScanConfig
    from followmoney.memory import enforce, parse_size, plan_memory
    from followmoney.pipeline import detect, directory_of, load_list_entries, load_transfers, transfer_columns
    from followmoney.read import inspect_files
    from followmoney.rules import load_rules
    from followmoney.screen import possible_official_keys

    limit = parse_size(memory_limit) if memory_limit else None
    with tempfile.TemporaryDirectory(prefix="bench-detect-", dir=path.parent) as out:
        config = ScanConfig(
            inputs=str(path),
            out_dir=Path(out),
            now=dt.datetime.now(dt.UTC),
            officials=path.parent / "officials.csv",
            memory_limit=limit,
        )
        rules = load_rules(config.rules_dir, select=("FM101", "FM120"))
        files = inspect_files([path], ReadOptions())
        plan = plan_memory(files, transfer_columns(rules), out_of_core_available=True, limit=limit)
        enforce(plan)
        transfers = load_transfers(files, config, None, rules, plan, lambda _: None)
        try:
            with directory_of(files, config, plan) as directory:
                officials = possible_official_keys(directory, load_list_entries(config))
            found = detect(transfers, rules, lambda _: None, None, officials)
        finally:
            transfers.close()
    by_rule = found.group_by("rule_code").len()
    counts = dict(zip(by_rule["rule_code"].to_list(), by_rule["len"].to_list(), strict=True))
    return int(counts.get("FM101", 0)), int(counts.get("FM120", 0))


def main() -> None:
    """Run the named step on the file and print its result."""
    name, path = sys.argv[1], Path(sys.argv[2])
    if name == "detect":
        print(name, followmoney_detect(path, sys.argv[3] if len(sys.argv) > 3 else None))
        return
    steps = {
        "floor": peers.floor,
        "pandas": peers.pandas_rules,
        "duckdb": peers.duckdb_rules,
        "polars": peers.polars_rules,
    }
    print(name, steps[name](path))


if __name__ == "__main__":
    main()
