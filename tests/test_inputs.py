"""Reading: formats, directories, globs, --map, --fx, --assume-tz, CSV options, quarantine, and errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from conftest import T0, frame, txn
from polars.testing import assert_frame_equal

from followmoney import schema as S


def base_rows(prefix: str = "T") -> list[dict]:
    return [txn(f"{prefix}{i}", f"C{i % 3}", f"R{i % 2}", T0 + dt.timedelta(hours=i), 100.0 + i) for i in range(6)]


def scan(run_cli, inputs, out: Path, *extra):
    return run_cli("scan", inputs, "--out", out, "--quiet", *extra)


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def summary(out: Path) -> dict:
    data = json.loads((out / "summary.json").read_text())
    assert data["rows_read"] == data["rows_scanned"] + data["rows_quarantined"]
    return data


@pytest.mark.parametrize("suffix", [".arrow", ".feather", ".parquet", ".csv"])
def test_each_format_reads_all_rows(tmp_path: Path, run_cli, suffix: str) -> None:
    path = tmp_path / f"t{suffix}"
    df = frame(base_rows())
    if suffix == ".parquet":
        df.write_parquet(path)
    elif suffix == ".csv":
        df.with_columns(pl.col(S.TS).dt.strftime("%Y-%m-%dT%H:%M:%S%z")).write_csv(path)
    else:
        df.write_ipc(path)
    result = scan(run_cli, path, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert summary(tmp_path / "out")["rows_scanned"] == 6


def test_directory_and_glob_and_duplicates_across_files(tmp_path: Path, run_cli) -> None:
    d = tmp_path / "dump"
    d.mkdir()
    frame(base_rows()).write_ipc(d / "a.arrow")
    frame(base_rows()[:2] + base_rows("U")).write_parquet(d / "b.parquet")  # T0, T1 repeat across files
    (d / "_SUCCESS").write_text("")
    (d / ".hidden.csv").write_text("junk")
    result = scan(run_cli, d, tmp_path / "o1")
    assert result.exit_code == 0, result.output
    s = summary(tmp_path / "o1")
    assert (s["rows_read"], s["rows_scanned"], s["rows_quarantined"]) == (14, 12, 2)
    assert s["quarantine_reasons"] == {"duplicate txn_id": 2}
    q = pl.read_parquet(tmp_path / "o1" / "quarantine.parquet")
    assert q["reason"].to_list() == ["duplicate txn_id"] * 2
    assert set(q[S.SOURCE_FILE].to_list()) == {str(d / "b.parquet")}
    result = scan(run_cli, str(d / "*.arrow"), tmp_path / "o2")
    assert result.exit_code == 0 and summary(tmp_path / "o2")["rows_read"] == 6


def test_bad_rows_are_quarantined_with_every_reason(tmp_path: Path, run_cli) -> None:
    rows = base_rows()
    rows[0][S.TXN_ID] = None
    rows[1][S.AMOUNT] = -5.0
    rows[1][S.AMOUNT_USD] = -5.0
    rows[2][S.TS] = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    rows[3][S.AMOUNT] = float("nan")
    rows[3][S.SENDER_ID] = "  "
    rows[4][S.CURRENCY] = "XOF"
    rows[4][S.AMOUNT_USD] = None
    path = tmp_path / "t.parquet"
    frame(rows).write_parquet(path)
    result = scan(run_cli, path, tmp_path / "out")
    assert result.exit_code == 0, result.output
    s = summary(tmp_path / "out")
    assert (s["rows_scanned"], s["rows_quarantined"]) == (1, 5)
    q = pl.read_parquet(tmp_path / "out" / "quarantine.parquet").sort(S.SOURCE_ROW)
    assert q["reason"].to_list() == [
        "null or blank txn_id",
        "negative amount",
        "ts before 1990-01-01",
        "null or blank sender_id; NaN amount",
        "no FX rate for currency XOF",
    ]
    assert q[S.SOURCE_ROW].to_list() == [1, 2, 3, 4, 5]
    assert S.SENDER_NAME in q.columns  # all original columns are kept


def test_fx_table_fills_amount_usd(tmp_path: Path, run_cli) -> None:
    rows = [txn(f"T{i}", "C1", "R1", T0 + dt.timedelta(days=i), 0, currency="THB", amount=3500.0) for i in range(3)]
    df = frame(rows).drop(S.AMOUNT_USD)
    path = tmp_path / "t.parquet"
    df.write_parquet(path)
    assert summary_after(run_cli, path, tmp_path / "o1")["rows_quarantined"] == 3  # no FX: quarantined
    fx = tmp_path / "fx.csv"
    fx.write_text("currency,usd_per_unit\nTHB,0.028\n")
    assert summary_after(run_cli, path, tmp_path / "o2", "--fx", fx)["rows_scanned"] == 3


def test_dated_fx_table_converts_by_the_rate_of_the_day_without_noise(tmp_path: Path, run_cli) -> None:
    rows = [txn(f"T{i}", "C1", "R1", T0 + dt.timedelta(days=i), 0, currency="THB", amount=3500.0) for i in range(3)]
    path = tmp_path / "t.parquet"
    frame(rows).drop(S.AMOUNT_USD).write_parquet(path)
    fx = tmp_path / "fx.csv"
    later = (T0 + dt.timedelta(days=1)).date().isoformat()
    fx.write_text(f"currency,usd_per_unit,date\nTHB,0.028,2000-01-01\nTHB,0.030,{later}\n")
    from followmoney.normalise import load_fx, normalise_file

    typed = frame(rows).drop(S.AMOUNT_USD).with_row_index(S.SOURCE_ROW, offset=1)
    now = T0 + dt.timedelta(days=30)
    done = normalise_file(typed, "t", assume_tz=None, fx=load_fx(fx), now=now, max_amount_usd=1e9)
    assert [round(v, 6) for v in done[S.AMOUNT_USD].to_list()] == [98.0, 105.0, 105.0]
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = scan(run_cli, path, tmp_path / "o", "--fx", fx)
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and not caught, [str(w.message) for w in caught]  # --quiet: not even a warning


def summary_after(run_cli, path, out, *extra) -> dict:
    result = scan(run_cli, path, out, *extra)
    assert result.exit_code == 0, result.output
    return summary(out)


def test_map_renames_columns_and_csv_options(tmp_path: Path, run_cli) -> None:
    df = frame(base_rows()).with_columns(pl.col(S.TS).dt.strftime("%Y-%m-%d %H:%M:%S"))
    df = df.rename({S.AMOUNT_USD: "SendAmountUSD", S.TXN_ID: "Ref"})
    path = tmp_path / "t.csv"
    path.write_bytes(df.write_csv(separator=";").encode("cp1252"))
    # Naive timestamps stop the run until --assume-tz is given.
    options = ["--map", "amount_usd=SendAmountUSD", "--map", "txn_id=Ref", "--csv-delimiter", ";"]
    options += ["--encoding", "cp1252"]
    result = scan(run_cli, path, tmp_path / "o", *options)
    assert_one_line_error(result, "t.csv", "ts", "--assume-tz")
    assert not (tmp_path / "o").exists()
    s = summary_after(run_cli, path, tmp_path / "o", *options, "--assume-tz", "Asia/Bangkok")
    assert s["rows_scanned"] == 6


def test_assume_tz_converts_to_utc(tmp_path: Path) -> None:
    from followmoney.normalise import normalise_file

    raw = pl.DataFrame(
        {
            S.SOURCE_ROW: [1],
            S.TS: ["2025-03-03 16:00:00"],
            S.AMOUNT: [1.0],
            S.CURRENCY: ["USD"],
            S.TXN_ID: ["a"],
            S.SENDER_ID: ["s"],
            S.RECEIVER_ID: ["r"],
        }
    )
    out = normalise_file(
        raw, "x.csv", assume_tz="Asia/Bangkok", fx=None, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), max_amount_usd=1e8
    )
    assert out[S.TS][0] == dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


def test_offsets_are_converted_and_mixed_naive_zoned_stops(tmp_path: Path, run_cli) -> None:
    df = frame(base_rows()).with_columns(pl.col(S.TS).dt.strftime("%Y-%m-%dT%H:%M:%S+07:00"))
    path = tmp_path / "t.csv"
    df.write_csv(path)
    assert summary_after(run_cli, path, tmp_path / "o")["rows_scanned"] == 6
    mixed = df.with_columns(
        pl.when(pl.col(S.TXN_ID) == "T3").then(pl.lit("2025-03-03 10:00:00")).otherwise(pl.col(S.TS)).alias(S.TS)
    )
    mixed.write_csv(path)
    assert_one_line_error(scan(run_cli, path, tmp_path / "o2"), "t.csv", "row 4", "ts", "mixes")


def test_missing_columns_listed_at_once(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "t.parquet"
    frame(base_rows()).drop(S.AGENT_ID, S.CURRENCY).write_parquet(path)
    result = scan(run_cli, path, tmp_path / "o")
    assert_one_line_error(result, "t.parquet", "currency", "agent_id")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("suffix", [".arrow", ".parquet"])
def test_truncated_file_stops(tmp_path: Path, run_cli, suffix: str) -> None:
    path = tmp_path / f"t{suffix}"
    df = frame(base_rows() * 1)
    df.write_ipc(path) if suffix == ".arrow" else df.write_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_one_line_error(scan(run_cli, path, tmp_path / "o"), str(path), "truncated")
    assert not (tmp_path / "o").exists()


def test_naive_arrow_timestamps_stop_and_integer_timestamps_stop(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "t.arrow"
    frame(base_rows()).with_columns(pl.col(S.TS).dt.replace_time_zone(None)).write_ipc(path)
    assert_one_line_error(scan(run_cli, path, tmp_path / "o"), "t.arrow", "ts", "--assume-tz")
    frame(base_rows()).with_columns(pl.col(S.TS).dt.epoch("s")).write_ipc(path)
    assert_one_line_error(scan(run_cli, path, tmp_path / "o"), "ts", "integer timestamps")


def test_nothing_matches_and_bad_out_dir(tmp_path: Path, run_cli) -> None:
    assert_one_line_error(scan(run_cli, str(tmp_path / "*.arrow"), tmp_path / "o"), "matches no")
    assert_one_line_error(scan(run_cli, tmp_path / "nope.arrow", tmp_path / "o"), "no such file")
    path = tmp_path / "t.arrow"
    frame(base_rows()).write_ipc(path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(scan(run_cli, path, blocker), "not a directory")


def test_amounts_as_text_stop_with_row(tmp_path: Path, run_cli) -> None:
    df = frame(base_rows()).with_columns(
        pl.col(S.TS).dt.strftime("%Y-%m-%dT%H:%M:%SZ"), pl.col(S.AMOUNT).cast(pl.String)
    )
    df = df.with_columns(
        pl.when(pl.col(S.TXN_ID) == "T2").then(pl.lit("$1,200.00")).otherwise(pl.col(S.AMOUNT)).alias(S.AMOUNT)
    )
    path = tmp_path / "t.csv"
    df.write_csv(path)
    assert_one_line_error(scan(run_cli, path, tmp_path / "o"), "t.csv", "row 3", "amount", "$1,200.00")
    text = tmp_path / "t.parquet"
    df.write_parquet(text)
    assert_one_line_error(scan(run_cli, text, tmp_path / "o"), "amount", "text")


def test_key_collision_is_never_silent() -> None:
    from followmoney.errors import InputError
    from followmoney.normalise import check_key_collisions

    keys = {"sender_key": pl.Series([1, 1, 2], dtype=pl.UInt64), "receiver_key": pl.Series([5, 6, 7], dtype=pl.UInt64)}
    clash = pl.DataFrame({S.SENDER_ID: ["a", "b", "c"], S.RECEIVER_ID: ["x", "y", "z"], **keys})
    with pytest.raises(InputError, match="hash key"):
        check_key_collisions(clash)
    check_key_collisions(clash.with_columns(pl.Series("sender_key", [1, 3, 2], dtype=pl.UInt64)))
    # A partition checks the ids it owns: the clash is found where both colliding senders are owned, and is
    # another partition's to find where neither is (their transfers' primary copies live there).
    own = clash.with_columns(pl.Series("_own_s", [True, True, False]), pl.Series("_own_r", [True, True, True]))
    with pytest.raises(InputError, match="hash key"):
        check_key_collisions(own, pl.col("_own_s"), pl.col("_own_r"))
    check_key_collisions(
        own.with_columns(pl.Series("_own_s", [False, False, True])), pl.col("_own_s"), pl.col("_own_r")
    )
    # Receivers count too: a receiver id colliding with an owned sender's key.
    cross = clash.with_columns(pl.Series("receiver_key", [2, 6, 7], dtype=pl.UInt64), pl.Series("_own_r", [True] * 3))
    with pytest.raises(InputError, match="hash key"):
        check_key_collisions(
            cross.with_columns(pl.Series("sender_key", [1, 3, 2], dtype=pl.UInt64), pl.Series("_own_s", [True] * 3)),
            pl.col("_own_s"),
            pl.col("_own_r"),
        )


def test_party_details_reread_names_the_file_at_fault(tmp_path: Path) -> None:
    from followmoney.config import ReadOptions
    from followmoney.errors import InputError
    from followmoney.parties import party_directory, party_profiles
    from followmoney.read import inspect_files

    good, broken = tmp_path / "a.parquet", tmp_path / "b.parquet"
    frame(base_rows()).write_parquet(good)
    frame(base_rows("U")).write_parquet(broken)
    files = inspect_files([good, broken], ReadOptions())
    assert party_profiles(party_directory(files, ReadOptions()), pl.Series(["C1"]))["party_id"].to_list() == ["C1"]
    broken.write_bytes(broken.read_bytes()[:40] + b"\0" * 200)  # damaged after the run started
    with pytest.raises(InputError) as info:
        party_directory(files, ReadOptions())
    assert str(broken) in str(info.value) and str(good) not in str(info.value)


@pytest.mark.parametrize("fmt", ["arrow", "arrow-views", "parquet"])
def test_quarantine_rows_read_block_by_block_equal_a_filtered_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Big files give quarantined rows block by block (Arrow record batches) or by a streaming scan that
    copies them out as text (Parquet); the rows, their numbers and every column's text are those a
    filtered scan of the whole file gives."""
    import followmoney.read as read
    from followmoney.config import ReadOptions

    rows = [txn(f"T{i}", f"C{i % 7}", f"R{i % 5}", T0 + dt.timedelta(hours=i), 100.0 + i) for i in range(2500)]
    data = frame(rows).rename({"sender_id": "payer"})  # a mapped column: names come out as the contract's
    path = tmp_path / f"t.{fmt.split('-')[0]}"
    if fmt == "arrow-views":  # Polars writes text as string views (pyarrow's take has no kernel for them)
        data.write_ipc(path, record_batch_size=300)
    elif fmt == "arrow":
        import pyarrow as pa
        import pyarrow.ipc as ipc

        table = data.to_arrow()
        with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=300):  # several record batches
                writer.write_batch(batch)
    else:
        data.write_parquet(path, row_group_size=400)
    options = ReadOptions(column_map={"sender_id": "payer"})
    info = read.inspect_files([path], options)[0]
    wanted = pl.Series([1, 2, 299, 300, 301, 777, 1600, 2500, 2500])
    by_scan = read.load_rows(info, options, wanted)
    monkeypatch.setattr(read, "_SMALL_FILE_ROWS", 0)
    by_block = read.load_rows(info, options, wanted)
    assert by_block[S.SOURCE_ROW].to_list() == [1, 2, 299, 300, 301, 777, 1600, 2500]
    assert "sender_id" in by_block.columns
    assert_frame_equal(by_block, by_scan)


def _blocky_world() -> pl.DataFrame:
    """60 transfers: a structuring sender (three sends just under 10,000 USD in three days), benign traffic, and one
    row with a blank sender_id (quarantined)."""
    rows = [txn(f"T{i}", f"C{i % 7}", f"R{i % 5}", T0 + dt.timedelta(hours=i), 100.0 + i) for i in range(56)]
    rows += [txn(f"S{i}", "C9", "R9", T0 + dt.timedelta(days=i), 9_000.0 + 100 * i) for i in range(3)]
    rows.append(txn("Q1", "", "R1", T0, 50.0))
    return frame(rows)


def _write_arrow(path: Path, table, sizes: list[int], compression: str | None = None):  # type: ignore[no-untyped-def]
    """`table` as an Arrow IPC file of record batches of the given row counts."""
    import pyarrow.ipc as ipc

    options = ipc.IpcWriteOptions(compression=compression)
    with ipc.new_file(path, table.schema, options=options) as writer:
        start = 0
        for size in sizes:
            writer.write_batch(table.slice(start, size).combine_chunks().to_batches()[0])
            start += size
    return path


def _small_blocks(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Bounds lowered so a 60-row block is oversized: copies in 16-row batches, quarantined rows of files over 10
    rows re-read block by block (from the copy)."""
    from followmoney import read

    monkeypatch.setattr(read, "LARGE_BLOCK_ROWS", 40)
    monkeypatch.setattr(read, "COPY_BATCH_ROWS", 16)
    monkeypatch.setattr(read, "_SMALL_FILE_ROWS", 10)


def _assert_read_from_a_copy(oversized: Path, plain: Path, table, fmt: str) -> None:  # type: ignore[no-untyped-def]
    """`oversized` (one 60-row block) is read from an Arrow copy in 16-row batches equal to `table`, removed with the
    run's temporary files; `plain` (20-row blocks) is read as it is."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    from followmoney import read
    from followmoney.config import ReadOptions

    (info,) = read.inspect_files([oversized], ReadOptions())
    assert info.read_path != oversized and info.read_fmt == "arrow" and info.largest_block_rows == 60
    with pa.memory_map(str(info.read_path)) as source:
        copied = ipc.open_file(source).read_all()
    assert [b.num_rows for b in copied.to_batches()] == [16, 16, 16, 12]
    assert copied.equals(table)
    read.remove_temp_files()
    assert not info.read_path.exists()
    (untouched,) = read.inspect_files([plain], ReadOptions())
    assert (untouched.read_path, untouched.read_fmt, untouched.largest_block_rows) == (plain, fmt, 20)


def _assert_scanned_alike(out: Path, reference: str, names: tuple[str, ...]) -> None:
    """The scans `names` under `out` wrote the `reference` scan's alerts (a planted structuring sender among
    them) and quarantined its one row."""
    alerts = pl.read_parquet(out / reference / "alerts.parquet")
    assert "structuring" in alerts["typology"].to_list()
    quarantined = pl.read_parquet(out / reference / "quarantine.parquet").drop(S.SOURCE_FILE)
    assert quarantined.height == 1
    for name in names:
        assert_frame_equal(pl.read_parquet(out / name / "alerts.parquet"), alerts)
        assert_frame_equal(pl.read_parquet(out / name / "quarantine.parquet").drop(S.SOURCE_FILE), quarantined)


def test_an_arrow_file_with_an_oversized_batch_is_read_from_a_copy_in_small_batches(
    tmp_path: Path, run_cli, monkeypatch
) -> None:
    import pyarrow.compute as pc
    import pyarrow.ipc as ipc

    _small_blocks(monkeypatch)
    table = _blocky_world().to_arrow()
    reference = _write_arrow(tmp_path / "small.arrow", table, [20, 20, 20])
    one = _write_arrow(tmp_path / "one.arrow", table, [60])
    # Compressed, and a dictionary column whose dictionary differs between the batches (one IPC file cannot
    # carry two): the copy writes its values.
    country = table.schema.get_field_index(S.SENDER_COUNTRY)
    coded = table.set_column(country, S.SENDER_COUNTRY, pc.dictionary_encode(table[S.SENDER_COUNTRY]))
    mixed = tmp_path / "mixed.arrow"
    with ipc.new_file(mixed, coded.schema, options=ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_batch(coded.slice(0, 10).combine_chunks().to_batches()[0])
        writer.write_batch(coded.slice(10, 50).combine_chunks().to_batches()[0])
    _assert_read_from_a_copy(one, reference, table, "arrow")

    results = {p.stem: scan(run_cli, p, tmp_path / p.stem) for p in (reference, one, mixed)}
    assert all(r.exit_code == 0 for r in results.values()), [r.output for r in results.values()]
    assert results["small"].stderr.strip() == ""
    for name, rows in (("one", 60), ("mixed", 50)):
        lines = [line for line in results[name].stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"followmoney: warning: {tmp_path / name}.arrow: "), lines
        assert f"a record batch of {rows} rows; reading a copy in record batches of 16 rows" in lines[0]
        assert f" MB in {tmp_path}) so that --memory-limit holds" in lines[0]  # where its spill files would go
        (file,) = summary(tmp_path / name)["files"]
        assert (file["path"], file["largest_block_rows"]) == (str(tmp_path / f"{name}.arrow"), rows)
    assert not list(tmp_path.glob(".followmoney-copy-*"))
    _assert_scanned_alike(tmp_path, "small", ("one", "mixed"))


@pytest.mark.parametrize("failing", ["read", "write"])
def test_a_transcoded_copy_names_which_side_failed(tmp_path: Path, monkeypatch, failing: str) -> None:
    """A read error on the input is the input's (InputError naming it), a write error the copy's (a full disk:
    ResourceError naming the input and the place); either way no partial copy is left."""
    import io
    import os

    from followmoney import read
    from followmoney.errors import InputError, ResourceError

    source = tmp_path / "latin.csv"
    source.write_bytes("txn_id,name\nT1,José\n".encode("cp1252"))

    class Broken(io.StringIO):
        def read(self, size: int | None = -1) -> str:
            raise OSError(5, "Input/output error")

        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    if failing == "read":
        monkeypatch.setattr(read, "open", lambda *args, **kwargs: Broken(), raising=False)
        expected, needle = InputError, f"{source}: could not read the file ([Errno 5] Input/output error)"
    else:
        monkeypatch.setattr(read.os, "fdopen", lambda fd, *args, **kwargs: os.close(fd) or Broken())
        expected, needle = ResourceError, f"{source}: could not write a UTF-8 copy of it to {tmp_path} ("
    with pytest.raises(expected) as raised:
        read._transcode_to_utf8(source, "cp1252", tmp_path)
    assert needle in str(raised.value)
    assert not list(tmp_path.glob(".followmoney-utf8-*"))


def test_an_oversized_compressed_batch_is_checked_and_copied_a_column_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """A compressed batch decompressed whole needs all its columns' memory at once (the 50M world as one zstd batch:
    8,335 MiB of anonymous memory to check and copy); it is read a column at a time, so the memory Arrow allocates stays about
    one column's, and the copy still holds the batch's rows, in order, in small batches (and no column file is
    left beside it)."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    from followmoney import read

    monkeypatch.setattr(read, "LARGE_BLOCK_ROWS", 1_000)
    monkeypatch.setattr(read, "COPY_BATCH_ROWS", 30_000)
    rows, width = 100_000, 8
    table = pa.table(
        {f"c{j}": pa.array([f"{j}-{i:012d}-{i * 7919 % 10007}" for i in range(rows)]) for j in range(width)}
    )
    table = table.append_column("ts", pa.array(range(rows), pa.timestamp("us", "UTC")))
    one = _write_arrow(tmp_path / "one.arrow", table, [rows], compression="zstd")
    column_bytes = table["c0"].nbytes
    assert table.nbytes > 6 * column_bytes

    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    default = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        largest, copy = read._check_arrow(one, str(one), tmp_path)
    finally:
        pa.set_memory_pool(default)
    assert largest == rows and copy != one
    assert pool.max_memory() < 3 * column_bytes, (pool.max_memory(), table.nbytes)
    with pa.memory_map(str(copy)) as source:
        copied = ipc.open_file(source).read_all()
    assert [b.num_rows for b in copied.to_batches()] == [30_000, 30_000, 30_000, 10_000]
    assert copied.equals(table)
    assert sorted(p.name.rsplit(".", 1)[1] for p in tmp_path.glob(".followmoney-copy-*")) == ["arrow"]
    read.remove_temp_files()
    assert not list(tmp_path.glob(".followmoney-copy-*"))


def test_a_parquet_file_with_an_oversized_row_group_is_read_from_a_copy_in_small_batches(
    tmp_path: Path, run_cli, monkeypatch
) -> None:
    import pyarrow.parquet as pq

    _small_blocks(monkeypatch)
    table = _blocky_world().to_arrow()
    one, small = tmp_path / "one.parquet", tmp_path / "small.parquet"
    pq.write_table(table, one, row_group_size=60)
    pq.write_table(table, small, row_group_size=20)
    _assert_read_from_a_copy(one, small, table, "parquet")

    warned, quiet = scan(run_cli, one, tmp_path / "one"), scan(run_cli, small, tmp_path / "small")
    assert warned.exit_code == 0 and quiet.exit_code == 0, warned.output + quiet.output
    lines = [line for line in warned.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"followmoney: warning: {one}: a row group of 60 rows; "), lines
    assert "reading a copy in record batches of 16 rows" in lines[0] and f" MB in {tmp_path})" in lines[0]
    assert quiet.stderr.strip() == ""
    assert [(f["largest_block_rows"], f["rows_scanned"]) for f in summary(tmp_path / "one")["files"]] == [(60, 59)]
    assert [(f["largest_block_rows"], f["rows_scanned"]) for f in summary(tmp_path / "small")["files"]] == [(20, 59)]
    _assert_scanned_alike(tmp_path, "small", ("one",))


@pytest.mark.parametrize("kind", ["arrow", "csv"])
def test_a_copy_that_cannot_be_written_stops_with_one_line_naming_the_input_and_the_place(
    tmp_path: Path, run_cli, monkeypatch, kind: str
) -> None:
    """A copy of an input (an Arrow file in oversized batches; a CSV in another encoding, transcoded to UTF-8) goes
    where the spill files go; when nothing can be written there the scan stops with one line naming both."""
    from followmoney import read

    monkeypatch.setattr(read, "LARGE_BLOCK_ROWS", 40)
    if kind == "arrow":
        source = _write_arrow(tmp_path / "one.arrow", _blocky_world().to_arrow(), [60])
        extra: tuple[str, ...] = ()
        what = "could not write a copy of it in small record batches"
    else:
        source = tmp_path / "latin.csv"
        source.write_bytes(_blocky_world().with_columns(pl.col(S.TS).dt.to_string()).write_csv().encode("cp1252"))
        extra, what = ("--encoding", "cp1252"), "could not write a UTF-8 copy of it"
    blocked = tmp_path / "a-file" / "spill"  # a directory under a file: nothing can be written there
    (tmp_path / "a-file").write_text("")
    result = scan(run_cli, source, tmp_path / "out", "--spill-dir", blocked, *extra)
    assert_one_line_error(result, str(source), what, str(blocked))
    assert not (tmp_path / "out").exists()
