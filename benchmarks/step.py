"""One benchmark step in its own process: `python benchmarks/step.py floor|pandas|duckdb|detect FILE.parquet`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers


def followmoney_detect(path: Path) -> tuple[int, int]:
    """followmoney doing the peers' work: read, normalise (checks, quarantine, party keys), find the parties
    that could be officials (the party directory and the officials list beside the file: FM120 is about
    payments to officials, so a scan always has them) and run the FM101 and FM120 detectors, with no
    linking, scoring or writing. (structuring subjects, regular series)."""
    import datetime as dt

    from followmoney.config import ReadOptions, ScanConfig
    from followmoney.partition import load_in_memory
    from followmoney.pipeline import CORE_COLUMNS, detect, directory_of, load_list_entries
    from followmoney.read import inspect_files
    from followmoney.rules import load_rules
    from followmoney.screen import possible_official_keys

    config = ScanConfig(
        inputs=str(path), out_dir=path.parent, now=dt.datetime.now(dt.UTC), officials=path.parent / "officials.csv"
    )
    rules = load_rules(config.rules_dir, select=("FM101", "FM120"))
    files = inspect_files([path], ReadOptions())
    transfers = load_in_memory(files, CORE_COLUMNS, config, None, lambda _: None)
    with directory_of(files, config) as directory:
        officials = possible_official_keys(directory, load_list_entries(config))
    found = detect(transfers, rules, lambda _: None, None, officials)
    by_rule = found.group_by("rule_code").len()
    counts = dict(zip(by_rule["rule_code"].to_list(), by_rule["len"].to_list(), strict=True))
    return int(counts.get("FM101", 0)), int(counts.get("FM120", 0))


def main() -> None:
    """Run the named step on the file and print its result."""
    name, path = sys.argv[1], Path(sys.argv[2])
    steps = {
        "floor": peers.floor,
        "pandas": peers.pandas_rules,
        "duckdb": peers.duckdb_rules,
        "detect": followmoney_detect,
    }
    print(name, steps[name](path))


if __name__ == "__main__":
    main()
