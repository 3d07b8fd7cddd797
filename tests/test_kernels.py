"""Every Numba kernel against a plain-Python twin written from its docstring, on hypothesis-generated inputs.

Amounts are whole numbers (as floats) so sums are exact and the twins can add in any order.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from followmoney.kernels import (
    forwarded_amounts,
    group_gap_cv,
    group_slices,
    group_sums_cv,
    partition_copies,
    payer_time_stats,
    schedule_regularity,
    schedule_regularity_threads,
    window_clusters,
    window_distinct,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def grouped_rows(draw: st.DrawFn, max_groups: int = 5, max_rows: int = 12, max_code: int = 5) -> dict:
    """Groups of rows sorted by time: (starts, ts, codes, values)."""
    sizes = draw(st.lists(st.integers(0, max_rows), min_size=0, max_size=max_groups))
    ts: list[int] = []
    codes: list[int] = []
    values: list[float] = []
    for size in sizes:
        ts.extend(sorted(draw(st.lists(st.integers(0, 40), min_size=size, max_size=size))))
        codes.extend(draw(st.lists(st.integers(0, max_code), min_size=size, max_size=size)))
        values.extend(float(v) for v in draw(st.lists(st.integers(1, 9), min_size=size, max_size=size)))
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return {
        "starts": starts,
        "ts": np.array(ts, dtype=np.int64),
        "codes": np.array(codes, dtype=np.int64),
        "values": np.array(values, dtype=np.float64),
        "window": draw(st.integers(1, 15)),
        "min_count": draw(st.integers(1, 4)),
        "min_total": float(draw(st.integers(0, 20))),
    }


def _clusters_twin(starts, ts, qualifies, window) -> list[int]:
    """Rows of qualifying windows [t_i, t_i + window); windows sharing a row share a cluster id."""
    out = [-1] * len(ts)
    cluster = -1
    for g in range(len(starts) - 1):
        a, b = int(starts[g]), int(starts[g + 1])
        end = a  # rows [.., end) of this group are already in a cluster
        for i in range(a, b):
            rows = [k for k in range(i, b) if ts[k] - ts[i] < window]
            if not qualifies(rows):
                continue
            if i >= end:
                cluster += 1
            for k in rows:
                if out[k] < 0:
                    out[k] = cluster
            end = max(end, rows[-1] + 1)
    return out


@SETTINGS
@given(grouped_rows())
def test_window_clusters_matches_twin(d: dict) -> None:
    got = window_clusters(d["starts"], d["ts"], d["values"], d["window"], d["min_count"], d["min_total"])
    want = _clusters_twin(
        d["starts"],
        d["ts"],
        lambda rows: len(rows) >= d["min_count"] and sum(d["values"][k] for k in rows) >= d["min_total"],
        d["window"],
    )
    assert got.tolist() == want


@SETTINGS
@given(grouped_rows())
def test_window_distinct_matches_twin(d: dict) -> None:
    got = window_distinct(d["starts"], d["ts"], d["codes"], d["values"], d["window"], d["min_count"], d["min_total"])
    want = _clusters_twin(
        d["starts"],
        d["ts"],
        lambda rows: (
            len({int(d["codes"][k]) for k in rows}) >= d["min_count"]
            and sum(d["values"][k] for k in rows) >= d["min_total"]
        ),
        d["window"],
    )
    assert got.tolist() == want


def _forwarded_twin(starts, ts, inflow, amounts, horizon) -> list[float]:
    """Each send uses up the oldest receipts (FIFO) received at most `horizon` before it."""
    left = [float(a) if f else 0.0 for a, f in zip(amounts, inflow, strict=True)]
    out = [0.0] * len(ts)
    for g in range(len(starts) - 1):
        for i in range(int(starts[g]), int(starts[g + 1])):
            if inflow[i]:
                continue
            need = float(amounts[i])
            for k in range(int(starts[g]), i):
                if need <= 0:
                    break
                if inflow[k] and left[k] > 0 and ts[i] - ts[k] <= horizon:
                    use = min(left[k], need)
                    left[k] -= use
                    out[k] += use
                    need -= use
    return out


@SETTINGS
@given(grouped_rows(), st.integers(0, 20))
def test_forwarded_amounts_matches_twin(d: dict, horizon: int) -> None:
    inflow = d["codes"] % 2 == 0
    # receipts before sends at the same instant, as the detector sorts them
    order = np.lexsort((~inflow, d["ts"], np.repeat(np.arange(len(d["starts"]) - 1), np.diff(d["starts"]))))
    ts, flags, amounts = d["ts"][order], inflow[order], d["values"][order]
    got = forwarded_amounts(d["starts"], ts, flags, amounts, horizon)
    assert got.tolist() == _forwarded_twin(d["starts"], ts, flags, amounts, horizon)


# --- schedule_regularity -------------------------------------------------------------------------------


def _arc_twin(phase: list[float], period: float, width: float) -> float:
    ph = sorted(phase)
    n = len(ph)
    doubled = ph + [p + period for p in ph]
    best, best_rows = -1, []
    for i in range(n):
        rows = [doubled[j] for j in range(i, i + n) if doubled[j] - doubled[i] <= width]
        if len(rows) > best:
            best, best_rows = len(rows), rows
    centre = sum(best_rows) / len(best_rows)
    return centre - math.floor(centre / period) * period


def _slots_twin(t: list[float], anchor: float, period: float, tol: float) -> tuple[list[float], list[bool]]:
    slot = [math.floor((x - anchor) / period + 0.5) * 1.0 for x in t]
    dev = [abs(x - (anchor + m * period)) for x, m in zip(t, slot, strict=True)]
    use = [d <= tol for d in dev]
    by_slot: dict[float, int] = {}
    for i in range(len(t)):
        if not use[i]:
            continue
        j = by_slot.get(slot[i])
        if j is None:
            by_slot[slot[i]] = i
        elif dev[i] < dev[j]:
            use[j] = False
            by_slot[slot[i]] = i
        else:
            use[i] = False
    return slot, use


def _fit_twin(t: list[float], slot: list[float], use: list[bool]):
    pts = [(m, x) for m, x, u in zip(slot, t, use, strict=True) if u]
    cnt = len(pts)
    if cnt < 3:
        return 0.0, 0.0, 0.0, 0.0, cnt, 0
    mm = sum(m for m, _ in pts) / cnt
    tm = sum(x for _, x in pts) / cnt
    sxx = sum((m - mm) * (m - mm) for m, _ in pts)
    if sxx <= 0:
        return 0.0, 0.0, 0.0, 0.0, cnt, 0
    b = sum((m - mm) * (x - tm) for m, x in pts) / sxx
    a = tm - b * mm
    res = [x - (a + b * m) for m, x in pts]
    return (
        a,
        b,
        math.sqrt(sum(r * r for r in res) / cnt),
        max(abs(r) for r in res),
        cnt,
        int(pts[-1][0] - pts[0][0] + 1) - cnt,
    )


def _schedule_twin(t_all, periods, max_missed, max_cv, max_err, jitter, max_extra):
    """Straight from schedule_regularity's docstring, one group at a time."""
    factors = [1.0, 0.92, 1.08]
    n = len(t_all)
    if n < 3:
        return (0.0, 0, 0, [False] * n)
    t = [x - t_all[0] for x in t_all]
    best = None
    for nominal in periods:
        tol = min(jitter + 0.05 * nominal, 0.5 * nominal)
        perfect = False
        for f in factors:
            if perfect:
                break
            p = nominal * f
            centre = _arc_twin([x - math.floor(x / p) * p for x in t], p, 2 * tol)
            for shift in (0.0, -0.5, 0.5):
                if perfect:
                    break
                slot, use = _slots_twin(t, centre + shift * tol, p, tol)
                a, b, rms, _, cnt, missed = _fit_twin(t, slot, use)
                for _ in range(2):
                    if cnt < 3 or b <= 0:
                        break
                    new_slot, new_use = _slots_twin(t, a, b, tol)
                    kept = [m for m, u in zip(slot, use, strict=True) if u]
                    new_kept = [m for m, u in zip(new_slot, new_use, strict=True) if u]
                    if new_use == use and len({x - y for x, y in zip(new_kept, kept, strict=True)}) <= 1:
                        break  # same points on the same slots (up to renumbering)
                    slot, use = new_slot, new_use
                    a, b, rms, _, cnt, missed = _fit_twin(t, slot, use)
                if cnt < 3 or b <= 0:
                    continue
                cv = rms / b
                if missed > max_missed or (n - cnt) > max_extra * n or cv > max_cv or abs(b / nominal - 1) > max_err:
                    continue
                if cnt == n and missed == 0:
                    perfect = True
                key = (-cnt, missed, cv)
                if best is None or key < best[0]:
                    best = (key, nominal, missed, cnt, use)
    if best is None:
        return (0.0, 0, 0, [False] * n)
    return (best[1], best[2], best[3], best[4])


@st.composite
def series(draw: st.DrawFn) -> list[list[float]]:
    """Groups of payment times (days): jittered schedules with gaps and strays, or plain random times."""
    groups = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            period = draw(st.sampled_from([7.0, 14.0, 30.4375]))
            n = draw(st.integers(3, 12))
            jit = draw(st.lists(st.floats(-3.5, 3.5), min_size=n, max_size=n))
            skip = draw(st.sets(st.integers(0, n - 1), max_size=2))
            times = [i * period * draw(st.sampled_from([1.0, 1.03])) + jit[i] for i in range(n) if i not in skip]
            times += draw(st.lists(st.floats(0, n * period), max_size=3))
        else:
            times = draw(st.lists(st.floats(0, 200), min_size=0, max_size=10))
        groups.append(sorted(100.0 + x for x in times))
    return groups


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series(), st.integers(0, 3), st.floats(0.1, 0.5), st.floats(0.2, 0.7))
def test_schedule_regularity_matches_twin(groups, max_missed, max_cv, max_extra) -> None:
    periods = np.array([30.4375, 14.0, 7.0])
    starts = np.concatenate([[0], np.cumsum([len(g) for g in groups])]).astype(np.int64)
    t = np.array([x for g in groups for x in g], dtype=np.float64)
    period, _p_hat, _cv, _dev, missed, used_n, used = schedule_regularity(
        starts, t, periods, max_missed, max_cv, 0.2, 3.0, max_extra
    )
    for g, times in enumerate(groups):
        want_period, want_missed, want_used, want_rows = _schedule_twin(
            times, list(periods), max_missed, max_cv, 0.2, 3.0, max_extra
        )
        assert period[g] == want_period
        if want_period:
            assert (missed[g], used_n[g]) == (want_missed, want_used)
        assert used[starts[g] : starts[g + 1]].tolist() == want_rows


def test_schedule_regularity_finds_jittered_weekly_with_gaps_and_strays() -> None:
    """A concrete planted series: weekly, +-3 days of jitter, two missed weeks, two stray payments."""
    jit = [0, 3, -2, 1, -3, 2, -1, 3, 0, -2, 1, 2]
    times = [7.0 * i + j for i, j in enumerate(jit) if i not in (4, 9)] + [10.5, 51.0]
    t = np.array(sorted(times), dtype=np.float64)
    period, p_hat, cv, _dev, missed, used_n, used = schedule_regularity(
        np.array([0, t.size], dtype=np.int64), t, np.array([30.4375, 14.0, 7.0]), 2, 0.35, 0.2, 3.0, 0.5
    )
    assert period[0] == 7.0 and abs(p_hat[0] - 7.0) < 0.5 and cv[0] < 0.35
    assert missed[0] == 2 and used_n[0] == 10 and int(used.sum()) == 10


def test_schedule_regularity_rarely_fits_random_times() -> None:
    """12 payments at random over half a year: a schedule is found for very few of 100 such series."""
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 180, (100, 12)), axis=1).ravel()
    starts = np.arange(0, t.size + 1, 12, dtype=np.int64)
    period, *_ = schedule_regularity(starts, t, np.array([30.4375, 14.0, 7.0]), 2, 0.35, 0.2, 3.0, 0.25)
    assert (period > 0).sum() <= 8


def test_schedule_regularity_in_threads_equals_one_call() -> None:
    """Runs of groups fitted in several threads give exactly the single call's arrays (groups are independent)."""
    rng = np.random.default_rng(11)
    sizes = rng.integers(0, 15, 400)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    weekly = rng.random(400) < 0.5
    t = np.concatenate(
        [
            np.sort(7.0 * np.arange(n) + rng.uniform(-2, 2, n)) if w else np.sort(rng.uniform(0, 120, n))
            for n, w in zip(sizes, weekly, strict=True)
        ]
    ).astype(np.float64)
    args = (
        np.array([30.4375, 14.0, 7.0]),
        np.int64(2),
        np.float64(0.35),
        np.float64(0.2),
        np.float64(3.0),
        np.float64(0.25),
    )
    single = schedule_regularity(starts, t, *args)
    assert (single[0] > 0).sum() > 50  # the fit finds schedules here, so equality below means something
    for threads in (2, 3, 7):
        assert len(group_slices(starts, threads, min_rows=0)) > 1
        threaded = schedule_regularity_threads(starts, t, *args, threads=threads, min_rows=0)
        for want, got in zip(single, threaded, strict=True):
            np.testing.assert_array_equal(want, got)


def test_group_slices_cover_every_group_once() -> None:
    starts = np.array([0, 5, 5, 9, 30, 31, 40], dtype=np.int64)
    for parts in (1, 2, 3, 6, 10):
        slices = group_slices(starts, parts, min_rows=0)
        assert slices[0][0] == 0 and slices[-1][1] == 6
        assert all(a < b for a, b in slices) and all(slices[i][1] == slices[i + 1][0] for i in range(len(slices) - 1))
    assert group_slices(starts, 4) == [(0, 6)]  # below min_rows: one run


def _copies_twin(sender, receiver, phone):
    """Every copy (row, partition, primary) as the partitioner describes it, sorted by (partition, row)."""
    copies = []
    for i, (s, r, ph) in enumerate(zip(sender, receiver, phone, strict=True)):
        copies.append((int(s), i, True))
        if r != s:
            copies.append((int(r), i, False))
        if ph >= 0 and ph not in (s, r):
            copies.append((int(ph), i, False))
    copies.sort()
    return [c[1] for c in copies], [c[0] for c in copies], [c[2] for c in copies]


@SETTINGS
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(-1, n - 1)), max_size=40),
        )
    )
)
def test_partition_copies_matches_twin(case) -> None:
    n_parts, rows = case
    sender = np.array([r[0] for r in rows], dtype=np.int64)
    receiver = np.array([r[1] for r in rows], dtype=np.int64)
    phone = np.array([r[2] for r in rows], dtype=np.int64)
    got = partition_copies(sender, receiver, phone, np.int64(n_parts))
    want = _copies_twin(sender, receiver, phone)
    for g, w in zip(got, want, strict=True):
        assert g.tolist() == list(w)


def _cv_twin(x: list[float]) -> float:
    """Population std over mean, added up in order; 0 when nothing varies around a zero mean."""
    total = 0.0
    for v in x:
        total += v
    mean = total / len(x)
    squares = 0.0
    for v in x:
        squares += (v - mean) ** 2
    std = math.sqrt(squares / len(x))
    if mean == 0:
        return 0.0 if std == 0 else math.inf
    return std / mean


@SETTINGS
@given(grouped_rows())
def test_group_sums_cv_and_gap_cv_match_twins(d: dict) -> None:
    starts, ts, values = d["starts"], d["ts"], d["values"]
    sums, cvs = group_sums_cv(starts, values)
    gap = group_gap_cv(starts, ts * 1_000_000)
    for g in range(starts.shape[0] - 1):
        a, b = int(starts[g]), int(starts[g + 1])
        if a == b:
            assert sums[g] == 0 and math.isnan(cvs[g]) and math.isnan(gap[g])
            continue
        rows = values[a:b].tolist()
        assert sums[g] == sum(rows)
        assert cvs[g] == _cv_twin(rows)
        if b - a < 3:
            assert math.isnan(gap[g])
        else:
            assert gap[g] == _cv_twin([float(ts[i] - ts[i - 1]) for i in range(a + 1, b)])


def test_group_sums_follow_row_order_not_a_tree() -> None:
    """Added left to right: (1e16 + 1) + 1 loses both ones where a pairwise sum would keep them."""
    sums, _ = group_sums_cv(np.array([0, 3], dtype=np.int64), np.array([1e16, 1.0, 1.0]))
    assert sums[0] == 1e16


@SETTINGS
@given(grouped_rows(), st.integers(1, 12))
def test_payer_time_stats_matches_twin(d: dict, week: int) -> None:
    """Rows of a group come in input order, not time order: the kernel takes them in time order (stable)."""
    starts, values = d["starts"], d["values"]
    rng = np.random.default_rng(int(starts[-1]))
    ts = rng.integers(0, 40, starts[-1]).astype(np.int64)  # unsorted within groups, with ties
    sums, gap, busiest = payer_time_stats(starts, ts * 1_000_000, values, np.int64(week * 1_000_000))
    for g in range(starts.shape[0] - 1):
        a, b = int(starts[g]), int(starts[g + 1])
        rows = sorted(range(a, b), key=lambda i: (ts[i], i))
        total = 0.0
        for i in rows:
            total += values[i]
        assert sums[g] == total
        weeks = [int(ts[i]) // week for i in rows]
        assert busiest[g] == (max(weeks.count(w) for w in weeks) if weeks else 0)
        if b - a < 3:
            assert math.isnan(gap[g])
        else:
            assert gap[g] == _cv_twin([float(ts[rows[k]] - ts[rows[k - 1]]) for k in range(1, len(rows))])


_PHONE_TEXT = st.text(
    alphabet=st.sampled_from(
        [*"0123456789", *"0123456789", " ", "-", "+", "(", ")", ".", "x", "\u00a0", "๐", "๘", "٣", "۵", "१", "８", "é"]
    ),
    max_size=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), _PHONE_TEXT), min_size=1, max_size=60), st.integers(1, 80))
def test_phone_parts_equal_the_phone_key_expression(phones: list[str | None], n_parts: int) -> None:
    """The partitioner reads each phone's partition from its bytes (kernels.phone_tail_numbers); it must be
    the partition of the key a phone rule's candidates carry (phone_owner_key of phone_digits), or a phone's
    candidates would be dropped as owned elsewhere. Texts with other scripts' digits (Thai, Arabic-Indic),
    non-breaking spaces, too few digits and nulls included."""
    import polars as pl

    from followmoney import schema as S
    from followmoney.partition import part_of, phone_key, phone_parts

    series = pl.Series(S.SENDER_PHONE, phones, dtype=pl.String)
    expected = series.to_frame().select(part_of(phone_key(), n_parts)).to_series().cast(pl.Int64).fill_null(-1)
    assert phone_parts(series, n_parts).tolist() == expected.to_list()
    # A slice of a larger column (a non-zero Arrow offset) reads the same.
    longer = pl.concat([pl.Series(S.SENDER_PHONE, ["+1 206 275 5975"] * 3, dtype=pl.String), series]).slice(3)
    assert phone_parts(longer, n_parts).tolist() == expected.to_list()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), _PHONE_TEXT), min_size=1, max_size=60))
def test_phone_group_keys_stand_for_the_phone_digits_exactly(phones: list[str | None]) -> None:
    """A phone rule groups phones by keys read from their bytes (phones.phone_group_keys): they must equal the
    expression on phone_digits' text, and two phones must share a key exactly when they share that text
    (leading zeros, other scripts' digits, non-breaking spaces, too few digits and nulls included)."""
    import polars as pl

    from followmoney import schema as S
    from followmoney.phones import phone_digits, phone_group_key, phone_group_keys

    series = pl.Series(S.SENDER_PHONE, [*phones, "012345678", "12345678"], dtype=pl.String)
    keys = phone_group_keys(series)
    digits = series.to_frame().select(phone_digits(S.SENDER_PHONE)).to_series()
    assert (
        keys.to_list() == series.to_frame().select(phone_group_key(phone_digits(S.SENDER_PHONE))).to_series().to_list()
    )
    assert keys.is_null().to_list() == digits.is_null().to_list()
    pairs = pl.DataFrame({"key": keys, "digits": digits}).drop_nulls().unique()
    assert pairs["key"].n_unique() == pairs["digits"].n_unique() == pairs.height


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), _PHONE_TEXT), min_size=1, max_size=60))
def test_python_and_polars_read_the_same_phone_digits(phones: list[str | None]) -> None:
    """matching.phone_key's fallbacks read digits in Python (phones.ascii_digits_of): the same as Polars'."""
    import polars as pl

    from followmoney.phones import ascii_digits, ascii_digits_of

    series = pl.Series("phone", phones, dtype=pl.String)
    digits = series.to_frame().select(ascii_digits(pl.col("phone"))).to_series().to_list()
    assert digits == [None if p is None else ascii_digits_of(p) for p in phones]


def test_a_number_has_the_same_digits_keys_and_tails_in_every_script() -> None:
    import polars as pl

    from followmoney.parties import with_phone_tails
    from followmoney.phones import phone_digits, phone_group_keys, phone_owner_key

    zeros = {"ascii": "0", "arabic-indic": "٠", "persian": "۰", "devanagari": "०", "thai": "๐", "fullwidth": "０"}
    texts = ["+" + "".join(chr(ord(z) + int(d)) for d in "971501234567") for z in zeros.values()]
    series = pl.Series("phone", [t[:4] + "\u00a0" + t[4:] for t in texts], dtype=pl.String)
    frame = series.to_frame()
    assert frame.select(phone_digits("phone")).to_series().to_list() == ["501234567"] * len(zeros)
    assert phone_group_keys(series).n_unique() == 1
    assert frame.select(phone_owner_key(phone_digits("phone"))).to_series().n_unique() == 1
    tails = with_phone_tails(frame.lazy()).select("tail7", "tail8").unique().collect()
    assert tails.to_dicts() == [{"tail7": 1234567, "tail8": 1234567}]


def test_phone_tail_numbers_reads_the_last_nine_ascii_digits() -> None:
    import pyarrow as pa

    from followmoney.kernels import PHONE_TAIL_NONE, PHONE_TAIL_OTHER, phone_tail_numbers

    texts = pa.array(["+1 206 275 5975", "415-220-9157", "123456", None, "0012345678901", "+66\u00a0812", "1234567"])
    arr = texts.cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[: len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    valid = np.array([v is not None for v in texts.to_pylist()])
    got = phone_tail_numbers(np.ascontiguousarray(offsets), data, valid).tolist()
    assert got == [62755975, 152209157, PHONE_TAIL_NONE, PHONE_TAIL_NONE, 345678901, PHONE_TAIL_OTHER, 1234567]
    coded = phone_tail_numbers(np.ascontiguousarray(offsets), data, valid, True).tolist()
    assert coded == [62755975 * 16 + 9, 152209157 * 16 + 9, *got[2:4], 345678901 * 16 + 9, got[5], 1234567 * 16 + 7]
