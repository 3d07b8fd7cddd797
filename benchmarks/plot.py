"""Draw the cost curve of benchmark results: rows per second against input rows, one line per step.

    python benchmarks/plot.py benchmarks/results/latest.json benchmarks/results/bench-20261206T124729Z.json \\
        --out benchmarks/results/curve.svg

A cost that grows linearly with the input is a flat line (constant rows/s); a line that falls is a cost
growing faster than the input. Results of several runs are merged by input size (a later file wins for a
size both hold), so a `make bench` run (1M, 10M) and a 50M run draw one curve. Sizes run under a
followmoney --memory-limit are marked with it. Uses matplotlib (a bench-only dependency) to write SVG.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

LABELS = {
    "floor": "floor (read + sort)",
    "pandas": "pandas, 2 rules",
    "duckdb": "DuckDB, 2 rules",
    "polars": "Polars, 2 rules",
    "followmoney_detect": "followmoney detect, 2 rules",
    "followmoney_two_rules": "followmoney scan, 2 rules",
    "followmoney_full": "followmoney full scan",
}


def merged(paths: list[Path]) -> tuple[dict[int, dict[str, Any]], dict[int, str | None], list[str]]:
    """(steps by input size, followmoney's memory limit by size, the files' run times) of the result files."""
    by_size: dict[int, dict[str, Any]] = {}
    limits: dict[int, str | None] = {}
    whens = []
    for path in paths:
        payload = json.loads(path.read_text())
        whens.append(str(payload.get("when", path.stem)))
        for row in payload["results"]:
            size = int(row["rows"])
            by_size[size] = {k: v for k, v in row.items() if isinstance(v, dict)}
            limits[size] = payload.get("memory_limit")
    return by_size, limits, whens


def draw(paths: list[Path], out: Path) -> None:
    """Write the rows/s curve of the merged results to `out` (SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "followmoney"  # fixed element ids: same results, same bytes
    import matplotlib.pyplot as plt

    by_size, limits, whens = merged(paths)
    sizes = sorted(by_size)
    fig, ax = plt.subplots(figsize=(10, 4.8))
    for step, label in LABELS.items():
        points = [(n, by_size[n][step]["rows_per_s"]) for n in sizes if step in by_size[n]]
        if points:
            xs, ys = zip(*points, strict=True)
            style = "-" if step.startswith("followmoney") else "--"
            ax.plot(xs, ys, style, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, [_size_label(n, limits[n]) for n in sizes])
    ax.set_xlabel("input rows (synth world, seed 7, Parquet)")
    ax.set_ylabel("rows per second (flat = linear cost)")
    ax.set_title("Cost curve on 2 cores: " + ", ".join(whens), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    tmp = out.with_name(out.name + ".tmp")
    fig.savefig(tmp, format="svg", metadata={"Date": None})  # no timestamp: the same results, the same file
    plt.close(fig)
    tmp.replace(out)


def _size_label(rows: int, limit: str | None) -> str:
    text = f"{rows / 1e6:g}M" if rows >= 1_000_000 else f"{rows:,}"
    return f"{text}\n(followmoney {limit})" if limit else text


def main() -> None:
    """Parse arguments and draw."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path, help="results JSON files written by run.py")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "curve.svg")
    args = parser.parse_args()
    draw(args.results, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
