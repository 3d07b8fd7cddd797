"""features.mixed_pair_key folds a (sender key, receiver key) pair into one 64-bit number. Two pairs can share
that number; its users claim a shared number changes no result. These tests force such a collision (the
party keys are chosen so that both pairs mix to the same number) and check the claim."""

from __future__ import annotations

import datetime as dt

import polars as pl
from polars.testing import assert_frame_equal

from followmoney import schema as S
from followmoney.detectors import DETECTORS
from followmoney.features import RARITY, mixed_pair_key, pair_features
from followmoney.normalise import RECEIVER_KEY, SENDER_KEY

MIX = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1
T0 = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)


def _colliding_keys() -> tuple[tuple[int, int], tuple[int, int]]:
    """Two different (sender key, receiver key) pairs with the same mixed number."""
    s1, r1 = 0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321
    s2, r2 = s1 + 1, (r1 - MIX) & MASK  # (s1 + 1) * MIX + r1 - MIX == s1 * MIX + r1 (mod 2^64)
    return (s1, r1), (s2, r2)


def _mixed(pairs: list[tuple[int, int]]) -> list[int]:
    keys = pl.DataFrame(
        {SENDER_KEY: [p[0] for p in pairs], RECEIVER_KEY: [p[1] for p in pairs]},
        schema={SENDER_KEY: pl.UInt64, RECEIVER_KEY: pl.UInt64},
    )
    return keys.select(mixed_pair_key())[SENDER_KEY].to_list()


def _rows(specs: list[tuple[tuple[int, int], str, str, float, int]]) -> pl.DataFrame:
    """Transfers (keys, sender id, receiver id, amount, day) with the columns pair_features and FM140 read."""
    return pl.DataFrame(
        {
            SENDER_KEY: [k[0] for k, *_ in specs],
            RECEIVER_KEY: [k[1] for k, *_ in specs],
            S.SENDER_ID: [s for _, s, *_ in specs],
            S.RECEIVER_ID: [r for _, _, r, *_ in specs],
            S.TS: [T0 + dt.timedelta(days=d) for *_, d in specs],
            S.AMOUNT: [a for *_, a, _ in specs],
            S.AMOUNT_USD: [a for *_, a, _ in specs],
            S.CURRENCY: ["USD"] * len(specs),
            S.TXN_ID: [f"T{i}" for i in range(len(specs))],
            RARITY: [0.5 + i for i in range(len(specs))],
        },
        schema_overrides={SENDER_KEY: pl.UInt64, RECEIVER_KEY: pl.UInt64},
    )


def test_the_constructed_pairs_do_collide() -> None:
    a, b = _colliding_keys()
    assert a != b
    assert _mixed([a]) == _mixed([b])


def test_pair_features_of_colliding_lone_pairs_are_their_own() -> None:
    """Two lone transfers whose pairs share a mixed number are counted together (2) and take the repeated
    path; each must still get exactly the features it gets alone."""
    a, b = _colliding_keys()
    both = _rows([(a, "S1", "R1", 120.0, 0), (b, "S2", "R2", 75.5, 3)])
    together = pair_features(both.lazy()).collect().sort(SENDER_KEY)
    apart = pl.concat([pair_features(both.slice(i, 1).lazy()).collect() for i in range(2)], how="vertical_relaxed")
    assert_frame_equal(together, apart.sort(SENDER_KEY).select(together.columns), check_dtypes=False)
    assert together["pair_n"].to_list() == [1.0, 1.0]


def test_round_amounts_does_not_add_a_pair_through_a_collision() -> None:
    """FM140's first count runs on the mixed number: 3 + 2 round transfers of two colliding pairs make 5,
    enough for min_count 5; the count by ids must still reject both pairs."""
    a, b = _colliding_keys()
    rows = _rows([(a, "S1", "R1", 500.0, d) for d in range(3)] + [(b, "S2", "R2", 300.0, d) for d in range(2)])
    params = {"min_count": 5, "min_round_share": 0.6, "unit": 100.0, "min_amount": 100.0}
    assert DETECTORS["round_amounts"]().detect(rows, params).height == 0
    # The same pair with five round transfers is found: the rejection above is the id count, not a broken test.
    five = _rows([(a, "S1", "R1", 500.0, d) for d in range(5)])
    found = DETECTORS["round_amounts"]().detect(five, params)
    assert found["subject_id"].to_list() == ["S1"] and found["n_txns"].to_list() == [5]
