"""Graph kernels against plain-Python twins, party resolution, and network links on planted patterns."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import deque
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import T0, frame, txn, weekly, write_networks, write_officials

from followmoney.graph import bfs_from_sources, csr, union_find
from followmoney.parties import PROFILE_SCHEMA, resolve_parties

RULES = Path(__file__).resolve().parents[1] / "rules"


def bfs_twin(n: int, edges: list[tuple[int, int]], sources: list[int], blocked: set[int], max_hops: int) -> list[int]:
    adj: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in edges:
        if a != b:
            adj[a].add(b)
            adj[b].add(a)
    dist = [-1] * n
    queue: deque[int] = deque()
    for s in sources:
        if dist[s] == -1:
            dist[s] = 0
            queue.append(s)
    while queue:
        u = queue.popleft()
        if dist[u] >= max_hops or (dist[u] > 0 and u in blocked):
            continue
        for v in sorted(adj[u]):
            if dist[v] == -1:
                dist[v] = dist[u] + 1
                queue.append(v)
    return dist


@pytest.mark.parametrize("seed", range(6))
def test_bfs_kernel_matches_python_twin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    m = int(rng.integers(0, 3 * n))
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    sources = sorted(set(rng.integers(0, n, int(rng.integers(1, 4))).tolist()))
    blocked = set(rng.integers(0, n, int(rng.integers(0, 4))).tolist())
    block_arr = np.zeros(n, dtype=np.bool_)
    block_arr[list(blocked)] = True
    indptr, indices = csr(n, a, b)
    for hops in (0, 1, 2, 3):
        dist, parent, origin = bfs_from_sources(indptr, indices, np.array(sources, np.int64), block_arr, hops)
        assert dist.tolist() == bfs_twin(n, list(zip(a.tolist(), b.tolist(), strict=True)), sources, blocked, hops)
        for v in np.flatnonzero(dist > 0):  # each parent is a neighbour one hop nearer, from the same source
            assert dist[parent[v]] == dist[v] - 1 and origin[parent[v]] == origin[v]


@pytest.mark.parametrize("seed", range(4))
def test_union_find_matches_python_twin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 40
    a, b = rng.integers(0, n, 25), rng.integers(0, n, 25)
    labels = union_find(n, a, b)
    comp = list(range(n))
    changed = True
    while changed:  # label propagation to the smallest member
        changed = False
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            low = min(comp[x], comp[y])
            if comp[x] != low or comp[y] != low:
                comp[x] = comp[y] = low
                changed = True
    assert labels.tolist() == comp


def test_resolution_needs_shared_phone_and_close_name_in_one_country() -> None:
    rows = [
        ("C1", ["Vichai Ruangsri"], ["TH"], ["081-234-5678"]),
        ("C2", ["Wichai Ruangsri"], ["TH"], ["+66812345678"]),  # same person: phone + close name
        ("C3", ["Anan Ruangsri"], ["TH"], ["+66 81 234 5678"]),  # family member on the same phone
        ("C4", ["Vichai Ruangsri"], ["TH"], []),  # namesake without a phone
        ("C5", ["Vichai Ruangsri"], ["KH"], ["+66812345678"]),  # other country
    ]
    profiles = pl.DataFrame(
        [{"party_id": p, "name": n[0], "names": n, "countries": c, "phones": ph} for p, n, c, ph in rows],
        schema=PROFILE_SCHEMA,
    )
    got = {r["party_id"]: r["resolved_id"] for r in resolve_parties(profiles).to_dicts()}
    assert got == {"C1": "C1", "C2": "C1", "C3": "C3", "C4": "C4", "C5": "C5"}


@pytest.fixture
def network_world(tmp_path: Path) -> dict[str, Path]:
    rows = []
    member = {"receiver_name": "Wichai Ruangsri", "receiver_phone": "081 234 5678"}  # listed as E-12 by phone
    # Planted, 2 hops: C_PAYER pays an official weekly; C_PAYER -> C_MID -> C_MEMBER (listed member of N-7).
    rows += weekly("A", "C_PAYER", "C_OFF1", 8, 100.0, receiver_name="Somchai Srisuk")
    rows += [txn("M1", "C_PAYER", "C_MID", T0 + dt.timedelta(days=2), 700.0)]
    rows += [txn("M2", "C_MID", "C_MEMBER", T0 + dt.timedelta(days=3), 650.0, **member)]
    # Planted, 1 hop through a second id of the same person: C_PAYER3 pays an official weekly; under the id
    # C_PAYER3B (same phone, close name; no transfer links the two ids) that person pays the listed member.
    same = {"sender_name": "Kittipong Saelim", "sender_phone": "+66 86 555 1212"}
    rows += weekly("B", "C_PAYER3", "C_OFF2", 8, 120.0, receiver_name="Prasert Chaiyaporn", **same)
    other_id = {"sender_name": "KITTIPONG SAE-LIM", "sender_phone": "086-555-1212"}
    rows += [txn("B2", "C_PAYER3B", "C_MEMBER", T0 + dt.timedelta(days=61), 300.0, **other_id, **member)]
    # Look-alike: another person (another name) on the same family phone as C_PAYER4 pays the member too:
    # a shared phone alone is not the same person, so C_PAYER4's alert gets no network link.
    rows += weekly("D", "C_PAYER4", "C_OFF4", 8, 110.0, receiver_name="Chai Boonmee", sender_name="Niran Thongdee",
                   sender_phone="+66 87 111 2222")  # fmt: skip
    wife = {"sender_name": "Malee Thongdee", "sender_phone": "087-111-2222"}
    rows += [txn("D1", "C_WIFE", "C_MEMBER", T0 + dt.timedelta(days=62), 200.0, **wife, **member)]
    # Look-alike: C_HONEST pays an official weekly and buys at a shop that the member also pays (a hub).
    rows += weekly("H", "C_HONEST", "C_OFF3", 8, 90.0, receiver_name="Anan Wongsawat")
    rows += [txn("H1", "C_HONEST", "C_SHOP", T0 + dt.timedelta(days=5), 40.0)]
    rows += [txn("H2", "C_MEMBER", "C_SHOP", T0 + dt.timedelta(days=6), 40.0, sender_name="Wichai Ruangsri")]
    rows += [txn(f"S{i:03d}", f"C_BUYER{i:03d}", "C_SHOP", T0 + dt.timedelta(hours=i), 20.0) for i in range(250)]
    path = tmp_path / "txns.arrow"
    frame(rows).write_ipc(path)
    officials = write_officials(
        tmp_path / "officials.csv",
        [
            "Q1,Person,Somchai Srisuk,,,th,,,,,,,th_police,,,",
            "Q2,Person,Prasert Chaiyaporn,,,th,,,,,,,th_police,,,",
            "Q3,Person,Anan Wongsawat,,,th,,,,,,,th_police,,,",
            "Q4,Person,Chai Boonmee,,,th,,,,,,,th_police,,,",
        ],
    )
    networks = write_networks(tmp_path / "networks.csv", ["N-7,E-12,Vichai Ruangsri,,+66812345678,th,recruiter"])
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(RULES / "FM120.toml", rules / "FM120.toml")
    return {"txns": path, "officials": officials, "networks": networks, "rules": rules, "out": tmp_path / "out"}


def test_alerts_carry_network_id_and_readable_path(network_world: dict[str, Path], run_cli) -> None:
    w = network_world
    result = run_cli(
        "scan", w["txns"], "--officials", w["officials"], "--networks", w["networks"],
        "--rules-dir", w["rules"], "--out", w["out"], "--quiet", "--min-score", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    alerts = {r["subject_id"]: r for r in pl.read_parquet(w["out"] / "alerts.parquet").to_dicts()}
    assert set(alerts) == {"C_PAYER", "C_PAYER3", "C_PAYER4", "C_HONEST"}
    two_hops = alerts["C_PAYER"]
    assert two_hops["network_id"] == "N-7"
    assert two_hops["network_path"].startswith(
        "subject C_PAYER -> C_MID -> C_MEMBER = listed member E-12 'Vichai Ruangsri' (recruiter) of N-7 ("
    )
    assert "same phone" in two_hops["network_path"] and "Network link: subject C_PAYER" in two_hops["reasons"]
    alias = alerts["C_PAYER3"]
    assert alias["network_id"] == "N-7"
    assert alias["network_path"].startswith("subject C_PAYER3 (one person with ids C_PAYER3B: same phone, name")
    assert "-> C_MEMBER = listed member E-12" in alias["network_path"]
    assert alerts["C_PAYER4"]["network_id"] is None  # a relative on the same phone is not the payer
    # Through a shop with 250 customers is no link: hubs are not walked through.
    assert alerts["C_HONEST"]["network_id"] is None and alerts["C_HONEST"]["network_path"] is None
    assert (
        alerts["C_PAYER3"]["score"] > alerts["C_PAYER"]["score"] > alerts["C_HONEST"]["score"]
    )  # 1 hop > 2 hops > none
    cases = pl.read_parquet(w["out"] / "cases.parquet").to_dicts()
    assert len(cases) == 1 and cases[0]["case_id"] == "CASE-N-7" and cases[0]["n_alerts"] == 2
    assert sorted(cases[0]["official_ids"]) == ["Q1", "Q2"]


def test_network_links_respect_max_hops_and_direction() -> None:
    from followmoney.graph import GraphSettings, network_links
    from followmoney.link import LinkSettings

    edges = pl.DataFrame({"sender_id": ["A", "C", "B"], "receiver_id": ["B", "B", "A"]})  # A <-> B <- C
    resolved = pl.DataFrame({"party_id": ["A", "B", "C"], "resolved_id": ["A", "B", "C"]})
    members = pl.DataFrame({"party_id": ["C"], "network_id": ["N-1"], "list_id": ["E-1"]})
    two = {
        r["party_id"]: r for r in network_links(edges, resolved, members, None, GraphSettings(max_hops=2)).to_dicts()
    }
    assert (two["A"]["hops"], two["A"]["path"], two["A"]["steps"]) == (2, ["A", "B", "C"], ["<->", "<-"])
    assert (two["C"]["hops"], two["C"]["path"]) == (0, ["C"])
    settings = LinkSettings.from_mapping({"max_hops": 1, "threshold": 0.9})
    one = network_links(edges, resolved, members, None, settings.graph)
    assert sorted(one["party_id"]) == ["B", "C"]
    hub = network_links(edges, resolved, members, pl.Series(["B"]), GraphSettings(max_hops=2))
    assert sorted(hub["party_id"]) == ["B", "C"]  # B is reached but not walked through


def test_link_settings_report_every_problem() -> None:
    from followmoney.errors import ConfigError
    from followmoney.link import LinkSettings

    with pytest.raises(ConfigError) as err:
        LinkSettings.from_mapping({"threshold": 1.5, "max_hops": "2", "bogus": 1})
    assert all(part in str(err.value) for part in ("'threshold' = 1.5", "'max_hops' must be an integer", "'bogus'"))
    with pytest.raises(ConfigError, match="review_floor"):
        LinkSettings.from_mapping({"threshold": 0.7, "review_floor": 0.8})


def test_linking_profiles_only_the_graph_parties_that_can_change_it() -> None:
    """Most of a candidate's graph neighbourhood only carries paths: a party that shares no phone with another
    (written in any format) and could not be a network member (by phone, or by an exact name few parties use)
    is left unprofiled, and linking finds exactly what it finds with every party profiled — the same resolved
    parties, matches and network paths."""
    from polars.testing import assert_frame_equal

    from followmoney.graph import Neighbourhood
    from followmoney.link import link_parties, parties_to_profile
    from followmoney.lists import empty_entries
    from followmoney.matching import MatchSettings
    from followmoney.parties import PartyDirectory, directory_rows, name_frequencies, profiles_of

    people = {  # party id: (name, phone)
        "S1": ("Seed Person", "+254 700 000 001"),  # the candidate's party
        "A": ("Plain Walker", "+254 700 000 002"),  # only carries the path S1 -> A -> M
        "B1": ("Juma Otieno", "+254 712 345 678"),
        "B2": ("Juma Otieno", "0712 345 678"),  # B1's phone, written locally: one person
        "M": ("Kofi Mensah", None),  # a network member's exact name
        "P": ("Someone Else", "0799 111 222"),  # a network member's phone
        "U": ("Short Number", "12345"),  # too few digits for a number of Kenya's: shares nothing
        "N1": ("Tala Pasene", "4002"),  # a whole number in Niue, whose numbers are short:
        "N2": ("Tala Pasene", "+683 4002"),  # N1's phone, written internationally
        "Z": ("Nobody Here", None),
        "K1": ("Kwame Asante", None),  # a member's name, but used by three parties: alone, only "possible"
        "K2": ("Kwame Asante", None),
        "K3": ("Kwame Asante", None),
    }
    directory = PartyDirectory.of(
        pl.DataFrame(
            {
                "party_id": list(people),
                "name": [n for n, _ in people.values()],
                "country": ["NU" if p.startswith("N") else "KE" for p in people],
                "phone": [p for _, p in people.values()],
                "len": [1] * len(people),
            },
            schema_overrides={"len": pl.UInt32},
        )
    )
    schema = empty_entries().schema
    entries = (
        pl.DataFrame(
            {
                "list_kind": ["network"] * 3,
                "list_id": ["E1", "E2", "E3"],
                "network_id": ["N-7", "N-7", "N-7"],
                "name": ["Kofi Mensah", "Ama Boateng", "Kwame Asante"],
                "names": [["Kofi Mensah"], ["Ama Boateng"], ["Kwame Asante"]],
                "phones": [[], ["+254 799 111 222"], []],
                "countries": [["KE"], ["KE"], ["KE"]],
            }
        )
        .with_columns(
            [
                pl.lit(None, dtype).alias(c)
                for c, dtype in schema.items()
                if c not in ("list_kind", "list_id", "network_id", "name", "names", "phones", "countries")
            ]
        )
        .select(list(schema))
    )
    pairs = [
        ("S1", "A"),
        ("A", "M"),
        ("S1", "B1"),
        ("B2", "P"),
        ("U", "S1"),
        ("Z", "S1"),
        ("S1", "N1"),
        ("N2", "Z"),
        ("K1", "S1"),
        ("K2", "A"),
        ("K3", "B2"),
    ]
    edges = pl.DataFrame({"sender_id": [a for a, _ in pairs], "receiver_id": [b for _, b in pairs]})
    graph = Neighbourhood(
        edges=edges.with_columns(pl.lit(1).alias("n_txns"), pl.lit(100.0).alias("total_usd")),
        hubs=pl.Series([], dtype=pl.String),
    )
    seeds = pl.Series(["S1"])
    rows = directory_rows(directory, pl.Series(list(people)))
    counts = name_frequencies(directory, profiles_of(rows))
    wanted = parties_to_profile(rows, seeds, entries, count_names=lambda names: counts)
    assert wanted.to_list() == ["B1", "B2", "M", "N1", "N2", "P", "S1"]
    every = profiles_of(rows)
    full = link_parties(every, entries, graph, name_counts=counts, seeds=seeds)
    pruned = link_parties(
        profiles_of(rows.filter(pl.col("party_id").is_in(wanted.implode()))),
        entries,
        graph,
        name_counts=counts,
        seeds=seeds,
    )
    assert_frame_equal(pruned.resolved, full.resolved)
    assert_frame_equal(pruned.matches, full.matches)
    assert_frame_equal(pruned.network, full.network)
    # What the comparison covers: B1 and B2 resolved as one party, and paths to both members, one through A.
    merged = full.resolved.filter(pl.col("party_id").is_in(["B2", "N2"]))["resolved_id"].to_list()
    assert merged == ["B1", "N1"]
    reach = dict(zip(full.network["party_id"].to_list(), full.network["hops"].to_list(), strict=True))
    assert reach["S1"] == 2 and reach["A"] == 1 and reach["B1"] == reach["B2"] == 1
    # A fuzzy name alone may match below FUZZY_NAME_ONLY: then every party is profiled.
    assert parties_to_profile(rows, seeds, entries, MatchSettings(threshold=0.3, review_floor=0.3)).len() == len(people)
