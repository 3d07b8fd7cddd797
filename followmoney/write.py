"""Atomic writes of alerts, summary and quarantine: temporary names first, then one rename each."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import polars as pl

from followmoney.errors import OutputError


def check_out_dir(out_dir: Path) -> None:
    """Stop early if `out_dir` cannot become a writable directory."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: output path exists and is not a directory")
    probe = out_dir if out_dir.exists() else next((p for p in out_dir.parents if p.exists()), Path("."))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{out_dir}: output location is not writable")


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def alerts_for_csv(alerts: pl.DataFrame) -> pl.DataFrame:
    """The alert frame as written to CSV: txn_ids joined by ';', times in ISO 8601 UTC."""
    return alerts.with_columns(
        pl.col("txn_ids").list.join(";"),
        pl.col("window_start").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
        pl.col("window_end").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
    )


def write_outputs(
    out_dir: Path,
    alerts: pl.DataFrame,
    quarantine: pl.DataFrame | None,
    summary: dict[str, Any],
    extra: dict[str, pl.DataFrame] | None = None,
) -> list[Path]:
    """Write every output to a temporary name, then rename them all; nothing half-written survives."""
    created_dir = not out_dir.exists()
    outputs: list[tuple[Path, pl.DataFrame | str]] = [
        (out_dir / "alerts.parquet", alerts),
        (out_dir / "alerts.csv", alerts_for_csv(alerts)),
    ]
    if quarantine is not None and quarantine.height:
        outputs.append((out_dir / "quarantine.parquet", quarantine))
    outputs.extend((out_dir / name, frame) for name, frame in (extra or {}).items())
    outputs.append((out_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n"))
    temps: list[Path] = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for final, content in outputs:
            tmp = _tmp(final)
            temps.append(tmp)
            _write_one(tmp, final.suffix, content)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        for (final, _), tmp in zip(outputs, temps, strict=True):
            os.replace(tmp, final)
        stale = out_dir / "quarantine.parquet"
        if (quarantine is None or quarantine.height == 0) and stale.exists():
            stale.unlink()  # a quarantine file from an earlier run would mislead
    except (OSError, pl.exceptions.PolarsError) as exc:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        if created_dir:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise OutputError(f"{out_dir}: could not write outputs ({' '.join(str(exc).split())[:150]})") from None
    return [final for final, _ in outputs]


def _write_one(path: Path, suffix: str, content: pl.DataFrame | str) -> None:
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif suffix == ".csv":
        content.write_csv(path)
    else:
        content.write_parquet(path, compression="zstd", statistics=False)
