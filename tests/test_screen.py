"""The official screen: which parties could be listed officials, decided before detection. Rules that need
an official then skip everyone else's transfers, and a scan must give exactly the alerts it gives without
the screen."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import scan_world
from polars.testing import assert_frame_equal

from followmoney.lists import empty_entries
from followmoney.matching import MatchSettings, name_key, name_keys, name_tokens
from followmoney.normalise import PARTY_KEY_SEED
from followmoney.parties import PartyDirectory
from followmoney.screen import name_token_sets, possible_official_keys


def test_name_token_sets_agree_with_name_tokens() -> None:
    names = [
        "Somchai Rattanakul",
        "RATTANAKUL,  somchai",
        "Pol. Col. Somchai  Rattanakul",
        "Mr. Nguyen Van  An  an",
        "J. O'Brien-Smith 3rd",
        "José Ángel Núñez",
        "Владимир Путин",
        "สมชาย รัตนกุล",
        "ນາງ ແສງ",
        "",
        "   ",
        "Dr Dr",
        "x\x00y",
    ]
    got = name_token_sets(pl.Series("n", [*names, None]))
    want = [" ".join(sorted(set(name_tokens(n)))) for n in names]
    assert got.to_list() == [*want, None]
    assert got[0] == got[1] == got[2] == "rattanakul somchai"
    keys = name_keys(pl.Series("n", [*names, None]))  # name_key keeps repeated tokens
    assert keys.to_list() == [*(name_key(n) for n in names), None]
    assert keys[3] == "an an nguyen van"


def _entries(rows: list[tuple[str, str, list[str], list[str]]]) -> pl.DataFrame:
    schema = empty_entries().schema
    frame = pl.DataFrame(
        {
            "list_kind": [r[0] for r in rows],
            "list_id": [f"E{i}" for i in range(len(rows))],
            "name": [r[1] for r in rows],
            "names": [[r[1], *r[2]] for r in rows],
            "phones": [r[3] for r in rows],
        }
    )
    return frame.with_columns([pl.lit(None, dtype).alias(c) for c, dtype in schema.items() if c not in frame.columns])


def _keys(*ids: str) -> list[int]:
    return sorted(pl.Series(ids).hash(PARTY_KEY_SEED).to_list())


def test_possible_officials_need_exact_name_tokens_or_a_phone() -> None:
    entries = _entries(
        [
            ("official", "Somchai Rattanakul", ["Chai R."], ["+66 81 234 5678"]),
            ("official", "Aung Kyaw", [], []),
            ("network", "Network Boss", [], ["+66 89 999 0000"]),
        ]
    )
    directory = PartyDirectory.of(
        pl.DataFrame(
            {
                "party_id": [
                    "P_NAME",
                    "P_ORDER",
                    "P_FUZZY",
                    "P_PHONE",
                    "P_SHARES",
                    "P_OTHER",
                    "P_NETWORK",
                    "P_ALIAS",
                    "P_ARABIC",
                ],
                "name": [
                    "Somchai Rattanakul",
                    "KYAW, Aung",
                    "Somchay Ratanakul",  # a fuzzy name alone can never be a confirmed match
                    "Someone Else",
                    "Another Person",
                    "Nobody Listed",
                    "Network Boss",  # on the networks list, not the officials list
                    "chai r",
                    "Someone Else",
                ],
                "country": ["TH"] * 9,
                # P_ARABIC writes the official's phone in Arabic-Indic digits: the same number.
                "phone": [None, None, None, "081-234-5678", None, "0899990000", None, None, "٠٨١-٢٣٤-٥٦٧٨"],
                "len": [1] * 9,
            },
            schema_overrides={"len": pl.UInt32},
        )
        .vstack(
            # P_SHARES also used a phone of P_NAME's: an id sharing a phone with a possible official passes.
            pl.DataFrame(
                {
                    "party_id": ["P_NAME"],
                    "name": ["Somchai Rattanakul"],
                    "country": ["TH"],
                    "phone": ["+1 555 777 1234"],
                },
            ).with_columns(pl.lit(1, pl.UInt32).alias("len"))
        )
        .vstack(
            pl.DataFrame(
                {"party_id": ["P_SHARES"], "name": ["Another Person"], "country": ["TH"], "phone": ["555-777-1234"]},
            ).with_columns(pl.lit(1, pl.UInt32).alias("len"))
        )
        .lazy()
    )
    keys = possible_official_keys(directory, entries)
    assert keys is not None
    assert keys.to_list() == _keys("P_NAME", "P_ORDER", "P_PHONE", "P_SHARES", "P_ALIAS", "P_ARABIC")
    # A threshold a fuzzy name alone can reach lets every party through: no screen at all.
    assert possible_official_keys(directory, entries, MatchSettings(threshold=0.8, review_floor=0.7)) is None
    # No officials list: nobody can be an official.
    assert possible_official_keys(directory, entries.filter(pl.col("list_kind") == "network")).len() == 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from followmoney.synth import generate_world

    path = tmp_path_factory.mktemp("world")
    generate_world(30_000, 5, path)
    return path


def test_screened_scan_equals_unscreened_scan(world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = world / "transactions.arrow"
    screened = scan_world(world, inputs, tmp_path / "screened")
    monkeypatch.setattr("followmoney.pipeline.possible_official_keys", lambda *args, **kwargs: None)
    unscreened = scan_world(world, inputs, tmp_path / "unscreened")
    for name in ("alerts.parquet", "cases.parquet"):
        a, b = pl.read_parquet(tmp_path / "screened" / name), pl.read_parquet(tmp_path / "unscreened" / name)
        assert_frame_equal(a, b, check_exact=True)
    alerts = pl.read_parquet(tmp_path / "screened" / "alerts.parquet")
    assert {"FM120", "FM121"} <= set(alerts["rule_code"].to_list())
    # The screen did cut the work: far fewer regular-payment and official fan-in candidates were built.
    for code in ("FM120", "FM121"):
        assert screened["candidates_per_rule"][code] < unscreened["candidates_per_rule"][code] / 2, code


def test_listed_lookalikes_need_exact_tokens_or_a_phone_tail() -> None:
    entries = _entries([("network", "Vichai Ruangsri", ["Boss V"], ["+66 89 111 2222"])])
    profiles = pl.DataFrame(
        {
            "party_id": ["EXACT", "ALIAS", "FUZZY", "PHONE", "NONE", "THAI"],
            "names": [["RUANGSRI Vichai"], ["boss v."], ["Wichai Ruangsee"], ["Someone"], [None], ["Other"]],
            "phones": [[], [], ["0811113333"], ["089-111-2222"], [], ["๐๘๙ ๑๑๑ ๒๒๒๒"]],  # THAI: in Thai digits
        },
        schema_overrides={"names": pl.List(pl.String), "phones": pl.List(pl.String)},
    )
    from followmoney.screen import listed_lookalikes

    assert listed_lookalikes(profiles, entries).to_list() == ["ALIAS", "EXACT", "PHONE", "THAI"]
    # A name many parties of the input use is common: alone it can only be "possible", never a match.
    counts = pl.DataFrame({"approx_key": ["ruangsri vichai", "b boss"], "name_parties": [3, 2]})
    assert listed_lookalikes(profiles, entries, counts, max_name_share=2).to_list() == ["ALIAS", "PHONE", "THAI"]


def test_phones_without_digits_are_no_phone() -> None:
    """A list's or a party's phone of no digits ("n/a", "", "ext.") is no phone: once it stopped every scan."""
    from followmoney.screen import listed_lookalikes

    entries = _entries([("official", "Somchai Rattanakul", [], ["n/a", "", "+66 81 234 5678"])])
    profiles = pl.DataFrame(
        {"party_id": ["PHONE", "NA"], "names": [["Someone"], ["Other"]], "phones": [["081-234-5678"], ["n/a", "x"]]},
        schema_overrides={"names": pl.List(pl.String), "phones": pl.List(pl.String)},
    )
    assert listed_lookalikes(profiles, entries).to_list() == ["PHONE"]


def test_link_prefilters_change_no_alert(world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the name/phone prefilter (every profiled party fuzzy-matched to both lists) a scan alerts alike."""
    inputs = world / "transactions.arrow"
    scan_world(world, inputs, tmp_path / "filtered")
    monkeypatch.setattr("followmoney.link.listed_lookalikes", lambda profiles, *_: profiles["party_id"].unique())
    monkeypatch.setattr("followmoney.pipeline.possible_official_keys", lambda *args, **kwargs: None)
    scan_world(world, inputs, tmp_path / "everyone")
    for name in ("alerts.parquet", "cases.parquet"):
        a, b = pl.read_parquet(tmp_path / "filtered" / name), pl.read_parquet(tmp_path / "everyone" / name)
        assert_frame_equal(a, b, check_exact=True)
    assert pl.read_parquet(tmp_path / "filtered" / "alerts.parquet")["network_id"].drop_nulls().len() > 10


def test_phones_in_other_scripts_scan_as_their_ascii_twins(world: Path, tmp_path: Path) -> None:
    """The same dump with every phone written in Arabic-Indic digits (lists unchanged, in ASCII) gives the same
    alerts: the screen's tails, the E.164 keys, the phone rules' keys and partitions read any script's digits
    (a single such phone once stopped the scan)."""
    arabic = dict(zip("0123456789", "٠١٢٣٤٥٦٧٨٩", strict=True))
    rows = pl.read_ipc(world / "transactions.arrow")
    phones = [c for c in rows.columns if c.endswith("_phone")]
    rewritten = rows.with_columns(pl.col(phones).str.replace_many(list(arabic), list(arabic.values())))
    assert rewritten["sender_phone"].str.contains("٥").any()
    rewritten.write_ipc(tmp_path / "arabic.arrow")
    scan_world(world, world / "transactions.arrow", tmp_path / "ascii")
    scan_world(world, tmp_path / "arabic.arrow", tmp_path / "arabic")
    # Partitioned too: each phone's partition is read from its bytes, or for these texts by the expression.
    parts = scan_world(world, tmp_path / "arabic.arrow", tmp_path / "parts", "--memory-limit", "4MB")
    assert parts["memory"]["mode"] == "out_of_core"
    for name in ("alerts.parquet", "cases.parquet"):
        a = pl.read_parquet(tmp_path / "ascii" / name)
        assert_frame_equal(a, pl.read_parquet(tmp_path / "arabic" / name), check_exact=True)
        assert_frame_equal(a, pl.read_parquet(tmp_path / "parts" / name), check_exact=True)
    alerts = pl.read_parquet(tmp_path / "arabic" / "alerts.parquet")
    assert {"FM120", "FM130"} <= set(alerts["rule_code"].to_list())


def test_name_parties_counts_distinct_parties_per_name_key() -> None:
    """How common a name is counts the distinct party ids using any spelling of it (one approx_name_key): not
    rows, not spellings, and not a party twice for two phones or two spellings."""
    rows = [
        ("A1", "Nguyen Van An", "+84 90 111 2222"),
        ("A1", "NGUYEN VAN AN", "0901112222"),  # the same party, another spelling and phone format
        ("A2", "An, Nguyen Van", None),
        ("A3", "nguyen  van-an", "0903334444"),
        ("B1", "Somchai Rattanakul", "081-234-5678"),
        ("B1", "Somchai Rattanakul", "+66 81 234 5678"),
        ("C1", None, "0899990000"),
    ]
    directory = PartyDirectory.of(
        pl.DataFrame(
            {
                "party_id": [r[0] for r in rows],
                "name": [r[1] for r in rows],
                "country": ["VN"] * 4 + ["TH"] * 3,
                "phone": [r[2] for r in rows],
                "len": [1] * len(rows),
            },
            schema_overrides={"len": pl.UInt32},
        )
    )
    counts = dict(directory.name_parties.iter_rows())
    assert counts == {"an nguyen van": 3, "rattanakul somchai": 1}
