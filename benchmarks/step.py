"""One benchmark step in its own process: `python benchmarks/step.py floor|pandas|duckdb FILE.parquet`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers


def main() -> None:
    """Run the named step on the file and print its result."""
    name, path = sys.argv[1], Path(sys.argv[2])
    result = {"floor": peers.floor, "pandas": peers.pandas_rules, "duckdb": peers.duckdb_rules}[name](path)
    print(name, result)


if __name__ == "__main__":
    main()
