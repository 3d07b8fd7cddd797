"""Partition-then-detect: a scan spilled into many party partitions under a tiny --memory-limit gives
exactly the alerts, quarantine and counts of the same scan in memory, and leaves no spill files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import T0, frame, random_transfers, scan_world, small_lists, txn, whole_scan_settings
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

import followmoney.partition as partition
import followmoney.pipeline as pipeline
import followmoney.spillfiles as spillfiles
from followmoney.cli import app
from followmoney.normalise import PARTY_KEY_SEED
from followmoney.rowsets import own_buffers
from followmoney.spillfiles import SpillWriters

ROWS = 30_000
SEED = 11


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from followmoney.synth import generate_world

    path = tmp_path_factory.mktemp("world")
    generate_world(ROWS, SEED, path)
    return path


def _scan(world: Path, inputs: str, out: Path, *extra: str) -> dict:
    return scan_world(world, inputs, out, *extra)


def _same_outputs(a: Path, b: Path) -> None:
    for name in ("alerts.parquet", "cases.parquet", "quarantine.parquet"):
        assert_frame_equal(pl.read_parquet(a / name), pl.read_parquet(b / name), check_exact=True)
    assert (a / "alerts.csv").read_bytes() == (b / "alerts.csv").read_bytes()


def test_partitioned_scan_equals_in_memory_scan(world: Path, tmp_path: Path) -> None:
    inputs = str(world / "transactions.arrow")
    whole = _scan(world, inputs, tmp_path / "whole")
    parts = _scan(world, inputs, tmp_path / "parts", "--memory-limit", "4MB", "--spill-compression", "none")
    assert whole["memory"]["mode"] == "in_memory" and whole["memory"]["partitions"] == 1
    assert whole["memory"]["spill_compression"] is None
    assert parts["memory"]["mode"] == "out_of_core" and parts["memory"]["partitions"] >= 8
    assert parts["memory"]["spill_compression"] == "none"
    assert parts["memory"]["spill_bytes"] > 0
    _same_outputs(tmp_path / "whole", tmp_path / "parts")
    for key in ("rows_read", "rows_scanned", "rows_quarantined", "quarantine_reasons", "candidates_per_rule"):
        assert parts[key] == whole[key], key
    assert whole["alerts"] > 20
    # Every kind of rule found something, so each kind's ownership across partitions was exercised.
    assert set(whole["candidates_per_rule"]) >= {"FM101", "FM120", "FM121", "FM130", "FM131", "FM140", "FM190"}
    assert not list((tmp_path / "parts").glob(".followmoney-spill-*")), "spill files left behind"


def test_a_csv_dump_is_spilled_slice_by_slice_and_scans_like_in_memory(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CSV dump partitioned under a tiny limit is parsed in batches of the pass's slice size, never whole, and
    gives the in-memory scan's alerts, cases, quarantine and counts."""
    rows = pl.read_ipc(world / "transactions.arrow")
    text = rows.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z"))
    (tmp_path / "in").mkdir()
    text.write_csv(tmp_path / "in" / "t.csv")
    inputs = str(tmp_path / "in" / "t.csv")
    whole = _scan(world, inputs, tmp_path / "whole")
    heights: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Iterator[pl.DataFrame]:
        for chunk in read_chunks(*args, **kwargs):
            heights.append(chunk.height)
            yield chunk

    read_chunks = partition.load_chunks
    monkeypatch.setattr(partition, "load_chunks", counted)
    parts = _scan(world, inputs, tmp_path / "parts", "--memory-limit", "4MB")
    assert parts["memory"]["mode"] == "out_of_core" and whole["memory"]["mode"] == "in_memory"
    assert len(heights) >= 3 and sum(heights) == ROWS and max(heights) <= ROWS // 3  # slices of 10,000 rows
    _same_outputs(tmp_path / "whole", tmp_path / "parts")
    for key in ("rows_read", "rows_scanned", "rows_quarantined", "quarantine_reasons", "candidates_per_rule"):
        assert parts[key] == whole[key], key


def _two_files_with_duplicates(world: Path, folder: Path) -> str:
    """The world's rows as two Parquet files, the second repeating 50 txn_ids of the first; their glob."""
    rows = pl.read_ipc(world / "transactions.arrow")
    first, second = rows.slice(0, ROWS // 2), rows.slice(ROWS // 2)
    repeated = first.slice(100, 50).with_columns(pl.col("amount").mul(2))
    folder.mkdir()
    first.write_parquet(folder / "a.parquet")
    pl.concat([second, repeated]).write_parquet(folder / "b.parquet")
    return str(folder / "*.parquet")


def test_partitioned_scan_over_several_files_with_duplicates(world: Path, tmp_path: Path) -> None:
    """Two Parquet files read in slices; the second repeats 50 txn_ids of the first (duplicates across
    files, found only after the streaming pass) and carries the planted bad rows."""
    inputs = _two_files_with_duplicates(world, tmp_path / "in")
    whole = _scan(world, inputs, tmp_path / "whole")
    parts = _scan(
        world,
        inputs,
        tmp_path / "parts",
        "--memory-limit",
        "3MB",
        "--spill-dir",
        str(tmp_path),
        "--spill-compression",
        "zstd",
    )
    assert parts["memory"]["mode"] == "out_of_core" and parts["memory"]["spill_compression"] == "zstd"
    assert whole["quarantine_reasons"].get("duplicate txn_id", 0) >= 50
    assert parts["quarantine_reasons"] == whole["quarantine_reasons"]
    assert [f["rows_scanned"] for f in parts["files"]] == [f["rows_scanned"] for f in whole["files"]]
    _same_outputs(tmp_path / "whole", tmp_path / "parts")
    assert not list(tmp_path.glob(".followmoney-spill-*")), "spill files left behind"


def test_queries_over_every_spilled_row_scan_a_few_files_at_a_time(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The duplicate check, the graph walk and the anomaly evidence read every spilled row; they do it in parts
    of whole partitions (Polars holds memory for each file a query scans; a 200M-row scan once spilled 73k files),
    and find exactly what the in-memory scan finds."""
    inputs = _two_files_with_duplicates(world, tmp_path / "in")
    whole = _scan(world, inputs, tmp_path / "whole")
    scanned: list[list[str]] = []
    scan_ipc = pl.scan_ipc

    def spy(source, *args, **kwargs):  # type: ignore[no-untyped-def]
        scanned.append([str(p) for p in source] if isinstance(source, list) else [str(source)])
        return scan_ipc(source, *args, **kwargs)

    monkeypatch.setattr(partition, "SCAN_FILES", 3)
    monkeypatch.setattr(partition.pl, "scan_ipc", spy)
    parts = _scan(world, inputs, tmp_path / "parts", "--memory-limit", "3MB", "--spill-dir", str(tmp_path))
    monkeypatch.undo()
    assert parts["memory"]["mode"] == "out_of_core" and parts["memory"]["partitions"] >= 8
    _same_outputs(tmp_path / "whole", tmp_path / "parts")
    assert parts["quarantine_reasons"] == whole["quarantine_reasons"]
    assert whole["candidates_per_rule"].get("FM190", 0) > 0  # the anomaly evidence was read
    spilled = {path for paths in scanned for path in paths if ".followmoney-spill-" in path}
    assert len(spilled) > 20 and max(len(paths) for paths in scanned) < len(spilled) / 2


def _spill_files_written(monkeypatch: pytest.MonkeyPatch) -> tuple[list[list[Path]], list[int]]:
    """Spy on the spill pass: (each partition's files when the pass closed them, slices written)."""
    files: list[list[Path]] = []
    slices = [0]
    close, end_slice = SpillWriters.close, SpillWriters.end_slice

    def closing(self: SpillWriters) -> None:
        close(self)
        files[:] = [list(paths) for paths in self.files]

    def ending(self: SpillWriters) -> None:
        slices[0] += 1
        end_slice(self)

    monkeypatch.setattr(SpillWriters, "close", closing)
    monkeypatch.setattr(SpillWriters, "end_slice", ending)
    return files, slices


def test_a_spilled_scan_writes_one_file_per_partition_not_per_slice(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each partition's copies go to one Arrow file kept open across the pass's slices (a 200M-row scan used to
    write partitions x slices = 73k files); where the open-file limit is too low for that, each slice writes
    files of its own. Both give the in-memory scan's outputs."""
    inputs = str(world / "transactions.arrow")
    whole = _scan(world, inputs, tmp_path / "whole")
    files, slices = _spill_files_written(monkeypatch)
    parts = _scan(world, inputs, tmp_path / "parts", "--memory-limit", "3MB", "--spill-dir", str(tmp_path))
    n_parts = parts["memory"]["partitions"]
    assert parts["memory"]["mode"] == "out_of_core" and n_parts >= 8 and slices[0] >= 3
    assert [len(paths) for paths in files] == [1] * n_parts
    _same_outputs(tmp_path / "whole", tmp_path / "parts")

    monkeypatch.setattr(spillfiles, "open_file_room", lambda wanted: 20)  # fewer than a file per partition
    slices[0] = 0
    few = _scan(world, inputs, tmp_path / "few", "--memory-limit", "3MB", "--spill-dir", str(tmp_path))
    assert few["memory"]["partitions"] == n_parts
    assert sum(len(paths) for paths in files) > n_parts and max(len(paths) for paths in files) == slices[0]
    _same_outputs(tmp_path / "whole", tmp_path / "few")
    assert parts["quarantine_reasons"] == few["quarantine_reasons"] == whole["quarantine_reasons"]
    assert not list(tmp_path.glob(".followmoney-spill-*")), "spill files left behind"


def test_spill_files_start_anew_when_the_columns_change(tmp_path: Path) -> None:
    """A partition whose next slice has other columns (a second input without phones) starts a new file: an
    Arrow file holds one schema. Its rows read back whole, in order."""
    writers = SpillWriters(tmp_path, 2, "zstd")
    with_phone = pl.DataFrame({"a": [1, 2], "phone": ["+1", None]}).to_arrow()
    without = pl.DataFrame({"a": [3]}).to_arrow()
    writers.append(0, with_phone)
    writers.append(1, with_phone.slice(1))
    writers.end_slice()
    writers.append(0, with_phone.slice(0, 1))
    writers.append(0, without)
    writers.end_slice()
    writers.close()
    assert [len(paths) for paths in writers.files] == [2, 1]
    first = pl.read_ipc(writers.files[0][0])
    assert first.to_dict(as_series=False) == {"a": [1, 2, 1], "phone": ["+1", None, "+1"]}
    assert pl.read_ipc(writers.files[0][1])["a"].to_list() == [3]
    assert pl.read_ipc(writers.files[1][0])["a"].to_list() == [2]


def test_a_spilled_scan_whose_every_row_is_quarantined_reports_them_all(tmp_path: Path) -> None:
    """Every row quarantined (negative amounts) and txn_ids repeated: the duplicate check reads every spilled
    row, of which there is none. The partitioned scan used to stop with an internal error (exit 1)."""
    rows = [
        txn(f"T{i % 1500}", f"C{i}", f"C{i + 1}", dt.datetime(2025, 1, 1, tzinfo=dt.UTC), -5.0) for i in range(3000)
    ]
    data = tmp_path / "bad.parquet"
    frame(rows).write_parquet(data)
    runner = CliRunner()
    outputs = {}
    for name, extra in (("whole", []), ("parts", ["--memory-limit", "1MB"])):
        out = tmp_path / name
        result = runner.invoke(app, ["scan", str(data), "--out", str(out), "--quiet", *extra])
        assert result.exit_code == 0, result.output
        outputs[name] = json.loads((out / "summary.json").read_text())
    assert outputs["parts"]["memory"]["mode"] == "out_of_core"
    assert outputs["parts"]["rows_quarantined"] == outputs["whole"]["rows_quarantined"] == 3000
    assert outputs["parts"]["quarantine_reasons"] == outputs["whole"]["quarantine_reasons"]
    assert outputs["whole"]["quarantine_reasons"]["duplicate txn_id"] == 1500
    _same_outputs(tmp_path / "whole", tmp_path / "parts")


def test_receivers_counted_while_spilling_are_their_clean_transfers(world: Path, tmp_path: Path) -> None:
    """The spilling pass's receiver counts (what lets the anomaly model score pairs while detecting) are
    receiver_n as the features count it over every clean transfer: duplicates found after the pass are
    taken off, quarantined rows never counted."""
    from followmoney.config import ScanConfig
    from followmoney.features import receiver_features
    from followmoney.memory import parse_size, plan_memory
    from followmoney.normalise import RECEIVER_KEY
    from followmoney.pipeline import load_transfers, now_utc, transfer_columns
    from followmoney.read import inspect_files, resolve_inputs
    from followmoney.rules import load_rules

    inputs = _two_files_with_duplicates(world, tmp_path / "in")
    config = ScanConfig(inputs=inputs, out_dir=tmp_path / "out", now=now_utc(), memory_limit=parse_size("3MB"))
    rules = load_rules(config.rules_dir)
    files = inspect_files(resolve_inputs(inputs), config.read)
    plan = plan_memory(files, transfer_columns(rules), out_of_core_available=True, limit=config.memory_limit)
    assert plan.mode == "out_of_core"
    transfers = load_transfers(files, config, None, rules, plan, lambda _: None, count_receivers=True)
    try:
        assert transfers.duplicates is not None and transfers.duplicates.len() >= 50  # 3 planted in the world
        assert transfers.receiver_counts is not None
        expected = receiver_features(transfers.every_row(), ("receiver_n",)).collect()
        assert expected["receiver_n"].sum() == transfers.rows
        assert_frame_equal(transfers.receiver_counts.sort(RECEIVER_KEY), expected.sort(RECEIVER_KEY), check_exact=True)
    finally:
        transfers.close()


def test_a_model_reading_more_receiver_features_scores_in_its_own_pass(world: Path, tmp_path: Path) -> None:
    """A model that reads receiver features besides receiver_n cannot score pairs while detecting: its
    receivers' features are gathered there and pairs scored in a pass of their own, with the in-memory
    scan's results all the same."""
    from followmoney.config import ReadOptions, ScanConfig
    from followmoney.detectors.anomaly import anomaly_models, receivers_countable
    from followmoney.models import TrainParams, save, train
    from followmoney.pipeline import load_transactions
    from followmoney.read import inspect_files, resolve_inputs
    from followmoney.rules import load_rules

    inputs = str(world / "transactions.arrow")
    config = ScanConfig(inputs=inputs, out_dir=tmp_path)
    clean, _ = load_transactions(inspect_files(resolve_inputs(inputs), ReadOptions()), config, None, lambda _: None)
    arrays, manifest = train(clean, TrainParams(n_trees=30, features="all"), inputs=[])
    assert "receiver_senders" in [f["name"] for f in manifest["features"]]
    path, _ = save(tmp_path / "models", "every", arrays, manifest)
    rules = load_rules(config.rules_dir)
    assert receivers_countable(anomaly_models(rules, None))  # the shipped model: scored while detecting
    assert not receivers_countable(anomaly_models(rules, str(path)))  # this one: a pass of its own
    whole = _scan(world, inputs, tmp_path / "whole", "--model", str(path))
    parts = _scan(world, inputs, tmp_path / "parts", "--model", str(path), "--memory-limit", "4MB")
    assert parts["memory"]["mode"] == "out_of_core"
    assert whole["models"][0]["name"] == "every"
    assert parts["candidates_per_rule"] == whole["candidates_per_rule"]
    _same_outputs(tmp_path / "whole", tmp_path / "parts")


def test_a_scan_without_phone_rules_leaves_the_phone_out_and_finds_the_same(world: Path, tmp_path: Path) -> None:
    """Only a rule grouping by the sender's phone (FM130) needs it: a scan of FM101 and FM120 neither loads
    nor spills it, and finds what the full scan finds for those rules, in memory and partitioned."""
    from followmoney import schema as S
    from followmoney.config import DEFAULT_RULES_DIR
    from followmoney.pipeline import transfer_columns
    from followmoney.rules import load_rules

    assert S.SENDER_PHONE in transfer_columns(load_rules(DEFAULT_RULES_DIR))
    assert S.SENDER_PHONE in transfer_columns(load_rules(DEFAULT_RULES_DIR, select=("FM130",)))
    assert S.SENDER_PHONE not in transfer_columns(load_rules(DEFAULT_RULES_DIR, select=("FM101", "FM120")))
    inputs = str(world / "transactions.arrow")
    full = _scan(world, inputs, tmp_path / "full")
    two = _scan(world, inputs, tmp_path / "two", "--select", "FM101,FM120")
    parts = _scan(world, inputs, tmp_path / "parts", "--select", "FM101,FM120", "--memory-limit", "4MB")
    assert parts["memory"]["mode"] == "out_of_core"
    _same_outputs(tmp_path / "two", tmp_path / "parts")
    for code in ("FM101", "FM120"):
        assert two["candidates_per_rule"][code] == full["candidates_per_rule"][code] > 0, code
    assert two["quarantine_reasons"] == full["quarantine_reasons"]


def test_memory_limit_must_be_a_size(world: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["scan", str(world / "transactions.arrow"), "--out", str(tmp_path / "o"), "--memory-limit", "lots"]
    )
    assert result.exit_code == 2
    assert "--memory-limit" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_spill_compression_is_chosen_by_the_room_for_the_spill() -> None:
    """auto writes uncompressed spill files only when the disk has twice their estimated size free and the
    page cache can hold them; an explicit choice is taken as given; anything else is refused."""
    from followmoney.partition import spill_codec, spill_estimate

    estimate = spill_estimate(1_000_000)
    assert estimate >= 2_000_000  # every row in its sender's and receiver's partition at least
    assert spill_codec("auto", estimate, 2 * estimate, estimate) == "none"
    assert spill_codec("auto", estimate, 2 * estimate - 1, estimate) == "zstd"
    assert spill_codec("auto", estimate, 10**15, estimate - 1) == "zstd"
    assert spill_codec("zstd", estimate, 10**15, 10**15) == "zstd"
    assert spill_codec("none", estimate, 0, 0) == "none"
    with pytest.raises(ValueError, match="lz4"):
        spill_codec("lz4", estimate, 10**15, 10**15)


def test_a_short_spill_disk_gets_compressed_spill_files(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With little room on the spill disk, auto compresses: the spill is much smaller than uncompressed and
    the outputs are the same."""
    import shutil

    from followmoney import partition

    inputs = str(world / "transactions.arrow")
    roomy = _scan(world, inputs, tmp_path / "roomy", "--memory-limit", "4MB")
    assert roomy["memory"]["spill_compression"] == "none"
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(partition.shutil, "disk_usage", lambda _: usage._replace(free=1 << 20))
    short = _scan(world, inputs, tmp_path / "short", "--memory-limit", "4MB")
    assert short["memory"]["spill_compression"] == "zstd"
    assert short["memory"]["spill_bytes"] < 0.6 * roomy["memory"]["spill_bytes"]
    _same_outputs(tmp_path / "roomy", tmp_path / "short")


def test_spill_compression_must_be_known(world: Path, tmp_path: Path) -> None:
    args = ["scan", str(world / "transactions.arrow"), "--out", str(tmp_path / "o"), "--spill-compression", "lz4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "--spill-compression" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_party_directory_in_slices_answers_like_one_piece(world: Path, tmp_path: Path) -> None:
    """The party directory built in hash slices on disk (a dump too big for one) gives the same
    profiles, phone sharers and name frequencies as the directory built in one piece."""
    from followmoney.config import ReadOptions
    from followmoney.parties import (
        directory_rows,
        directory_slices,
        name_frequencies,
        party_directory,
        party_profiles,
        phone_sharers,
    )
    from followmoney.read import inspect_files

    files = inspect_files([world / "transactions.arrow"], ReadOptions())
    whole = party_directory(files, ReadOptions())
    sliced = party_directory(files, ReadOptions(), slices=4, spill_dir=tmp_path)
    assert len(list(tmp_path.glob("directory-*.parquet"))) == 4
    ids = pl.read_ipc(world / "transactions.arrow")["receiver_id"].unique().sort().head(3000)
    profiles = party_profiles(whole, ids)
    assert profiles.height > 2000
    assert_frame_equal(party_profiles(sliced, ids), profiles)
    phones = profiles["phones"].explode().drop_nulls()
    assert phones.len() > 100
    assert phone_sharers(sliced, phones).to_list() == phone_sharers(whole, phones).to_list()
    assert_frame_equal(
        name_frequencies(sliced, profiles).sort("approx_key"), name_frequencies(whole, profiles).sort("approx_key")
    )
    assert directory_slices(ROWS, 10**12) == 1 and directory_slices(50_000_000, 8 * 2**30) == 2
    # Looked up by id (a join since Polars 2.2.0 slowed the filter): the rows of those ids, in the directory's
    # order, whatever repeats or unknown ids the request holds.
    asked = pl.concat([ids.head(500), ids.head(100), pl.Series(["no such id"])])
    for directory in (whole, sliced):
        expected = directory.rows.collect().filter(pl.col("party_id").is_in(ids.head(500).implode()))
        assert expected.height > 500
        assert_frame_equal(directory_rows(directory, asked), expected)


def test_directory_passes_after_the_first_are_sized_from_its_memory(world: Path, tmp_path: Path) -> None:
    """The first pass of a directory in passes takes 1/slices of the parties; the later ones take what the
    first one's measured memory says fits in the budget (fewer passes over the input), never more than
    planned; the directory is the same however it was cut."""
    from followmoney.config import ReadOptions
    from followmoney.parties import DIRECTORY_BUCKETS, party_directory
    from followmoney.read import inspect_files
    from followmoney.resident import resident

    files = inspect_files([world / "transactions.arrow"], ReadOptions())
    keys = ["party_id", "name", "country", "phone"]
    whole = party_directory(files, ReadOptions()).rows.collect().sort(keys, nulls_last=True)
    (tmp_path / "roomy").mkdir()
    (tmp_path / "tight").mkdir()
    roomy = party_directory(files, ReadOptions(), slices=4, spill_dir=tmp_path / "roomy", memory_bytes=10**13)
    tight = party_directory(files, ReadOptions(), slices=4, spill_dir=tmp_path / "tight", memory_bytes=1)
    assert tight.passes == 4 and len(list((tmp_path / "tight").glob("directory-*.parquet"))) == 4
    if resident() is not None:  # Linux: memory is measured, the rest fits in one more pass
        assert roomy.passes == 2
        first = pl.read_parquet(tmp_path / "roomy" / "directory-0000.parquet")
        assert 0 < first.height < whole.height / 2  # a quarter of the parties, give or take
        assert (first["party_id"].hash(PARTY_KEY_SEED) % DIRECTORY_BUCKETS < DIRECTORY_BUCKETS // 4).all()
    for built in (roomy, tight):
        assert_frame_equal(built.rows.collect().sort(keys, nulls_last=True), whole)


def test_directory_pass_sizes_follow_the_measured_growth() -> None:
    """PassSizer: planned widths until a pass is measured; then anonymous growth per bucket scales with the
    width and other growth (file pages) does not; never below planned."""
    from followmoney.parties import DIRECTORY_BUCKETS, DIRECTORY_BYTES_PER_DISTINCT_ROW, PassSizer
    from followmoney.resident import PeakSampler, Resident

    mib = 2**20
    sizer = PassSizer(planned=100, budget=4000 * mib)
    now = Resident(anon=1000 * mib, file=0)
    assert sizer.width(now) == 100
    peak = PeakSampler()
    # The allocator still returning 2 GiB of a previous step as the pass begins, then the pass's own rise:
    # +500 MiB anonymous memory (it grows with the buckets) and +300 MiB of file pages (they do not).
    for anon, file in ((3000, 0), (1000, 0), (1200, 100), (1500, 300), (1100, 0)):
        peak.observe(Resident(anon=anon * mib, file=file * mib))
    assert (peak.anon_rise, peak.total_rise) == (500 * mib, 800 * mib)
    sizer.record(100, peak, rows=1000)  # 1000 rows: at least 300 kB, below the measured rise
    # room = 4000 - 1000 (held now) - 300 (file pages) = 2700 MiB at 5 MiB a bucket
    assert sizer.width(now) == 540
    assert sizer.width(Resident(anon=3900 * mib, file=0)) == 100  # no room: as planned, never fewer
    assert sizer.width(None) == 100  # memory not readable: as planned
    quiet = PeakSampler()
    for anon in (3000, 1000, 1000):  # a pass that held nothing more: the rest in one pass
        quiet.observe(Resident(anon=anon * mib, file=0))
    flat = PassSizer(planned=100, budget=4000 * mib)
    flat.record(100, quiet, rows=0)
    assert flat.width(now) == DIRECTORY_BUCKETS
    assert flat.width(Resident(anon=4000 * mib, file=0)) == 100  # but not when nothing more fits
    hidden = PassSizer(planned=100, budget=4000 * mib)
    hidden.record(100, quiet, rows=100_000)  # no rise seen, yet 100k rows found: at least 300 bytes each
    assert hidden.width(now) == int(3000 * mib // (100_000 * DIRECTORY_BYTES_PER_DISTINCT_ROW / 100))
    assert PassSizer(planned=100).width(now) == 100  # no budget: as planned


def _text_held(frame: pl.DataFrame) -> dict[str, int]:
    """Bytes of the buffers each text column (or list of texts) points into: a filtered or gathered text column's
    views keep their source's whole text."""
    text = [name for name, dtype in frame.schema.items() if dtype in (pl.String, pl.List(pl.String))]
    table = frame.select(text).to_arrow(compat_level=pl.CompatLevel.newest())
    return {
        name: sum(b.size for chunk in table[name].chunks for b in chunk.buffers() if b is not None) for name in text
    }


def _holds_own_text(frame: pl.DataFrame) -> bool:
    """No text column holds much more than a copy of its values would (3.5-6x here when partitions leak)."""
    held, own = _text_held(frame), _text_held(own_buffers(frame))
    return bool(held) and all(held[name] <= 1.5 * own[name] + 4096 for name in held)


def test_candidates_keep_no_partition_text_alive(world: Path, tmp_path: Path) -> None:
    """Detected out of core, the candidates and the anomaly model's kept pair scores hold text of their own, not
    views into each partition's text (at 200M rows those views kept 5 GB of partitions resident). Party ids are
    made longer than 12 bytes, as real ones often are: shorter texts sit inside their views."""
    from followmoney.config import ReadOptions, ScanConfig
    from followmoney.detectors.anomaly import score_pairs
    from followmoney.memory import plan_memory
    from followmoney.models import load as load_model
    from followmoney.read import inspect_files
    from followmoney.rules import load_rules

    path = tmp_path / "long-ids.arrow"
    pl.read_ipc(world / "transactions.arrow").with_columns(
        ("customer-account-" + pl.col(side)).alias(side) for side in ("sender_id", "receiver_id")
    ).write_ipc(path)
    config = ScanConfig(inputs=str(path), out_dir=tmp_path / "out", now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    rules = [r for r in load_rules(config.rules_dir) if r.kind != "anomaly"]
    files = inspect_files([path], ReadOptions())
    plan = plan_memory(files, pipeline.transfer_columns(rules), out_of_core_available=True, limit=4_000_000)
    transfers = pipeline.load_transfers(files, config, None, rules, plan, lambda _: None)
    try:
        assert transfers.n_parts >= 8
        found = pipeline.detect(transfers, rules, lambda _: None)
        assert found.height > 50
        assert _holds_own_text(found)
        scored = score_pairs(transfers, load_model("iforest"), 0.9)  # pairs in the top tenth
        for kept in (scored.hits, scored.payer_percentiles):
            assert kept.height > 0
            assert _holds_own_text(kept)
    finally:
        transfers.close()


def test_a_full_spill_disk_is_a_one_line_error_and_leaves_nothing(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def full(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spillfiles.ipc, "new_file", full)
    spill = tmp_path / "spill"
    spill.mkdir()
    args = ["scan", str(world / "transactions.arrow"), "--out", str(tmp_path / "o"), "--memory-limit", "4MB"]
    result = CliRunner().invoke(app, [*args, "--spill-dir", str(spill), "--quiet"])
    assert result.exit_code == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "could not write spill files" in result.stderr and "No space left" in result.stderr
    assert "--spill-dir" in result.stderr and str(spill) in result.stderr
    assert not list(spill.iterdir()), "spill files left behind"
    assert not (tmp_path / "o").exists()


def test_a_full_disk_under_the_party_directory_is_a_one_line_error(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def full(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)  # the directory's slices are its only Parquet writes
    spill = tmp_path / "spill"
    spill.mkdir()
    args = ["scan", str(world / "transactions.arrow"), "--out", str(tmp_path / "o"), "--memory-limit", "4MB"]
    result = CliRunner().invoke(app, [*args, "--officials", str(world / "officials.csv"), "--spill-dir", str(spill)])
    assert result.exit_code == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "could not write the party directory" in result.stderr and "No space left" in result.stderr
    assert not list(spill.iterdir()), "temporary files left behind"
    assert not (tmp_path / "o").exists()


@whole_scan_settings(15)
@given(
    data=st.data(),
    n=st.integers(1, 150),
    parties=st.integers(1, 10),
    partitions=st.integers(2, 7),
    chunk_rows=st.integers(1, 60),
    slices=st.integers(1, 3),
)
def test_random_transfers_partitioned_equal_in_memory(
    tmp_path: Path, data: st.DataObject, n: int, parties: int, partitions: int, chunk_rows: int, slices: int
) -> None:
    """Random transfers among a few parties (repeats, self-transfers, shared phones, amounts around every
    threshold) spilled into 2-7 partitions in slices of 1-60 rows, the party directory in 1-3 slices: exactly
    the in-memory scan's alerts, cases and quarantine. Small partitions and slices put a party's transfers,
    a pair's and a phone's in many files, where ownership mistakes would show."""
    work = Path(tempfile.mkdtemp(dir=tmp_path))  # Hypothesis examples share tmp_path
    path = work / "t.parquet"
    frame(random_transfers(data, n, parties, bad=True)).write_parquet(path)
    lists = small_lists(work)

    def run(out: Path) -> dict:
        args = ["scan", str(path), *lists, "--out", str(out), "--quiet"]
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads((out / "summary.json").read_text())

    whole = run(work / "whole")
    real_plan = pipeline.plan_memory

    def forced(*args: Any, **kwargs: Any) -> Any:
        plan = real_plan(*args, **kwargs)
        return dataclasses.replace(plan, mode="out_of_core", partitions=partitions, chunk_rows=chunk_rows)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "plan_memory", forced)
        patch.setattr(pipeline, "directory_slices", lambda *_: slices)
        parts = run(work / "parts")
    assert parts["memory"]["mode"] == "out_of_core" and parts["memory"]["partitions"] == partitions
    for name in ("alerts.parquet", "cases.parquet"):
        assert_frame_equal(pl.read_parquet(work / "whole" / name), pl.read_parquet(work / "parts" / name))
    if whole["rows_quarantined"]:
        a, b = (pl.read_parquet(work / d / "quarantine.parquet") for d in ("whole", "parts"))
        assert_frame_equal(a, b)
    for key in ("rows_read", "rows_scanned", "rows_quarantined", "candidates_per_rule"):
        assert parts[key] == whole[key], key


# One number (+971 50 123 4567) written by three sender ids: in ASCII, and in Arabic-Indic digits
# internationally and locally (texts the partitioner reads by expression, not as numbers).
SHARED_PHONES = (
    "+971 50 123 4567",
    "+\u0669\u0667\u0661 \u0665\u0660 \u0661\u0662\u0663 \u0664\u0665\u0666\u0667",
    "\u0660\u0665\u0660 \u0661\u0662\u0663 \u0664\u0665\u0666\u0667",
)
LONE_PHONE = "+971 55 999 8888"  # one sender id's phone, however often used


def _phone_world(work: Path) -> Path:
    """Three ids sending from one phone within days (a shared-phone pattern, FM130), one id sending from its
    own phone to six receivers, and other traffic with phones of one id each."""
    rows = [
        txn(f"S{i}{k}", f"SID{i}", f"R{i}{k}", T0 + dt.timedelta(days=2 * i + k), 180.0 + k, sender_phone=phone)
        for i, phone in enumerate(SHARED_PHONES)
        for k in range(2)
    ]
    rows += [
        txn(f"L{k}", "LONE", f"LR{k}", T0 + dt.timedelta(days=k), 150.0, sender_phone=LONE_PHONE) for k in range(6)
    ]
    rows += [
        txn(
            f"B{k}",
            f"B{k % 9}",
            f"B{(k * 5 + 1) % 11}",
            T0 + dt.timedelta(hours=7 * k),
            40.0 + k,
            sender_phone=f"+6681{k % 9:07d}",
        )
        for k in range(60)
    ]
    path = work / "t.parquet"
    frame(rows).write_parquet(path)
    return path


def test_a_partitioned_scan_copies_only_shared_phones_sends_to_the_phone_partition(tmp_path: Path) -> None:
    """A phone rule counting sender ids (FM130) needs only the sends of phones several ids use: a partitioned
    scan with an officials list (its party directory, built before spilling, says which phones those are)
    copies no other send to a phone's partition, reads the phones written in other scripts and formats as
    the same number, and finds exactly the in-memory scan's candidates, the shared phone's among them."""
    from followmoney.partition import PHONE_PART, part_of
    from followmoney.phones import PHONE_MIX

    path = _phone_world(tmp_path)
    lists = small_lists(tmp_path)

    def run(out: Path, partitions: int | None = None) -> tuple[dict[str, Any], list[str]]:
        copied: list[str] = []  # the sender phone of every copy sent to a phone's partition
        real_plan, real_assign = pipeline.plan_memory, partition._assignments

        def forced(*args: Any, **kwargs: Any) -> Any:
            return dataclasses.replace(real_plan(*args, **kwargs), mode="out_of_core", partitions=partitions)

        def spy(clean: pl.DataFrame, *args: Any) -> pl.DataFrame:
            copies = real_assign(clean, *args)
            rows = copies.filter(pl.col(PHONE_PART).is_not_null() & ~pl.col(partition.PRIMARY))["_i"]
            copied.extend(clean["sender_phone"].gather(rows).to_list())
            return copies

        with pytest.MonkeyPatch.context() as patch:
            if partitions is not None:
                patch.setattr(pipeline, "plan_memory", forced)
            patch.setattr(partition, "_assignments", spy)
            args = ["scan", str(path), *lists, "--out", str(out), "--select", "FM130,FM120", "--quiet"]
            result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads((out / "summary.json").read_text()), copied

    whole, _ = run(tmp_path / "whole")
    assert whole["candidates_per_rule"]["FM130"] == 1
    first = pl.DataFrame({"id": ["SID0"]}).select(pl.col("id").hash(PARTY_KEY_SEED))["id"]
    apart = 0  # partition counts where the ASCII writer's sends must be copied to meet the others
    for partitions in (3, 5, 7):
        parts, copied = run(tmp_path / f"parts{partitions}", partitions)
        assert parts["memory"]["mode"] == "out_of_core" and parts["memory"]["partitions"] == partitions
        assert parts["candidates_per_rule"] == whole["candidates_per_rule"]
        for name in ("alerts.parquet", "cases.parquet"):
            assert_frame_equal(
                pl.read_parquet(tmp_path / "whole" / name), pl.read_parquet(tmp_path / f"parts{partitions}" / name)
            )
        assert set(copied) <= set(SHARED_PHONES), "a send of a phone one id uses was copied"
        phone_part = (501234567 * PHONE_MIX % 2**64) % partitions
        if first.to_frame().select(part_of(pl.col("id"), partitions))["id"][0] != phone_part:
            apart += 1
            assert SHARED_PHONES[0] in copied
    assert apart > 0


@whole_scan_settings(15)
@given(data=st.data(), n=st.integers(1, 150), parties=st.integers(1, 10), seed=st.integers(0, 2**32 - 1))
def test_the_order_of_the_rows_and_files_changes_no_alert(
    tmp_path: Path, data: st.DataObject, n: int, parties: int, seed: int
) -> None:
    """The same transfers dumped in another row order, and split over several Arrow and Parquet files, give the
    same alerts and cases (ties are broken by txn_id, never by position or file)."""
    work = Path(tempfile.mkdtemp(dir=tmp_path))  # Hypothesis examples share tmp_path
    ordered = frame(random_transfers(data, n, parties))
    ordered.write_parquet(work / "a.parquet")
    shuffled = ordered.sample(fraction=1.0, shuffle=True, seed=seed)
    # The shuffled rows also come as several files, Arrow and Parquet, in a directory.
    (work / "b").mkdir()
    cuts = sorted({0, n, *data.draw(st.lists(st.integers(0, n), max_size=3))})
    for i, (lo, hi) in enumerate(itertools.pairwise(cuts)):
        part = shuffled.slice(lo, hi - lo)
        part.write_ipc(work / "b" / f"{i}.arrow") if i % 2 else part.write_parquet(work / "b" / f"{i}.parquet")
    for name, inputs in (("a", work / "a.parquet"), ("b", work / "b")):
        args = ["scan", str(inputs), *small_lists(work)]
        result = CliRunner().invoke(app, [*args, "--out", str(work / f"out-{name}"), "--quiet"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    for name in ("alerts.parquet", "cases.parquet"):
        assert_frame_equal(pl.read_parquet(work / "out-a" / name), pl.read_parquet(work / "out-b" / name))


@whole_scan_settings(10)
@given(data=st.data(), n=st.integers(1, 120), parties=st.integers(1, 8), delimiter=st.sampled_from([",", ";", "\t"]))
def test_csv_arrow_and_parquet_of_one_dump_give_the_same_alerts(
    tmp_path: Path, data: st.DataObject, n: int, parties: int, delimiter: str
) -> None:
    """The same random transfers exported as Parquet, Arrow and CSV (any of three delimiters, timestamps as ISO
    text with their offset) give the same alerts and cases."""
    work = Path(tempfile.mkdtemp(dir=tmp_path))  # Hypothesis examples share tmp_path
    dump = frame(random_transfers(data, n, parties))
    dump.write_parquet(work / "t.parquet")
    dump.write_ipc(work / "t.arrow")
    as_text = dump.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z"))
    as_text.write_csv(work / "t.csv", separator=delimiter)
    for name in ("parquet", "arrow", "csv"):
        extra = ["--csv-delimiter", delimiter] if name == "csv" else []
        args = ["scan", str(work / f"t.{name}"), *small_lists(work), *extra, "--out", str(work / name), "--quiet"]
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    for name in ("alerts.parquet", "cases.parquet"):
        reference = pl.read_parquet(work / "parquet" / name)
        for other in ("arrow", "csv"):
            assert_frame_equal(reference, pl.read_parquet(work / other / name), check_exact=True)


def test_spill_files_a_scan_never_closed_are_removed_when_dropped_and_at_exit(world: Path, tmp_path: Path) -> None:
    """A signal can land where no close() is reached (after the spilling pass, before its caller holds the result):
    the partitions must still go, when the Transfers is dropped and, at the latest, as the process exits."""
    import gc
    import weakref

    from followmoney import pipeline
    from followmoney.config import ReadOptions, ScanConfig
    from followmoney.memory import plan_memory
    from followmoney.read import inspect_files
    from followmoney.rules import load_rules

    path = world / "transactions.arrow"
    config = ScanConfig(inputs=str(path), out_dir=tmp_path / "out", now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    rules = [r for r in load_rules(config.rules_dir) if r.kind != "anomaly"]
    files = inspect_files([path], ReadOptions())
    plan = plan_memory(files, pipeline.transfer_columns(rules), out_of_core_available=True, limit=4_000_000)
    transfers = pipeline.load_transfers(files, config, None, rules, plan, lambda _: None)
    spill_dir = transfers.spill_dir
    assert spill_dir is not None and any(spill_dir.iterdir())
    del transfers
    gc.collect()
    assert not spill_dir.exists()

    transfers = pipeline.load_transfers(files, config, None, rules, plan, lambda _: None)
    spill_dir = transfers.spill_dir
    assert spill_dir is not None
    (pending,) = [f for f in weakref.finalize._registry if f.peek() and f.peek()[0] is transfers]  # type: ignore[attr-defined]
    assert pending.atexit  # runs at interpreter exit, as the CLI's exit does (console_main)
    pending()  # what exit does
    assert not spill_dir.exists()
    transfers.close()
