"""Atomic writes of alerts, summary and quarantine: temporary names first, then one rename each.

Every output is first written and fsynced under a hidden temporary name in the output directory.
Only when all are complete are they renamed into place, with SIGINT/SIGTERM deferred for those few
renames so an interrupted run leaves either the previous outputs or the new ones, never a mix.
Any failure or interruption before that removes the temporary files (and a directory it created).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(out_dir: Path) -> list[Path]:
    """Delete temporary outputs left by an earlier run that was killed outright (SIGKILL, power loss)."""
    removed: list[Path] = []
    if not out_dir.is_dir():
        return removed
    for path in out_dir.iterdir():
        m = re.fullmatch(r"\.(.+)\.tmp-(\d+)", path.name)
        if m and int(m[2]) != os.getpid() and not _pid_alive(int(m[2])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, then deliver them (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


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
        remove_stale_temps(out_dir)
        for final, content in outputs:
            tmp = _tmp(final)
            temps.append(tmp)
            _write_one(tmp, final.suffix, content)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        with deferred_signals():
            for (final, _), tmp in zip(outputs, temps, strict=True):
                os.replace(tmp, final)
            stale = out_dir / "quarantine.parquet"
            if (quarantine is None or quarantine.height == 0) and stale.exists():
                stale.unlink()  # a quarantine file from an earlier run would mislead
        _fsync_dir(out_dir)
    except BaseException as exc:  # also KeyboardInterrupt/SIGTERM: never leave a temporary file behind
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        if created_dir:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        if isinstance(exc, OSError | pl.exceptions.PolarsError | pl.exceptions.PanicException):
            reason = "the disk is full or a file size limit was hit" if _is_full(exc) else _short(exc)
            raise OutputError(f"{out_dir}: could not write outputs ({reason})") from None
        raise
    return [final for final, _ in outputs]


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:150]


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return any(s in text for s in ("no space left", "file too large", "quota exceeded"))


def _fsync_dir(path: Path) -> None:
    """Make the renames durable (best effort: not every file system allows fsync on a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_one(path: Path, suffix: str, content: pl.DataFrame | str) -> None:
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif suffix == ".csv":
        content.write_csv(path)
    else:
        content.write_parquet(path, compression="zstd", statistics=False)
