"""Fuzzy matching: name variants and phones match with a plain reason; namesakes never do; blocking stays linear."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from followmoney.lists import LIST_ENTRY_SCHEMA
from followmoney.matching import (
    MatchSettings,
    _name_pairs,
    match_parties,
    name_key,
    name_tokens,
    prepare_names,
    with_evidence,
)
from followmoney.parties import PROFILE_SCHEMA


def profiles(rows: list[tuple[str, list[str], list[str], list[str]]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"party_id": p, "name": n[0], "names": n, "countries": c, "phones": ph} for p, n, c, ph in rows],
        schema=PROFILE_SCHEMA,
    )


def entries(rows: list[tuple[str, str, list[str], list[str], list[str]]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "list_kind": kind,
                "list_id": lid,
                "network_id": "N-1" if kind == "network" else None,
                "name": names[0],
                "names": names,
                "countries": c,
                "phones": ph,
                "role": None,
                "dataset": None,
            }
            for kind, lid, names, c, ph in rows
        ],
        schema=LIST_ENTRY_SCHEMA,
    )


LIST = entries(
    [
        ("official", "Q1", ["Somchai Srisuk", "Pol. Col. Somchai Srisuk"], ["TH"], ["+66 89 999 9999"]),
        ("official", "Q2", ["Sok Chan"], ["KH"], ["012 345 678"]),
        ("official", "Q3", ["Nguyễn Văn An"], ["VN"], []),
        ("network", "E1", ["Vichai Ruangsri"], ["TH"], ["+66812345678"]),
    ]
)


@pytest.mark.parametrize(
    ("names", "countries", "phones", "list_id", "how"),
    [
        (["SOMCHAI  srisuk"], ["TH"], [], "Q1", "case/diacritics"),
        (["Srisuk Somchai"], ["TH"], [], "Q1", "token order"),
        (["Khun Somchai Srisuk"], ["TH"], [], "Q1", "honorific"),
        (["Nguyen Van An"], ["VN"], [], "Q3", "case/diacritics"),
        (["สมชาย ศรีสุข"], ["TH"], ["089-999-9999"], "Q1", "transliteration"),  # Thai script, local phone
        (["សុខ ចាន់"], ["KH"], ["+855 12 345 678"], "Q2", "transliteration"),  # Khmer script (ICU cannot)
        (["Somchay Srisook"], ["TH"], ["0899999999"], "Q1", "spelling"),
        (["Wichai Ruangsri"], ["TH"], ["+66 81 234 5678"], "E1", "spelling"),
    ],
)
def test_variants_match_with_reason(
    names: list[str], countries: list[str], phones: list[str], list_id: str, how: str
) -> None:
    got = match_parties(profiles([("C1", names, countries, phones)]), LIST)
    assert got["list_id"].to_list() == [list_id]
    row = got.to_dicts()[0]
    assert row["status"] == "match" and row["confidence"] >= 0.85
    assert f"({how})" in row["basis"]
    assert ("same phone" in row["basis"]) == bool(phones)


def test_phone_only_match_says_so() -> None:
    got = match_parties(profiles([("C1", ["Mrs Lamai"], ["TH"], ["+66812345678"])]), LIST).to_dicts()
    assert [r["list_id"] for r in got] == ["E1"]
    assert got[0]["basis"].startswith("name differs (") and "same phone" in got[0]["basis"]


def test_a_phone_written_in_other_digits_matches_the_same_number() -> None:
    # E1's phone is +66812345678: here in Thai digits, international and local, and in Arabic-Indic digits.
    for written in ("+๖๖ ๘๑ ๒๓๔ ๕๖๗๘", "๐๘๑-๒๓๔-๕๖๗๘", "+٦٦٨١٢٣٤٥٦٧٨"):
        got = match_parties(profiles([("C1", ["Mrs Lamai"], ["TH"], [written])]), LIST).to_dicts()
        assert [r["list_id"] for r in got] == ["E1"], written
        assert "same phone" in got[0]["basis"]


def test_namesake_abroad_with_other_phone_never_matches() -> None:
    # The same common name as Q1, living in Cambodia with a Cambodian phone.
    party = profiles([("C9", ["Somchai Srisuk"], ["KH"], ["+855 12 999 111"])])
    assert match_parties(party, LIST).height == 0
    assert match_parties(party, LIST, MatchSettings(), include_possible=True).height == 0


def test_fuzzy_name_alone_is_only_possible_and_threshold_is_configurable() -> None:
    party = profiles([("C5", ["Somchay Srisook"], ["TH"], [])])
    assert match_parties(party, LIST).height == 0
    possible = match_parties(party, LIST, include_possible=True).to_dicts()
    assert [(r["list_id"], r["status"]) for r in possible] == [("Q1", "possible")]
    assert 0.7 <= possible[0]["confidence"] < 0.85
    lenient = match_parties(party, LIST, MatchSettings(threshold=0.7)).to_dicts()
    assert [(r["list_id"], r["status"]) for r in lenient] == [("Q1", "match")]


def test_agent_phone_shared_by_many_parties_is_weak() -> None:
    many = profiles([(f"C{i}", [f"Customer {i} Person"], ["TH"], ["+66812345678"]) for i in range(8)])
    got = match_parties(many, LIST, include_possible=True)
    assert got.filter(pl.col("status") == "match").height == 0


def test_evidence_of_pairs_whose_country_lists_are_chunked_apart() -> None:
    # score_candidates stacks name-only pairs over pairs found by phone, so the list's countries (joined on)
    # can be split into chunks at other rows than the party's. Polars 2.2.0 panicked on such a frame when
    # the countries were compared inside the shared-phone branch; the evidence must not depend on chunks.
    n = 6
    pairs = pl.DataFrame(
        [
            pl.Series("party_id", [f"C{i}" for i in range(n)]),
            pl.Series("list_kind", ["official"] * n),
            pl.Series("list_id", [f"Q{i}" for i in range(n)]),
            pl.Series("name_score", [1.0, 0.9, 1.0, 0.9, 1.0, 0.6]),
            pl.Series("party_name", ["a"] * n),
            pl.Series("matched_name", ["a"] * n),
            pl.Series("name_parties", [1] * n, dtype=pl.Int64),
            pl.Series("phone_strong", [None] * (n - 1) + [True], dtype=pl.Boolean),
            pl.Series("p_has_phone", [True] * n),
            pl.Series("e_has_phone", [True, None, True, None, True, True], dtype=pl.Boolean),
            pl.Series("p_countries", [["TH"]] * n),
            pl.concat(
                [pl.Series("e_countries", [["TH"], ["TH"], []]), pl.Series("e_countries", [["KH"], ["TH"], ["US"]])],
                rechunk=False,
            ),
        ]
    )
    assert pairs["e_countries"].n_chunks() == 2 and pairs["p_countries"].n_chunks() == 1
    got = with_evidence(pairs, MatchSettings())
    assert got.equals(with_evidence(pairs.rechunk(), MatchSettings()))
    assert got["country"].to_list() == ["same", "same", "unknown", "different", "same", "different"]
    assert got["phone"].to_list() == ["different phone", None, "different phone", None, "different phone", "same phone"]
    # The shared phone carries the pair whatever its countries; the others are their name, country and phone.
    assert got["confidence"].to_list() == pytest.approx([0.75, 0.72, 0.6975, 0.54, 0.75, 0.954])
    assert "_n_shared" not in got.columns and "e_countries" not in got.columns


def test_honorifics_dropped_but_burmese_name_parts_kept() -> None:
    assert name_tokens("Pol. Col. Somchai Srisuk") == name_tokens("khun somchai SRISUK") == ("somchai", "srisuk")
    # "Ko" is a title and a name part: kept, and word order does not matter.
    assert name_key("Ko Aung Thida") == name_key("AUNG THIDA KO") and name_key("Phyo Htet Ko") != name_key("Htet Phyo")


def test_blocking_pairs_grow_linearly_not_as_a_cross_product() -> None:
    rng = np.random.default_rng(3)
    syll = ["som", "chai", "sri", "suk", "wi", "rat", "pra", "sert", "an", "nan", "kit", "ti", "pong", "thong"]

    def name() -> str:
        return " ".join("".join(rng.choice(syll, 2)).title() for _ in range(2))

    n_parties, n_entries = 4000, 1000
    p = profiles([(f"C{i}", [name()], ["TH"], []) for i in range(n_parties)])
    e = entries([("official", f"Q{i}", [name()], ["TH"], []) for i in range(n_entries)])
    pairs = _name_pairs(prepare_names(p, ["party_id"]), prepare_names(e, ["list_kind", "list_id"]), MatchSettings())
    assert pairs.height < 0.05 * n_parties * n_entries


def test_common_name_alone_is_only_possible_but_one_holder_matches() -> None:
    # Nine customers in Vietnam are called "An Nguyen Van": which one is the listed Nguyen Van An?
    crowd = profiles([(f"C{i}", ["An Nguyen Van"], ["VN"], []) for i in range(9)])
    got = match_parties(crowd, LIST, include_possible=True)
    assert set(got["status"]) == {"possible"} and got.height == 9
    assert "a common name (9 parties use it)" in got["basis"][0]
    alone = match_parties(crowd.head(1), LIST)
    assert alone["list_id"].to_list() == ["Q3"] and alone["status"].to_list() == ["match"]


def test_possible_match_is_shown_for_review_but_not_used() -> None:
    import datetime as dt

    from followmoney import schema as S
    from followmoney.link import attach_links, link_parties

    t = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    candidates = pl.DataFrame(
        [{"rule_code": "FM120", "subject_id": "C1", "counterparty_id": "C2", "window_start": t, "window_end": t,
          "n_txns": 8, "total_usd": 800.0, "strength": 0.9, "txn_ids": ["T1"]}],
        schema=S.CANDIDATE_BASE_SCHEMA,
    )  # fmt: skip
    party = profiles([("C1", ["Anan Boonmee"], ["TH"], []), ("C2", ["Somchay Srisook"], ["TH"], [])])
    result = link_parties(party, LIST)
    row = attach_links(candidates, party, result.matches, result.network, result.resolved).to_dicts()[0]
    assert row["official_id"] is None and row["official_confidence"] is None and not row["counterparty_official"]
    assert "The receiver possibly matches listed official Q1 'Somchai Srisuk'" in row["official_text"]
    assert "below the match threshold: for review" in row["official_text"]


def test_name_similarity_in_chunks_equals_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs are scored in chunks to bound memory; the scores are exactly those of one piece, in row order."""
    import followmoney.matching as matching

    names = ["somchai rattanakul", "anan rattanakul", "kyaw min", "min kyaw", "nguyen van an", "sok dara", "a"]
    pairs = pl.DataFrame({"key_a": [a for a in names for _ in names], "key_b": [b for _ in names for b in names]})
    whole = matching.name_similarity(pairs)
    monkeypatch.setattr(matching, "SIMILARITY_CHUNK", 5)
    chunked = matching.name_similarity(pairs)
    assert chunked.len() == pairs.height and chunked.to_list() == whole.to_list()
    assert whole.n_unique() > 3  # real scores, not a constant


def _similarity_twin(key_a: str, key_b: str) -> float:
    """Plain-Python twin of matching.name_similarity for one pair (what the Numba kernel must match)."""
    from rapidfuzz.distance import JaroWinkler

    from followmoney.matching import skeleton

    ta, tb = key_a.split(" "), key_b.split(" ")

    def sim(x: str, y: str) -> float:
        jw = float(np.float32(JaroWinkler.normalized_similarity(x, y)))  # scored as float32, like cpdist
        sx = skeleton(x)
        return max(jw, float(np.float32(0.9))) if sx == skeleton(y) and len(sx) >= 2 else jw

    grid = [[sim(x, y) for y in tb] for x in ta]
    mean_a = float(np.float32(sum(max(row) for row in grid) / len(ta)))
    mean_b = float(np.float32(sum(max(grid[i][j] for i in range(len(ta))) for j in range(len(tb))) / len(tb)))
    na, nb = len(ta), len(tb)
    short = min(mean_a, mean_b) if na == nb else (mean_a if na < nb else mean_b)
    extra = abs(na - nb)
    score = short * (1 - 0.04 * extra)
    if min(na, nb) == 1 and extra > 0:
        score = min(score, 0.75)
    if key_a == key_b:
        score = 1.0
    return min(max(score, 0.0), 1.0)


@pytest.mark.parametrize("dense", [True, False], ids=["token-pair-table", "token-pair-search"])
def test_name_similarity_kernel_matches_its_python_twin(dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Token-aligned name similarity (each distinct key split once, token numbering, distinct token pairs, Numba
    alignment) gives exactly the plain computation's scores: transliteration variants, reordered and missing
    tokens, one-token names, phonetic look-alikes, an empty key; with the token pairs of a small vocabulary in
    a table, and searched for, as a large vocabulary's are."""
    import followmoney.matching as matching

    if not dense:
        monkeypatch.setattr(matching, "DENSE_TOKEN_PAIRS", 0)

    names = [
        "rattanakul somchai", "rattanakoon somchai", "anan rattanakul", "kyaw min", "kyaw min thu", "nguyen van an",
        "an nguyen", "dara sok", "dara sokh", "mohammed", "muhammad", "abdul mohammed rahman", "", "a",
        "aung san", "aung sann", "phuong thi tran", "thi tran phuong",
    ]  # fmt: skip
    key_a = [a for a in names for _ in names]
    key_b = [b for _ in names for b in names]
    scores = matching.name_similarity(pl.DataFrame({"key_a": key_a, "key_b": key_b})).to_list()
    expected = [_similarity_twin(a, b) for a, b in zip(key_a, key_b, strict=True)]
    assert scores == expected
    assert len({round(s, 3) for s in scores}) > 20  # real scores, not a few constants


def test_prepared_lists_match_as_the_raw_lists_do() -> None:
    # A scan prepares the lists once and matches several batches (and chunks) of parties against them:
    # the answer must be the one the raw lists give.
    from followmoney.matching import PreparedEntries, PreparedLists

    crowd = profiles(
        [
            ("C1", ["Srisuk Somchai"], ["TH"], []),
            ("C2", ["สมชาย ศรีสุข"], ["TH"], ["089-999-9999"]),
            ("C3", ["Wichai Ruangsri"], ["TH"], ["+66 81 234 5678"]),
            ("C4", ["Nguyen Van An"], ["VN"], []),
            ("C5", ["Somchai Jaidee"], ["TH"], ["+66 80 000 0000"]),  # a namesake of nobody listed
            ("C6", ["Sok Chan"], ["KH"], ["012 345 678"]),
        ]
    )
    raw = match_parties(crowd, LIST, include_possible=True)
    assert set(raw["list_id"]) >= {"Q1", "Q2", "Q3", "E1"}
    prepared = PreparedEntries.of(LIST)
    assert PreparedEntries.of(prepared) is prepared
    for _ in range(2):  # reused: preparing must not be consumed by a match
        assert match_parties(crowd, prepared, include_possible=True).equals(raw)
    chunked = match_parties(crowd, prepared, MatchSettings(chunk_parties=2), include_possible=True)
    assert chunked.equals(raw)
    lists = PreparedLists(LIST)
    assert set(lists.networks.frame["list_kind"]) == {"network"}
    assert lists.every is lists.every  # prepared once
    networks_raw = match_parties(crowd, LIST.filter(pl.col("list_kind") == "network"), include_possible=True)
    assert match_parties(crowd, lists.networks, include_possible=True).equals(networks_raw)
