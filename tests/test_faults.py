"""Faults: interrupted runs (SIGINT/SIGTERM), unwritable or full output locations, and the memory guard.

A scan either leaves complete outputs or none: never a half-written file, a temporary file, or a mix of
old and new outputs; a re-run gives byte-identical alert files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import T0, frame, txn

from followmoney import schema as S
from followmoney import write as W
from followmoney.config import ReadOptions
from followmoney.errors import ResourceError
from followmoney.memory import MemoryPlan, enforce, estimate_load, parse_size, plan_memory
from followmoney.read import inspect_files, load_columns
from followmoney.write import write_outputs

REPO = Path(__file__).resolve().parent.parent
WORLD_ROWS = 60_000
CORE = (S.TXN_ID, S.TS, S.SENDER_ID, S.RECEIVER_ID, S.SENDER_COUNTRY, S.RECEIVER_COUNTRY, S.AMOUNT, S.CURRENCY)
CORE += (S.AMOUNT_USD, S.AGENT_ID)


def world_frame(n: int, seed: int = 7) -> pl.DataFrame:
    """n transfers among ~n/20 senders and ~n/15 receivers over a year, with structuring and bad rows."""
    rng = np.random.default_rng(seed)
    senders = rng.integers(0, max(n // 20, 1), n)
    receivers = rng.integers(0, max(n // 15, 1), n)
    amounts = np.round(rng.lognormal(5, 1.2, n), 2)
    amounts[rng.random(n) < 0.01] = 9_500.0  # near-threshold sends, some of which cluster per sender
    amounts[rng.random(n) < 0.001] = -1.0  # quarantined
    seconds = rng.integers(0, 365 * 86_400, n)
    base = pl.DataFrame({"s": senders, "r": receivers, "sec": seconds, S.AMOUNT: amounts})
    return base.select(
        pl.format("T{}", pl.int_range(n)).alias(S.TXN_ID),
        (pl.lit(T0) + pl.duration(seconds=pl.col("sec"))).alias(S.TS),
        pl.format("C{}", "s").alias(S.SENDER_ID),
        pl.format("José {}", "s").alias(S.SENDER_NAME),
        pl.lit("TH").alias(S.SENDER_COUNTRY),
        pl.format("R{}", "r").alias(S.RECEIVER_ID),
        pl.format("Ñame {}", "r").alias(S.RECEIVER_NAME),
        pl.lit("KH").alias(S.RECEIVER_COUNTRY),
        pl.col(S.AMOUNT),
        pl.lit("USD").alias(S.CURRENCY),
        pl.col(S.AMOUNT).alias(S.AMOUNT_USD),
        pl.format("AG{}", pl.col("s") % 40).alias(S.AGENT_ID),
    )


def cli(*args: Any) -> list[str]:
    return [sys.executable, "-m", "followmoney.cli", *[str(a) for a in args]]


def env_with_tmp(tmpdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TMPDIR"] = str(tmpdir)
    env.pop("FOLLOWMONEY_DEBUG", None)
    return env


def files_in(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def reconciled(out: Path) -> dict:
    data = json.loads((out / "summary.json").read_text())
    assert data["rows_read"] == data["rows_scanned"] + data["rows_quarantined"]
    return data


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A cp1252 CSV world (so --encoding makes a temporary UTF-8 copy) and one complete reference scan."""
    root = tmp_path_factory.mktemp("faults")
    path = root / "dump.csv"
    df = world_frame(WORLD_ROWS).with_columns(pl.col(S.TS).dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
    path.write_bytes(df.write_csv().encode("cp1252"))
    tmpdir = root / "tmp"
    tmpdir.mkdir()
    ref = root / "ref"
    start = time.monotonic()
    done = subprocess.run(
        cli("scan", path, "--encoding", "cp1252", "--out", ref, "--quiet"),
        cwd=REPO,
        env=env_with_tmp(tmpdir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert list(tmpdir.iterdir()) == [], "a temporary file went to the system's temporary directory"
    assert not list(root.glob(".followmoney-*")), "the transcoded temporary copy outlived the run"
    s = reconciled(ref)
    assert s["rows_read"] == WORLD_ROWS and s["rows_quarantined"] > 0 and s["alerts"] > 0
    return {"path": path, "ref": ref, "tmpdir": tmpdir, "seconds": time.monotonic() - start}


def spill_place(out: Path) -> Path:
    """Where a scan writing to `out` puts its temporary files (no --spill-dir): `out`, or the directory it is made in."""
    return out if out.is_dir() else out.parent


def interrupt(world: dict[str, Any], out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start a scan, wait until it is reading (its temporary UTF-8 copy exists where its spill files would go: not
    in the system's temporary directory, often small or in memory), then signal it."""
    tmpdir = world["tmpdir"]
    place = spill_place(out)
    proc = subprocess.Popen(
        cli("scan", world["path"], "--encoding", "cp1252", "--out", out, "--quiet"),
        cwd=REPO,
        env=env_with_tmp(tmpdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(place.glob(".followmoney-utf8-*.csv")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    # Early, so the signal lands in loading, normalising or detecting, well before outputs are committed
    # (a 60k-row scan now spends well under a second past this point).
    time.sleep(min(0.15, world["seconds"] / 10))
    assert proc.poll() is None, "the scan finished before it could be interrupted"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_after_a_signal_finalisers_of_half_built_objects_add_no_lines() -> None:
    """A signal landing while a library builds an object (llvmlite, as Numba loads a kernel) can leave it half
    built; its finaliser then fails when the garbage collector reaches it, which may be after the command's one-line
    message. Once a signal is pending, such 'Exception ignored' reports are dropped up to the exit; without one
    they reach the hook that was in place (Python's report) as usual."""
    import gc

    from followmoney import cli as C

    class HalfBuilt:
        def __del__(self) -> None:
            raise AttributeError("'ValueRef' object has no attribute '_as_parameter_'")

    reported: list[BaseException | None] = []
    default = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: reported.append(unraisable.exc_value)
    try:
        with C._termination_as_interrupt():
            pass
        HalfBuilt()
        gc.collect()
        assert len(reported) == 1 and isinstance(reported[0], AttributeError)  # no signal: reported
        with pytest.raises(C._Interrupted), C._termination_as_interrupt():
            C._on_signal(signal.SIGTERM, None)
        HalfBuilt()  # finalised after the command's context has ended, as on the way to the exit
        gc.collect()
        assert len(reported) == 1
    finally:
        sys.unraisablehook = default
        C._PENDING.clear()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_scan_leaves_no_partial_output_and_rerun_is_identical(
    world: dict[str, Any], tmp_path: Path, sig: int
) -> None:
    fresh = tmp_path / "fresh"
    existing = tmp_path / "existing"
    shutil.copytree(world["ref"], existing)
    before = files_in(existing)
    for out in (fresh, existing):
        done = interrupt(world, out, sig)
        assert done.returncode == 128 + sig, done.stderr
        assert "interrupted" in one_line(done.stderr)
        assert list(world["tmpdir"].iterdir()) == [], "temporary files went to the system's temporary directory"
        assert not list(tmp_path.glob(".followmoney-*")), "temporary files survived the interrupt"
    assert not fresh.exists() or list(fresh.iterdir()) == []
    assert files_in(existing) == before, "an interrupted run changed earlier outputs"
    done = subprocess.run(
        cli("scan", world["path"], "--encoding", "cp1252", "--out", fresh, "--quiet"),
        cwd=REPO,
        env=env_with_tmp(world["tmpdir"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for name in ("alerts.parquet", "alerts.csv", "quarantine.parquet"):
        assert (fresh / name).read_bytes() == (world["ref"] / name).read_bytes(), name
    assert reconciled(fresh)["rows_read"] == WORLD_ROWS


# ------------------------------------------------------------------------------------------ writer, in-process


def outputs_of(n_alerts: int) -> tuple[pl.DataFrame, dict]:
    alerts = pl.DataFrame(
        {
            "alert_id": [f"FM101-{i:016x}" for i in range(n_alerts)],
            "score": [50.0] * n_alerts,
            "window_start": [T0] * n_alerts,
            "window_end": [T0] * n_alerts,
            "txn_ids": [["a", "b"]] * n_alerts,
        }
    )
    return alerts, {"rows_read": n_alerts, "rows_scanned": n_alerts, "rows_quarantined": 0}


def test_interrupt_while_writing_keeps_previous_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alerts, summary = outputs_of(3)
    write_outputs(tmp_path, alerts, None, summary)
    before = files_in(tmp_path)
    real = W._write_one
    calls = []

    def interrupted(path: Path, suffix: str, content: Any) -> None:
        calls.append(path)
        if len(calls) == 2:
            real(path, suffix, content)  # half the outputs exist under temporary names
            raise KeyboardInterrupt
        real(path, suffix, content)

    monkeypatch.setattr(W, "_write_one", interrupted)
    new_alerts, new_summary = outputs_of(5)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(tmp_path, new_alerts, None, new_summary)
    assert files_in(tmp_path) == before
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        write_outputs(tmp_path / "new", new_alerts, None, new_summary)
    assert not (tmp_path / "new").exists()


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raising KeyboardInterrupt, as Python sets it up when it starts with SIGINT at its default; a process
    started as a shell's background job (`make test &`, `nohup …`) inherits SIGINT ignored, and Python keeps it so."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_signal_during_renames_is_delivered_after_all_outputs_are_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sigint_raises: None
) -> None:
    alerts, summary = outputs_of(3)
    write_outputs(tmp_path, alerts, None, summary)
    real = os.replace
    renamed = []

    def replace_and_signal(src: Any, dst: Any) -> None:
        if not renamed:
            signal.raise_signal(signal.SIGINT)  # arrives between the first and the second rename
        real(src, dst)
        renamed.append(dst)

    monkeypatch.setattr(W.os, "replace", replace_and_signal)
    new_alerts, new_summary = outputs_of(5)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(tmp_path, new_alerts, None, new_summary)
    assert len(renamed) == 3  # alerts.parquet, alerts.csv, summary.json: all new, none old
    assert pl.read_parquet(tmp_path / "alerts.parquet").height == 5
    assert pl.read_csv(tmp_path / "alerts.csv").height == 5
    assert json.loads((tmp_path / "summary.json").read_text())["rows_read"] == 5
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".alerts.parquet.tmp-{dead.pid}"
    stale.write_bytes(b"half")
    live = tmp_path / f".alerts.csv.tmp-{os.getppid()}"  # another process still writing: not ours to delete
    live.write_bytes(b"busy")
    alerts, summary = outputs_of(1)
    write_outputs(tmp_path, alerts, None, summary)
    assert not stale.exists() and live.exists()


# ----------------------------------------------------------------------------------- unwritable or full output


def small_world(tmp_path: Path) -> Path:
    rows = [txn(f"S{i}", "C_SMURF", "C_X", T0 + dt.timedelta(days=i), 9500.0 - 100 * i) for i in range(3)]
    rows += [txn("B1", "C_B", "C_X", T0, -5.0)]
    path = tmp_path / "t.parquet"
    frame(rows).write_parquet(path)
    return path


def limited_file_size(limit: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("existing", [False, True])
def test_full_output_location_gives_one_line_error_and_no_half_written_file(tmp_path: Path, existing: bool) -> None:
    """A per-process file size limit (RLIMIT_FSIZE) stands in for a full disk: writes fail with EFBIG."""
    path = small_world(tmp_path)
    out = tmp_path / "out"
    if existing:
        done = subprocess.run(cli("scan", path, "--out", out, "-q"), cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert reconciled(out)["rows_quarantined"] == 1
    before = files_in(out)
    done = subprocess.run(
        cli("scan", path, "--out", out, "-q", "--min-score", "0"),
        cwd=REPO,
        capture_output=True,
        text=True,
        preexec_fn=limited_file_size(1500),
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    line = one_line(done.stderr)
    assert str(out) in line and "disk is full or a file size limit" in line
    assert files_in(out) == before  # no temporary file, no half-written output, earlier outputs intact
    if not existing:
        assert not out.exists()


def test_unwritable_output_location(tmp_path: Path, run_cli) -> None:
    path = small_world(tmp_path)
    # /proc refuses new directories even to root, which ignores file permission bits.
    result = run_cli("scan", path, "--out", "/proc/followmoney-test/out", "--quiet")
    assert result.exit_code == 2
    assert "/proc/followmoney-test/out" in one_line(result.stderr)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("scan", path, "--out", blocker / "sub", "--quiet")
    assert result.exit_code == 2 and str(blocker) in one_line(result.stderr)
    assert blocker.read_text() == "x"


# -------------------------------------------------------------------------------------------------- memory


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv"])
def test_memory_estimate_tracks_the_loaded_size(tmp_path: Path, fmt: str) -> None:
    df = world_frame(20_000)
    path = tmp_path / f"w.{fmt}"
    if fmt == "parquet":
        df.write_parquet(path)
    elif fmt == "arrow":
        df.write_ipc(path)
    else:
        df.with_columns(pl.col(S.TS).dt.strftime("%Y-%m-%dT%H:%M:%S%:z")).write_csv(path)
    files = inspect_files([path], ReadOptions())
    rows, estimate = estimate_load(files, CORE)
    loaded = load_columns(files[0], ReadOptions(), CORE)
    assert abs(rows - 20_000) <= 20_000 * 0.05
    # In memory a Polars string is a 16-byte view (plus its bytes beyond 12); numbers and times 8 bytes.
    actual = sum(
        16 * loaded.height + int(loaded[c].str.len_bytes().filter(loaded[c].str.len_bytes() > 12).sum() or 0)
        if loaded[c].dtype == pl.String
        else 8 * loaded.height
        for c in loaded.columns
    )
    high = 3.0 if fmt == "csv" else 2.0  # a CSV is parsed whole, extra columns too
    assert 0.8 * actual <= estimate <= high * actual, (estimate, actual)


def test_memory_plan_decides_and_advises(tmp_path: Path) -> None:
    path = tmp_path / "w.parquet"
    world_frame(20_000).write_parquet(path)
    files = inspect_files([path], ReadOptions())
    roomy = plan_memory(files, CORE, available=(64 << 30, "test"))
    assert roomy.mode == "in_memory" and roomy.rows == 20_000
    tight = plan_memory(files, CORE, available=(1 << 20, "test"))
    assert tight.mode == "stop" and tight.working_set_bytes > 1 << 20
    with pytest.raises(ResourceError, match=r"needs about .* MiB .* may use \(80% of 1\.0 MiB available, test\)"):
        enforce(tight)
    routed = plan_memory(files, CORE, available=(1 << 20, "test"), out_of_core_available=True)
    assert routed.mode == "out_of_core"
    enforce(routed)  # the pipeline routes on .mode; only "stop" raises
    enforce(roomy)
    assert isinstance(roomy, MemoryPlan)


def test_memory_guard_stops_the_cli_before_loading(tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.parquet"
    world_frame(20_000).write_parquet(path)
    # Too little even for the per-row state a partitioned scan keeps: stop with advice.
    monkeypatch.setenv("FOLLOWMONEY_MAX_MEMORY", "200KiB")
    result = run_cli("scan", path, "--out", tmp_path / "o", "--quiet")
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert "FOLLOWMONEY_MAX_MEMORY" in line and "narrower glob" in line
    assert not (tmp_path / "o").exists()
    monkeypatch.setenv("FOLLOWMONEY_MAX_MEMORY", "lots")
    result = run_cli("scan", path, "--out", tmp_path / "o", "--quiet")
    assert result.exit_code == 2 and "FOLLOWMONEY_MAX_MEMORY" in one_line(result.stderr)
    monkeypatch.setenv("FOLLOWMONEY_MAX_MEMORY", "64GiB")
    result = run_cli("scan", path, "--out", tmp_path / "o", "--quiet")
    assert result.exit_code == 0, result.output
    reconciled(tmp_path / "o")


def test_memory_guard_stops_model_training_before_loading(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.parquet"
    world_frame(20_000).write_parquet(path)
    models = tmp_path / "models"
    # Training has no partitioned path: a dump that would not fit stops with advice before anything is loaded
    # (the scan of the same file would spill to partitions under this limit).
    monkeypatch.setenv("FOLLOWMONEY_MAX_MEMORY", "8MiB")
    result = run_cli("model", "train", path, "--name", "tiny", "--trees", "10", "--models-dir", models)
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert line.startswith("followmoney: error: training needs about") and "FOLLOWMONEY_MAX_MEMORY" in line
    assert "train on fewer files" in line
    assert not models.exists()
    monkeypatch.setenv("FOLLOWMONEY_MAX_MEMORY", "64GiB")
    result = run_cli("model", "train", path, "--name", "tiny", "--trees", "10", "--models-dir", models)
    assert result.exit_code == 0, result.output
    assert (models / "tiny-v1" / "manifest.json").exists()


def test_parse_size() -> None:
    assert parse_size("8GiB") == 8 << 30
    assert parse_size("512MB") == 512_000_000
    assert parse_size("2g") == 2 << 30
    assert parse_size("1000") == 1000
    with pytest.raises(ValueError):
        parse_size("a lot")


def test_console_exit_keeps_exit_codes_messages_and_exit_handlers(tmp_path: Path) -> None:
    """The `followmoney` command leaves with os._exit (no interpreter teardown): exit codes, one-line errors,
    printed output and atexit handlers (the transcoded CSV copies are removed by one) must survive it."""
    marker = tmp_path / "handler-ran"
    prelude = (
        "import atexit, pathlib, sys\n"
        "from followmoney import cli\n"
        f"atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text('ran'))\n"
    )
    missing = subprocess.run(
        [
            sys.executable,
            "-c",
            prelude + "cli.console_main()",
            "scan",
            str(tmp_path / "none.arrow"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0 and "none.arrow" in one_line(missing.stderr)
    assert marker.read_text() == "ran"
    listed = subprocess.run(
        [sys.executable, "-c", prelude + "cli.console_main()", "rules", "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0 and "FM101" in listed.stdout and "FM190" in listed.stdout
    message = subprocess.run(
        [
            sys.executable,
            "-c",
            prelude + "cli.app.command('boom')(lambda: sys.exit('boom: no'))\ncli.console_main()",
            "boom",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert message.returncode == 1 and message.stderr.strip() == "boom: no"


def test_the_numpy_bridge_is_ready_before_signals_become_exceptions() -> None:
    """Polars' first to_numpy runs numpy's version check in Python from inside Rust; a signal's exception raised
    there made Rust panic and print a backtrace after the one-line message. A command initialises it before it
    turns signals into exceptions, so no Python runs there once they are."""
    probe = (
        "import sys\n"
        "from followmoney import cli\n"
        "import polars as pl\n"
        "ran = []\n"
        "def watch(frame, event, arg):\n"
        "    if event == 'call' and frame.f_code.co_filename.endswith('numpy/lib/_version.py'):\n"
        "        ran.append(frame.f_code.co_name)\n"
        "with cli._user_errors():\n"
        "    sys.setprofile(watch)\n"
        "    pl.Series([1, 2]).to_numpy()\n"
        "    sys.setprofile(None)\n"
        "print(len(ran))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0", done.stdout
