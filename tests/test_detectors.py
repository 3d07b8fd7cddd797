"""Detector kinds on tiny inline frames: each planted pattern next to its benign look-alike, and the evidence."""

from __future__ import annotations

import datetime as dt

import polars as pl
from conftest import T0, frame, txn

from followmoney.detectors import DETECTORS
from followmoney.normalise import party_keys
from followmoney.pipeline import apply_requirements, candidate_party_ids
from followmoney.rules import Rule

DAY = dt.timedelta(days=1)


def run(kind: str, rows: list[dict], **params: object) -> pl.DataFrame:
    detector = DETECTORS[kind]
    full = {name: spec.default for name, spec in detector.params.items()} | params
    return detector().detect(frame(rows).with_columns(party_keys()), full)


def test_structuring_band_and_sum_criteria_and_sides() -> None:
    rows = [txn(f"a{i}", "S1", f"R{i}", T0 + i * DAY, 9400.0 + 100 * i, agent=f"AG{i}") for i in range(3)]
    rows += [txn("b1", "S2", "R9", T0, 6000.0), txn("b2", "S2", "R9", T0 + dt.timedelta(hours=5), 5500.0)]
    rows += [txn("c1", "S3", "R8", T0, 9500.0), txn("c2", "S3", "R8", T0 + 30 * DAY, 9600.0)]  # spaced: benign
    out = run("near_threshold_window", rows, side="sender").sort("subject_id")
    assert out["subject_id"].to_list() == ["S1", "S2"]
    s1, s2 = out.row(0, named=True), out.row(1, named=True)
    assert s1["n_agents"] == 3 and "7 days" in s1["criteria"] and s1["direction"] == "sends"
    assert "1 day" in s2["criteria"] and "7 days" not in s2["criteria"] and s2["n_txns"] == 2
    receipts = run("near_threshold_window", rows, side="receiver")
    assert receipts["subject_id"].to_list() == ["R9"]  # S1's three receivers got one each: no receipt cluster


def test_structuring_in_eur_reads_amount_not_usd() -> None:
    rows = [txn(f"e{i}", "S1", "R1", T0 + i * DAY, 9600.0 * 1.08, currency="EUR", amount=9600.0) for i in range(3)] + [
        txn(f"u{i}", "S2", "R2", T0 + i * DAY, 9600.0) for i in range(3)
    ]
    out = run("near_threshold_window", rows, currency="EUR", side="sender")
    assert out["subject_id"].to_list() == ["S1"] and out["amount_max"][0] == 9600.0


def test_recurring_routes_and_robustness() -> None:
    jit = [0, 3, -2, 1, -3, 2, -1, 3]
    rows = [txn(f"d{i}", "P1", "OFF", T0 + (7 * i + j) * DAY, 100.0 + 3 * i) for i, j in enumerate(jit) if i != 4]
    rows += [txn(f"r{i}", f"N{i % 3}", "OFF2", T0 + 7 * i * DAY, 150.0) for i in range(9)]
    rows += [txn(f"v{i}", "P3", "MID", T0 + 14 * i * DAY, 200.0) for i in range(6)]
    rows += [txn(f"w{i}", "MID", "OFF3", T0 + (14 * i + 1) * DAY, 195.0) for i in range(6)]
    rows += [
        txn(f"x{i}", "P4", "R4", T0 + d * DAY, a) for i, (d, a) in enumerate([(0, 40), (3, 300), (50, 120), (52, 15)])
    ]
    out = run("recurring_pair", rows)
    got = {(r["route"], r["subject_id"], r["counterparty_id"]): r for r in out.iter_rows(named=True)}
    direct = got[("direct", "P1", "OFF")]
    assert direct["period_name"] == "weekly" and direct["missed_periods"] == 1 and direct["n_txns"] == 7
    rotating = got[("rotating", "N0", "OFF2")]
    assert rotating["n_payers"] == 3 and rotating["member_ids"] == ["N0", "N1", "N2"]
    via = got[("via", "P3", "OFF3")]
    assert via["period_name"] == "fortnightly" and via["via_id"] == "MID" and via["n_txns"] == 6
    assert len(via["txn_ids"]) == 12  # both legs are evidence
    assert not any(k[1] == "P4" for k in got)  # irregular, varying amounts: nothing


def test_recurring_drifting_amounts_pass_on_trend_adjusted_cv() -> None:
    rows = [txn(f"d{i}", "P1", "OFF", T0 + 7 * i * DAY, 100.0 * 1.1**i) for i in range(12)]
    out = run("recurring_pair", rows, rotating_payers=False)
    row = out.row(0, named=True)
    assert row["amount_cv"] > 0.25 >= row["amount_trend_cv"]
    assert run("recurring_pair", rows, rotating_payers=False, max_amount_cv=0.02).height == 0


def test_fan_in_smurfing_versus_shop() -> None:
    rows = [txn(f"m{i}", f"M{i}", "C1", T0 + i * DAY, 2500.0 + 50 * i) for i in range(6)]
    rows += [txn(f"k{i}", f"K{i}", "SHOP", T0 + i * dt.timedelta(hours=9), 30.0 + i) for i in range(20)]
    out = run("distinct_in_window", rows, min_amount_usd=500.0, max_amount_usd=3000.0)
    assert out["subject_id"].to_list() == ["C1"] and out["n_distinct"][0] == 6
    assert out["member_ids"][0].to_list() == [f"M{i}" for i in range(6)]


def test_fan_out_split_versus_payroll_repeat_share() -> None:
    rows = [txn(f"s{i}", "S1", f"R{i}", T0 + i * dt.timedelta(hours=8), 2800.0) for i in range(6)]
    rows += [txn(f"p{m}{i}", "EMP", f"W{i}", T0 + 30 * m * DAY, 1900.0) for m in range(3) for i in range(6)]
    params = {"party": "sender", "distinct": "receiver", "min_amount_usd": 1500.0, "max_amount_usd": 3000.0}
    everything = run("distinct_in_window", rows, **params)
    assert set(everything["subject_id"]) == {"S1", "EMP"}
    out = run("distinct_in_window", rows, **params, max_repeat_share=0.3)
    assert out["subject_id"].to_list() == ["S1"] and out["repeat_share"][0] == 0.0


def test_shared_phone_formats_and_cap() -> None:
    phones = ["+66 81 234 5678", "081-234-5678", "66812345678"]
    rows = [txn(f"v{i}", f"V{i}", "CTRL", T0 + i * DAY, 300.0, sender_phone=phones[i]) for i in range(3)]
    rows += [
        txn(f"a{i}", f"A{i}", f"X{i}", T0 + i * dt.timedelta(hours=2), 50.0, sender_phone="+6622223333")
        for i in range(12)
    ]
    params = {"party": "sender_phone", "distinct": "sender", "window_days": 30.0, "min_distinct": 3}
    assert set(run("distinct_in_window", rows, **params)["counterparty_id"].to_list()) == {"CTRL", None}
    out = run("distinct_in_window", rows, **params, max_distinct=10)  # the agent's shop phone is left out
    assert out["counterparty_id"].to_list() == ["CTRL"] and out["n_distinct"][0] == 3
    no_phone = frame(rows).drop("sender_phone").with_columns(party_keys())
    full = {n: s.default for n, s in DETECTORS["distinct_in_window"].params.items()} | params
    assert DETECTORS["distinct_in_window"]().detect(no_phone, full).height == 0


def test_pool_and_forward_versus_slow_household() -> None:
    rows = [txn(f"e{i}", f"E{i}", "C1", T0 + i * dt.timedelta(hours=6), 300.0) for i in range(4)]
    rows += [txn("o1", "C1", "BOSS", T0 + 30 * dt.timedelta(hours=1), 1150.0)]
    rows += [txn(f"k{i}", f"K{i}", "MOM", T0 + 2 * i * DAY, 200.0) for i in range(3)]
    rows += [txn("o2", "MOM", "SHOP", T0 + 12 * DAY, 500.0)]
    out = run("pool_and_forward", rows)
    assert out["subject_id"].to_list() == ["C1"]
    row = out.row(0, named=True)
    assert row["n_payers"] == 4 and row["forward_share"] == round(1150 / 1200, 3) and row["counterparty_id"] == "BOSS"
    assert "o1" in row["txn_ids"]


def test_oneoff_after_transfer() -> None:
    rows = [txn(f"h{i}", "P1", "FAM", T0 + (i - 6) * 10 * DAY, 50.0) for i in range(4)]
    rows += [txn("n1", "N1", "P1", T0, 2000.0), txn("x1", "P1", "OFF", T0 + DAY, 600.0)]
    rows += [txn(f"g{i}", "P2", "FAM2", T0 + (i - 6) * 10 * DAY, 50.0) for i in range(4)]
    rows += [txn("x2", "P2", "OFF", T0 + DAY, 600.0)]  # no transfer before it: not event-like
    out = run("oneoff_after_transfer", rows)
    assert out["subject_id"].to_list() == ["P1"]
    assert out["member_ids"][0].to_list() == ["N1", "P1"] and out["ratio"][0] == 12.0


def test_round_amounts() -> None:
    rows = [txn(f"r{i}", "P1", "R1", T0 + 9 * i * DAY, 100.0 * (i + 2)) for i in range(5)]
    rows += [txn(f"o{i}", "P2", "R2", T0 + 9 * i * DAY, 101.37 * (i + 2)) for i in range(5)]
    out = run("round_amounts", rows)
    assert out["subject_id"].to_list() == ["P1"] and out["round_share"][0] == 1.0


def test_round_amounts_at_the_share_boundary() -> None:
    """Only pairs with enough round transfers are counted whole: a pair of exactly min_count transfers with
    exactly min_round_share of them round (3 of 5 at 0.6) still qualifies, one round transfer fewer (2 of 5)
    does not, and a pair with more transfers needs its share (3 of 6 is 0.5); share 0 counts every pair."""

    def pair(sender: str, receiver: str, n: int, n_round: int) -> list[dict]:
        amounts = [100.0 * (i + 2) if i < n_round else 101.37 * (i + 2) for i in range(n)]
        return [txn(f"{sender}{i}", sender, receiver, T0 + 9 * i * DAY, a) for i, a in enumerate(amounts)]

    rows = pair("P1", "R1", 5, 3) + pair("P2", "R2", 5, 2) + pair("P3", "R3", 6, 3) + pair("P4", "R4", 6, 4)
    rows += pair("P5", "R5", 5, 0)
    out = run("round_amounts", rows, min_count=5, min_round_share=0.6)
    assert out["subject_id"].to_list() == ["P1", "P4"]
    assert out["n_round"].to_list() == [3, 4] and out["n_txns"].to_list() == [5, 6]
    # No round transfer needed: every pair of five or more transfers qualifies, one without any too.
    every = run("round_amounts", rows, min_count=5, min_round_share=0.0)
    assert every["subject_id"].to_list() == ["P1", "P2", "P3", "P4", "P5"]


def _rule(code: str, kind: str, **requires: object) -> Rule:
    from pathlib import Path

    return Rule(code, "x", "t", kind, 0.5, "s", "s", "r", {}, dict(requires), (), Path(f"{code}.toml"), "")  # type: ignore[arg-type]


def test_requirements_read_member_networks_from_matches() -> None:
    linked = pl.DataFrame(
        {
            "rule_code": ["FM120", "FM120", "FM121", "FM140", "FM140", "FM190"],
            "subject_id": ["A", "C", "OFF", "A", "Z", "Z"],
            "counterparty_id": ["OFF", "OFF", None, "B", "B", None],
            "counterparty_official": [True, True, False, False, False, False],
            "official_id": ["O1", "O1", "O2", None, None, None],
            "network_hops": [None, None, None, None, None, None],
            "member_ids": [["A", "B"], ["C", "D"], ["A", "Q"], None, None, None],
        },
        schema_overrides={"network_hops": pl.Int64},
    )
    matches = pl.DataFrame(
        {
            "party_id": ["A", "B", "C", "D"],
            "list_kind": ["network"] * 4,
            "list_id": ["e1", "e2", "e3", "e4"],
            "network_id": ["N1", "N1", "N1", "N2"],
        }
    )
    rules = [
        _rule("FM120", "recurring_pair", counterparty_official=True, payers_one_network=True),
        _rule("FM121", "distinct_in_window", subject_official=True, min_network_members=1),
        _rule("FM140", "round_amounts", alone=True),
        _rule("FM190", "anomaly"),  # the anomaly kind defers to rules: it does not silence `alone` rules
    ]
    kept = apply_requirements(linked, rules, matches)
    assert kept.select("rule_code", "subject_id").rows() == [
        ("FM120", "A"),
        ("FM121", "OFF"),
        ("FM140", "Z"),
        ("FM190", "Z"),
    ]
    assert sorted(candidate_party_ids(linked).to_list()) == ["A", "B", "C", "D", "OFF", "Q", "Z"]


def test_listed_requirement_keeps_only_direct_list_links() -> None:
    # FM140 is a supporting signal: a round-sum pair reaches the desk only with a listed official or a
    # listed network member on it, not through a network two transfers away, and never on no list at all.
    linked = pl.DataFrame(
        {
            "rule_code": ["FM140"] * 4,
            "subject_id": ["OFFICIAL_PAID", "MEMBER", "NEAR", "FAMILY"],
            "counterparty_id": ["OFF", "B", "C", "MUM"],
            "counterparty_official": [True, False, False, False],
            "official_id": ["O1", None, None, None],
            "network_hops": [None, 0, 2, None],
        },
        schema_overrides={"network_hops": pl.Int64},
    )
    rules = [_rule("FM140", "round_amounts", alone=True, subject_or_counterparty_listed=True)]
    kept = apply_requirements(linked, rules)
    assert kept["subject_id"].to_list() == ["OFFICIAL_PAID", "MEMBER"]
