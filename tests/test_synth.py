"""The synthetic world generator: exact size, contract schema, determinism, and truths that hold in the data."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from followmoney import schema as S
from followmoney.synth import (
    BAD_REASONS,
    CATALOGUE_KINDS,
    KINDS,
    NOISES,
    PHONE_REQUIRED_NOISES,
    ROLES,
    USD_PER_UNIT,
    WorldSummary,
    generate_world,
)

ROWS = 30_000
SEED = 11
FILES = ("transactions.arrow", "officials.csv", "networks.csv", "labels.parquet", "identities.parquet", "world.json")
OFFICIALS_HEADER = (
    "id,schema,name,aliases,birth_date,countries,addresses,identifiers,sanctions,phones,emails,"
    "program_ids,dataset,first_seen,last_seen,last_change"
)
CC = {"TH": "66", "KH": "855", "MM": "95", "VN": "84", "LA": "856", "MY": "60", "PH": "63", "US": "1", "AE": "971"}


@dataclass
class World:
    path: Path
    summary: WorldSummary
    progress: list[int]
    txns: pl.DataFrame
    labels: pl.DataFrame
    identities: pl.DataFrame
    officials: pl.DataFrame
    networks: pl.DataFrame
    meta: dict[str, object]


def _make(path: Path, rows: int = ROWS, seed: int = SEED, **kw: object) -> tuple[WorldSummary, list[int]]:
    calls: list[int] = []
    summary = generate_world(rows, seed, path, progress=calls.append, **kw)  # type: ignore[arg-type]
    return summary, calls


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    path = tmp_path_factory.mktemp("world")
    summary, calls = _make(path)
    return World(
        path=path,
        summary=summary,
        progress=calls,
        txns=pl.read_ipc(path / "transactions.arrow").with_row_index("pos"),
        labels=pl.read_parquet(path / "labels.parquet"),
        identities=pl.read_parquet(path / "identities.parquet"),
        officials=_read_csv(path / "officials.csv"),
        networks=_read_csv(path / "networks.csv"),
        meta=json.loads((path / "world.json").read_text()),
    )


def _read_csv(path: Path) -> pl.DataFrame:
    """A CSV as all-string columns (empty fields stay empty strings)."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    return pl.DataFrame(
        {h: [r[i] for r in rows] for i, h in enumerate(header)}, schema=dict.fromkeys(header, pl.String)
    )


def _pattern_txns(world: World, kind: str) -> list[tuple[dict[str, object], pl.DataFrame]]:
    """Each label of a kind with its transfers (sorted by time)."""
    by_id = world.txns.filter(pl.col(S.TXN_ID).is_not_null())
    out = []
    for label in world.labels.filter(pl.col("kind") == kind).to_dicts():
        rows = by_id.filter(pl.col(S.TXN_ID).is_in(label["txn_ids"])).unique(S.TXN_ID, keep="first").sort(S.TS)
        out.append((label, rows))
    return out


def _phone_matches(raw: str, listed: str) -> bool:
    """Does a phone as typed at a counter denote the E.164 number on a list?"""
    digits = re.sub(r"\D", "", raw)
    for cc in CC.values():
        if listed.startswith("+" + cc):
            nsn = listed[1 + len(cc) :]
            return digits.endswith(nsn) and digits[: len(digits) - len(nsn)] in {"", "0", cc}
    return False


def _max_in_window(ts: list[float], days: float = 7.0) -> int:
    """Most events inside any window of `days` days."""
    ts = sorted(ts)
    best, lo = 0, 0
    for hi in range(len(ts)):
        while ts[hi] - ts[lo] >= days * 86400:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# --- size, schema, files -----------------------------------------------------------------------------------
def test_exact_row_count_and_progress(world: World) -> None:
    assert world.txns.height == ROWS
    assert sum(world.progress) == ROWS
    assert world.summary.rows == ROWS
    assert world.meta["rows"] == ROWS


def test_contract_columns_types_and_timezone(world: World) -> None:
    with ipc.open_file(world.path / "transactions.arrow") as reader:
        arrow_schema = reader.schema
    assert tuple(arrow_schema.names) == S.TXN_COLUMNS
    assert arrow_schema.field(S.TS).type == pa.timestamp("us", tz="UTC")
    for name in S.FLOAT_TXN_COLUMNS:
        assert arrow_schema.field(name).type == pa.float64()
    for name in S.STRING_TXN_COLUMNS:
        assert arrow_schema.field(name).type == pa.string()
    assert world.txns.select(S.TXN_COLUMNS).schema == pl.Schema(S.TXN_SCHEMA)
    assert world.txns[S.AMOUNT_USD].null_count() == 0


def test_all_files_written_and_hashed(world: World) -> None:
    for name in FILES:
        assert (world.path / name).is_file()
    for name, info in world.meta["files"].items():  # type: ignore[attr-defined]
        assert hashlib.sha256((world.path / name).read_bytes()).hexdigest() == info["sha256"]
    assert set(world.summary.paths) == {"transactions", "officials", "networks", "labels", "identities", "world"}


def test_one_year_of_rows_not_sorted_by_time(world: World) -> None:
    good = world.txns.filter(pl.col(S.TS).dt.year() != 1970)
    assert good[S.TS].dt.year().unique().to_list() == [2025]
    assert not good[S.TS].is_sorted()


def test_ids_look_like_the_contract_says(world: World) -> None:
    good = world.txns.filter(pl.col(S.TXN_ID).str.contains(r"^T\d{12}$"))
    assert good.height >= ROWS - 10
    for col in (S.SENDER_ID, S.RECEIVER_ID):
        values = world.txns.filter(pl.col(col).str.strip_chars() != "")[col].drop_nulls()
        assert values.str.contains(r"^C\d{8}$").all()
    assert world.txns[S.AGENT_ID].str.contains(r"^AG\d{4,}$").all()
    n_agents = world.txns[S.AGENT_ID].n_unique()
    assert n_agents >= 50


def test_amount_usd_matches_fixed_rates(world: World) -> None:
    good = world.txns.filter(pl.col(S.AMOUNT) > 0)
    rate = pl.col(S.CURRENCY).replace_strict(dict(USD_PER_UNIT), return_dtype=pl.Float64)
    diff = good.select((pl.col(S.AMOUNT) * rate - pl.col(S.AMOUNT_USD)).abs().max()).item()
    assert diff <= 0.006
    assert set(good[S.CURRENCY].unique()) <= set(USD_PER_UNIT)
    assert (good[S.CURRENCY] == "USD").mean() > 0.5  # type: ignore[operator]


def test_background_amounts_are_log_normal_around_150(world: World) -> None:
    unlabelled = set(world.txns[S.TXN_ID].drop_nulls()) - set(world.labels["txn_ids"].explode())
    bg = world.txns.filter(pl.col(S.TXN_ID).is_in(list(unlabelled)) & (pl.col(S.AMOUNT_USD) > 0))
    assert 100 < bg[S.AMOUNT_USD].median() < 220  # type: ignore[operator]


# --- determinism and chunking ------------------------------------------------------------------------------
def test_same_seed_gives_identical_files(world: World, tmp_path: Path) -> None:
    _make(tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (world.path / name).read_bytes(), name


def test_chunked_generation_gives_the_same_world(world: World, tmp_path: Path) -> None:
    _, calls = _make(tmp_path, chunk_rows=7_000)
    assert calls == [7_000, 7_000, 7_000, 7_000, 2_000]
    with ipc.open_file(tmp_path / "transactions.arrow") as reader:
        assert reader.num_record_batches == 5
    chunked = pl.read_ipc(tmp_path / "transactions.arrow")
    assert chunked.equals(world.txns.drop("pos"))  # NaN-aware, unlike pyarrow's Table.equals
    for name in ("officials.csv", "networks.csv", "labels.parquet", "identities.parquet"):
        assert (tmp_path / name).read_bytes() == (world.path / name).read_bytes(), name


def test_another_seed_gives_another_world(world: World, tmp_path: Path) -> None:
    _make(tmp_path, seed=SEED + 1)
    other = pl.read_ipc(tmp_path / "transactions.arrow")
    assert other.height == ROWS
    assert not other.equals(world.txns.drop("pos"))


# --- labels ------------------------------------------------------------------------------------------------
def test_labels_schema_and_counts(world: World) -> None:
    assert world.labels.schema == pl.Schema(S.LABEL_SCHEMA)
    counts = dict(world.labels.group_by("kind").len().iter_rows())
    assert counts == {k: v for k, v in world.summary.pattern_counts.items() if v}
    assert set(counts) == set(KINDS) | set(CATALOGUE_KINDS)  # CATALOGUE_KINDS: rule-catalogue patterns
    assert world.labels["pattern_id"].str.contains(r"^P\d{6}$").all()
    assert world.labels["pattern_id"].is_unique().all()
    assert counts["structuring"] >= 20 and counts["recurring_payment_to_official"] >= 20
    planted = counts["structuring"] + counts["recurring_payment_to_official"]
    benign = sum(counts[k] for k in ("family_remittance", "relative_to_official", "shop_small_payments",
                                     "payroll", "near_threshold_single", "namesake"))  # fmt: skip
    assert benign >= planted
    assert counts["family_remittance"] >= 100 and counts["near_threshold_single"] >= 50
    suspicious = world.labels.filter(pl.col("suspicious"))["kind"].unique().sort().to_list()
    catalogue = ["agent_hopping", "fan_out_splitting", "official_fan_in", "recurring_rotating_or_via", "shared_phone"]
    catalogue += ["one_off_to_official", "smurfing", "structuring_eur", "wage_pooling"]
    assert suspicious == sorted(
        ["corridor_burst", "network_flow", "recurring_payment_to_official", "structuring", *catalogue]
    )
    assert (
        world.labels.filter(~pl.col("suspicious"))["typology"].null_count()
        == world.labels.filter(~pl.col("suspicious")).height
    )


def test_label_txn_ids_exist_and_belong_to_one_pattern(world: World) -> None:
    ids = world.labels["txn_ids"].explode()
    assert ids.is_unique().all()
    assert ids.is_in(world.txns[S.TXN_ID].drop_nulls().implode()).all()
    for label in world.labels.to_dicts():
        assert label["subject_id"] in label["party_ids"]
        assert label["txn_ids"], label["pattern_id"]


def test_bad_rows_are_never_inside_patterns(world: World) -> None:
    ids = world.labels["txn_ids"].explode()
    rows = world.txns.filter(pl.col(S.TXN_ID).is_in(ids.implode()))
    assert rows[S.SENDER_ID].null_count() == 0 and rows[S.RECEIVER_ID].null_count() == 0
    assert (rows[S.AMOUNT] > 0).all() and rows[S.TS].dt.year().eq(2025).all()
    dup = world.txns.filter(pl.col(S.TXN_ID).is_duplicated() & pl.col(S.TXN_ID).is_not_null())
    assert not dup[S.TXN_ID].is_in(ids.implode()).any()


def test_structuring_patterns_cross_the_threshold_within_a_week(world: World) -> None:
    patterns = _pattern_txns(world, "structuring")
    assert {label["threshold_usd"] for label, _ in patterns} == {3000.0, 10000.0}
    for label, rows in patterns:
        t = label["threshold_usd"]
        assert isinstance(t, float)
        band = rows.filter((pl.col(S.AMOUNT_USD) >= 0.8 * t) & (pl.col(S.AMOUNT_USD) < t))
        assert band.height == rows.height >= 3
        assert band[S.AMOUNT_USD].sum() >= t
        seconds = band[S.TS].dt.epoch("s").to_list()
        assert _max_in_window(seconds) == band.height  # all of them inside one 7-day window
        assert (rows[S.SENDER_ID] == label["subject_id"]).all()
        agents = rows[S.AGENT_ID].n_unique()
        assert agents >= 2 if label["variant"] == "multi_agent" else agents == 1
        # the sender has no other near-threshold transfer anywhere
        others = world.txns.filter(
            (pl.col(S.SENDER_ID) == label["subject_id"]) & ~pl.col(S.TXN_ID).is_in(label["txn_ids"])
        )
        assert (others[S.AMOUNT_USD] < 0.8 * 3000).all()


def test_near_threshold_traders_never_bunch(world: World) -> None:
    for label, rows in _pattern_txns(world, "near_threshold_single"):
        t = label["threshold_usd"]
        assert isinstance(t, float)
        assert rows.height >= 2
        assert ((rows[S.AMOUNT_USD] >= 0.8 * t) & (rows[S.AMOUNT_USD] < t)).all()
        sent = world.txns.filter(pl.col(S.SENDER_ID) == label["subject_id"])
        for lo in (2400.0, 8000.0):
            band = sent.filter((pl.col(S.AMOUNT_USD) >= lo) & (pl.col(S.AMOUNT_USD) < lo / 0.8))
            assert _max_in_window(band[S.TS].dt.epoch("s").to_list()) <= 2


def test_recurring_payments_are_regular_and_reach_a_listed_official(world: World) -> None:
    officials = set(world.officials["id"])
    truth = world.identities.filter(pl.col("is_true_match"))
    official_of = dict(truth.filter(pl.col("list_kind") == "official").select("customer_id", "list_id").iter_rows())
    network_of = dict(truth.filter(pl.col("list_kind") == "network").select("customer_id", "network_id").iter_rows())
    period = {"weekly": 7, "fortnightly": 14, "monthly": 30.4}
    patterns = _pattern_txns(world, "recurring_payment_to_official")
    with_network = 0
    for label, rows in patterns:
        assert rows.height >= 4
        assert (rows[S.SENDER_ID] == label["subject_id"]).all()
        assert (rows[S.RECEIVER_ID] == label["counterparty_id"]).all()
        assert label["official_id"] in officials
        assert official_of[label["counterparty_id"]] == label["official_id"]
        if label["network_id"] is not None:
            with_network += 1
            assert network_of[label["subject_id"]] == label["network_id"]
        gaps = np.diff(rows[S.TS].dt.epoch("s").to_numpy()) / 86400
        p = period[label["variant"]]
        assert abs(np.median(gaps) - p) <= 0.2 * p + 1
        assert ((rows[S.AMOUNT_USD] >= 30) & (rows[S.AMOUNT_USD] <= 500)).all()
    assert 0.5 <= with_network / len(patterns) <= 0.9


def test_network_flows_stay_inside_a_network(world: World) -> None:
    members = world.identities.filter(pl.col("is_true_match") & (pl.col("list_kind") == "network"))
    network_of = dict(members.select("customer_id", "network_id").iter_rows())
    for label, rows in _pattern_txns(world, "network_flow"):
        for col in (S.SENDER_ID, S.RECEIVER_ID):
            assert all(network_of[c] == label["network_id"] for c in rows[col])


def test_family_remittances_are_monthly_and_stable(world: World) -> None:
    for _label, rows in _pattern_txns(world, "family_remittance"):
        assert 8 <= rows.height <= 12
        assert rows[S.SENDER_COUNTRY].is_in(["TH", "MY", "US", "AE"]).all()
        assert rows[S.RECEIVER_COUNTRY].is_in(["KH", "MM", "VN", "LA", "PH"]).all()
        usd = rows[S.AMOUNT_USD]
        assert usd.max() <= 1.15 * usd.min() and usd.min() >= 90 and usd.max() <= 440  # type: ignore[operator]
        gaps = np.diff(rows[S.TS].dt.epoch("s").to_numpy()) / 86400
        assert ((gaps > 20) & (gaps < 40)).all()


def test_relatives_share_the_family_name_and_live_abroad(world: World) -> None:
    names = dict(world.officials.select("id", "name").iter_rows())
    countries = dict(world.officials.select("id", "countries").iter_rows())
    for label, rows in _pattern_txns(world, "relative_to_official"):
        assert 6 <= rows.height <= 12 and label["official_id"] is not None and not label["suspicious"]
        official = names[label["official_id"]]
        relative = rows[S.SENDER_NAME][0]
        fold = {w.upper() for w in re.sub(r"[^\w ]", "", _ascii(official)).split()}
        assert fold & set(_ascii(relative).upper().split())
        assert rows[S.SENDER_COUNTRY][0].lower() not in countries[label["official_id"]].split(";")


def test_shops_and_payrolls_have_many_distinct_parties(world: World) -> None:
    for _label, rows in _pattern_txns(world, "shop_small_payments"):
        assert 30 <= rows.height <= 200 and rows[S.SENDER_ID].n_unique() >= 0.8 * rows.height
        assert (rows[S.AMOUNT_USD] <= 61).all()
    for _label, rows in _pattern_txns(world, "payroll"):
        assert 10 <= rows[S.RECEIVER_ID].n_unique() <= 50
        assert rows.with_columns(pl.col(S.TS).dt.day().alias("d"))["d"].n_unique() <= 2  # same day (UTC edge)
        assert ((rows[S.AMOUNT_USD] >= 190) & (rows[S.AMOUNT_USD] <= 620)).all()


# --- identities, lists, namesakes --------------------------------------------------------------------------
def _ascii(text: str) -> str:
    import unicodedata

    text = text.replace("Đ", "D").replace("đ", "d")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _list_phones(world: World) -> dict[str, list[str]]:
    out = {}
    for frame, key in ((world.officials, "id"), (world.networks, "entity_id")):
        for list_id, phones in frame.select(key, "phones").iter_rows():
            out[list_id] = [p for p in phones.split(";") if p]
    return out


def _customer_rows(world: World, customer: str) -> list[tuple[str | None, str, str]]:
    """(phone, country, name) of every row where the customer sends or receives."""
    sent = world.txns.filter(pl.col(S.SENDER_ID) == customer).select(S.SENDER_PHONE, S.SENDER_COUNTRY, S.SENDER_NAME)
    got = world.txns.filter(pl.col(S.RECEIVER_ID) == customer).select(
        S.RECEIVER_PHONE, S.RECEIVER_COUNTRY, S.RECEIVER_NAME
    )
    return list(sent.iter_rows()) + list(got.iter_rows())


def test_identities_schema_and_noise_kinds(world: World) -> None:
    ids = world.identities
    assert ids.columns == ["customer_id", "list_kind", "list_id", "network_id", "noise", "is_true_match"]
    assert set(ids["noise"]) <= set(NOISES)
    assert set(ids.filter(pl.col("is_true_match"))["noise"]) >= {"exact", "typo", "transliteration", "phone_only"}
    assert set(ids["list_kind"]) == {"official", "network"}
    known = set(world.officials["id"]) | set(world.networks["entity_id"])
    assert ids["list_id"].is_in(list(known)).all()
    active = set(world.txns[S.SENDER_ID]) | set(world.txns[S.RECEIVER_ID])
    assert ids["customer_id"].is_in(list(active)).all()


def test_noisy_identities_carry_a_listed_phone_on_every_row(world: World) -> None:
    phones = _list_phones(world)
    noisy = world.identities.filter(pl.col("is_true_match") & pl.col("noise").is_in(list(PHONE_REQUIRED_NOISES)))
    assert noisy.height >= 10
    for customer, list_id in noisy.select("customer_id", "list_id").iter_rows():
        rows = _customer_rows(world, customer)
        assert rows
        for phone, _, _ in rows:
            assert phone is not None, (customer, list_id)
            assert any(_phone_matches(phone, p) for p in phones[list_id]), (phone, phones[list_id])


def test_transaction_names_differ_from_the_list_as_recorded(world: World) -> None:
    listed = dict(world.officials.select("id", "name").iter_rows()) | dict(
        world.networks.select("entity_id", "name").iter_rows()
    )
    for customer, list_id, noise in (
        world.identities.filter(pl.col("is_true_match")).select("customer_id", "list_id", "noise").iter_rows()
    ):
        name = _customer_rows(world, customer)[0][2]
        if noise == "exact":
            assert name == listed[list_id]
        else:
            assert name != listed[list_id]
        if noise == "case_diacritics":
            assert _ascii(name).upper() == _ascii(listed[list_id]).upper()


def test_namesakes_differ_in_phone_and_country(world: World) -> None:
    phones = _list_phones(world)
    countries = dict(world.officials.select("id", "countries").iter_rows()) | dict(
        world.networks.select("entity_id", "countries").iter_rows()
    )
    names = dict(world.officials.select("id", "name").iter_rows()) | dict(
        world.networks.select("entity_id", "name").iter_rows()
    )
    namesakes = world.identities.filter(~pl.col("is_true_match"))
    assert namesakes.height >= 20 and namesakes["network_id"].null_count() == namesakes.height
    for customer, list_id in namesakes.select("customer_id", "list_id").iter_rows():
        rows = _customer_rows(world, customer)
        assert rows
        for phone, country, name in rows:
            assert country.lower() not in countries[list_id].split(";")
            assert phone is not None and not any(_phone_matches(phone, p) for p in phones[list_id])
            assert _ascii(name).upper() == _ascii(names[list_id]).upper()
    family = world.labels.filter(pl.col("variant") == "namesake_receiver")
    assert family.height >= 5
    assert family["counterparty_id"].is_in(namesakes["customer_id"].implode()).all()


def test_officials_csv_is_in_opensanctions_layout(world: World) -> None:
    with (world.path / "officials.csv").open(encoding="utf-8") as f:
        assert f.readline().rstrip("\n") == OFFICIALS_HEADER
    off = world.officials
    assert off.height >= 200
    assert off["id"].is_unique().all()
    assert off["id"].str.contains(r"^(Q\d+|osp-[0-9a-f]{16})$").all()
    assert (off["schema"] == "Person").all()
    assert off["countries"].str.contains(r"^[a-z]{2}(;[a-z]{2})*$").all()
    phones = off.filter(pl.col("phones") != "")["phones"]
    assert phones.str.contains(r"^\+\d{8,14}(;\+\d{8,14})*$").all()
    assert off.filter(pl.col("aliases") != "").height > 20
    assert (off["program_ids"] == "").all()
    in_txns = set(world.identities.filter(pl.col("list_kind") == "official")["list_id"])
    assert off.height - len(in_txns) > 100  # most officials never transact


def test_networks_csv_has_members_with_roles(world: World) -> None:
    with (world.path / "networks.csv").open(encoding="utf-8") as f:
        assert next(csv.reader(f)) == list(S.NETWORK_COLUMNS)
    net = world.networks
    sizes = net.group_by("network_id").len()["len"]
    assert sizes.min() >= 3 and sizes.max() <= 8  # type: ignore[operator]
    assert net["network_id"].n_unique() >= 10
    assert net["network_id"].str.contains(r"^N-\d+$").all()
    assert set(net["role"]) <= set(ROLES)
    assert net["entity_id"].is_unique().all()


def test_common_names_are_shared_and_scripts_are_mixed(world: World) -> None:
    names = pl.concat(
        [
            world.txns.select(pl.col(S.SENDER_ID).alias("id"), pl.col(S.SENDER_NAME).alias("name")),
            world.txns.select(pl.col(S.RECEIVER_ID).alias("id"), pl.col(S.RECEIVER_NAME).alias("name")),
        ]
    ).unique()
    shared = names.group_by(pl.col("name").str.to_uppercase()).agg(pl.col("id").n_unique().alias("n"))
    common = shared.filter(pl.col("name").is_in(["NGUYEN VAN NAM", "SOMCHAI SRISUK", "AUNG KYAW MOE"]))
    assert common["n"].min() >= 3  # type: ignore[operator]
    text = "".join(names["name"].to_list())
    for lo, hi in ((0x0E00, 0x0E7F), (0x1780, 0x17FF), (0x1000, 0x109F)):  # Thai, Khmer, Burmese
        assert any(lo <= ord(c) <= hi for c in text)
    assert any(c in text for c in "ễăêơưđạ")  # Vietnamese diacritics


def test_phones_are_written_in_several_formats(world: World) -> None:
    phones = world.txns[S.SENDER_PHONE].drop_nulls()
    assert phones.str.contains(r"^0\d{2,3}-\d{3}-\d{4}$").any()
    assert phones.str.contains(r"^\+\d{1,3} \d{2,3} \d{3} \d{4}$").any()
    assert phones.str.contains(r"^\d{10,13}$").any()
    assert 0.05 < world.txns[S.SENDER_PHONE].null_count() / ROWS < 0.4


# --- bad rows ------------------------------------------------------------------------------------------------
def test_bad_rows_by_reason(world: World) -> None:
    counts = world.summary.bad_row_counts
    assert set(counts) == set(BAD_REASONS) and world.meta["bad_rows"] == counts
    assert sum(counts.values()) == max(5, round(ROWS * 0.0005))
    t = world.txns
    blank = lambda c: pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")  # noqa: E731
    assert t.filter(blank(S.TXN_ID) | blank(S.SENDER_ID) | blank(S.RECEIVER_ID)).height == counts["null_or_blank_id"]
    assert t.filter(pl.col(S.AMOUNT) <= 0).height == counts["nonpositive_amount"]
    assert t.filter(pl.col(S.AMOUNT).is_nan()).height == counts["nan_amount"]
    assert t.filter(pl.col(S.TS).dt.year() == 1970).height == counts["ts_1970"]
    assert (t.filter(pl.col(S.AMOUNT) <= 0)[S.AMOUNT_USD] <= 0).all()
    ids = t.filter(pl.col(S.TXN_ID).str.contains(r"^T\d{12}$"))
    dup = ids.filter(pl.col(S.TXN_ID).is_duplicated())
    assert dup.height == 2 * counts["duplicate_txn_id"]
    first = dup.group_by(S.TXN_ID).agg(pl.col("pos").min().alias("first"), pl.col("pos").max().alias("copy"))
    assert (first["first"] < first["copy"]).all()


def test_no_bad_rows_when_fraction_is_zero(tmp_path: Path) -> None:
    summary, _ = _make(tmp_path, rows=20_000, bad_fraction=0.0)
    assert sum(summary.bad_row_counts.values()) == 0
    t = pl.read_ipc(tmp_path / "transactions.arrow")
    assert t.height == 20_000 and t[S.TXN_ID].is_unique().all() and (t[S.AMOUNT] > 0).all()


# --- edge sizes ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rows", [1, 1_000, 3_333])
def test_small_worlds_have_exact_sizes(tmp_path: Path, rows: int) -> None:
    summary, calls = _make(tmp_path, rows=rows, chunk_rows=1_000)
    t = pl.read_ipc(tmp_path / "transactions.arrow")
    assert t.height == rows == sum(calls) == summary.rows


@pytest.mark.parametrize("kwargs", [{"rows": 0}, {"seed": -1}, {"chunk_rows": 0}, {"bad_fraction": 0.9}])
def test_impossible_arguments_are_refused(tmp_path: Path, kwargs: dict[str, float]) -> None:
    args = {"rows": 100, "seed": 1, "chunk_rows": 10} | kwargs
    with pytest.raises(ValueError):
        generate_world(int(args["rows"]), int(args["seed"]), tmp_path, chunk_rows=int(args["chunk_rows"]),
                       bad_fraction=float(args.get("bad_fraction", 0.0)))  # fmt: skip


def test_sample_world_stays_small(tmp_path: Path) -> None:
    generate_world(50_000, 7, tmp_path)
    assert (tmp_path / "transactions.arrow").stat().st_size < 4_000_000
