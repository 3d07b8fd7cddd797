"""Numba kernels: the loops Polars cannot express, over sorted contiguous arrays with group offsets.

numpy in, numpy out; no polars here. Every kernel has a plain-Python twin in tests/ that it must match.
Group offsets: `starts` has one entry per group plus a final entry equal to the number of rows;
rows of group g are `starts[g]:starts[g+1]`, sorted by time within the group.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def window_clusters(
    starts: np.ndarray,
    ts: np.ndarray,
    values: np.ndarray,
    window: np.int64,
    min_count: np.int64,
    min_total: np.float64,
) -> np.ndarray:
    """Cluster id per row (-1 = none) for rows inside any time window [t, t+window) of one group
    holding >= min_count rows whose values sum to >= min_total; overlapping windows share an id."""
    n = ts.shape[0]
    out = np.full(n, -1, dtype=np.int64)
    cluster = -1
    for g in range(starts.shape[0] - 1):
        a = starts[g]
        b = starts[g + 1]
        j = a
        total = 0.0
        marked_until = a  # rows [.., marked_until) of this group already carry an id
        for i in range(a, b):
            if j < i:
                j = i
                total = 0.0
            while j < b and ts[j] - ts[i] < window:
                total += values[j]
                j += 1
            if j - i >= min_count and total >= min_total:
                if i >= marked_until:
                    cluster += 1  # no overlap with the previous qualifying window
                for k in range(max(i, marked_until), j):
                    out[k] = cluster
                if j > marked_until:
                    marked_until = j
            total -= values[i]
    return out


@njit(cache=True, nogil=True)
def window_distinct(
    starts: np.ndarray,
    ts: np.ndarray,
    codes: np.ndarray,
    values: np.ndarray,
    window: np.int64,
    min_distinct: np.int64,
    min_total: np.float64,
) -> np.ndarray:
    """Cluster id per row (-1 = none) for rows inside any time window [t, t+window) of one group
    holding >= min_distinct distinct codes (dense ints >= 0) whose values sum to >= min_total;
    overlapping windows share an id (the distinct-count twin of `window_clusters`)."""
    n = ts.shape[0]
    out = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return out
    counts = np.zeros(codes.max() + 1, dtype=np.int64)
    cluster = -1
    for g in range(starts.shape[0] - 1):
        a = starts[g]
        b = starts[g + 1]
        j = a
        total = 0.0
        distinct = 0
        marked_until = a
        for i in range(a, b):
            if j < i:
                j = i
                total = 0.0
                distinct = 0
            while j < b and ts[j] - ts[i] < window:
                total += values[j]
                if counts[codes[j]] == 0:
                    distinct += 1
                counts[codes[j]] += 1
                j += 1
            if distinct >= min_distinct and total >= min_total:
                if i >= marked_until:
                    cluster += 1
                for k in range(max(i, marked_until), j):
                    out[k] = cluster
                if j > marked_until:
                    marked_until = j
            if j > i:  # row i leaves the window
                total -= values[i]
                counts[codes[i]] -= 1
                if counts[codes[i]] == 0:
                    distinct -= 1
    return out


@njit(cache=True, nogil=True)
def forwarded_amounts(
    starts: np.ndarray,
    ts: np.ndarray,
    inflow: np.ndarray,
    amounts: np.ndarray,
    horizon: np.int64,
) -> np.ndarray:
    """Per inflow row, how much of it the party sent on within `horizon` (first in, first out).

    Rows of a group are one party's receipts (inflow=True) and sends (inflow=False) sorted by time
    (receipts before sends at the same instant); each send uses up the oldest receipts that are no
    older than `horizon`. Send rows get 0."""
    n = ts.shape[0]
    left = np.zeros(n, dtype=np.float64)
    out = np.zeros(n, dtype=np.float64)
    for g in range(starts.shape[0] - 1):
        a = starts[g]
        b = starts[g + 1]
        head = a  # rows before head are sends, used up or too old for every later send
        for i in range(a, b):
            if inflow[i]:
                left[i] = amounts[i]
                continue
            while head < i and ((not inflow[head]) or left[head] <= 0.0 or ts[i] - ts[head] > horizon):
                head += 1
            need = amounts[i]
            k = head
            while k < i and need > 0.0:
                if inflow[k] and left[k] > 0.0 and ts[i] - ts[k] <= horizon:
                    use = min(left[k], need)
                    left[k] -= use
                    out[k] += use
                    need -= use
                k += 1
    return out


@njit(cache=True, nogil=True)
def _densest_arc(phase: np.ndarray, period: float, width: float) -> float:
    """Centre (in [0, period)) of the arc of `width` on a circle of `period` holding most phases."""
    n = phase.shape[0]
    ph = np.sort(phase)
    doubled = np.empty(2 * n, dtype=np.float64)
    for i in range(n):
        doubled[i] = ph[i]
        doubled[n + i] = ph[i] + period
    best = -1
    best_i = 0
    best_j = 0
    j = 0
    for i in range(n):
        if j < i:
            j = i
        while j < i + n and doubled[j] - doubled[i] <= width:
            j += 1
        if j - i > best:
            best = j - i
            best_i = i
            best_j = j
    s = 0.0
    for k in range(best_i, best_j):
        s += doubled[k]
    centre = s / (best_j - best_i)
    return centre - np.floor(centre / period) * period


@njit(cache=True, nogil=True)
def _assign_slots(t: np.ndarray, anchor: float, period: float, tol: float, slot: np.ndarray, use: np.ndarray) -> None:
    """slot[i] = nearest schedule point anchor + slot*period; use[i] = within tol and the closest of its slot."""
    n = t.shape[0]
    for i in range(n):
        m = np.floor((t[i] - anchor) / period + 0.5)
        slot[i] = m
        use[i] = abs(t[i] - (anchor + m * period)) <= tol
    i = 0
    while i < n:  # among used points sharing a slot keep the closest (they are adjacent in time)
        if not use[i]:
            i += 1
            continue
        k = i + 1
        best = i
        while k < n and (not use[k] or slot[k] == slot[i]):
            if use[k]:
                if abs(t[k] - (anchor + slot[k] * period)) < abs(t[best] - (anchor + slot[best] * period)):
                    use[best] = False
                    best = k
                else:
                    use[k] = False
            k += 1
        i = k


@njit(cache=True, nogil=True)
def _same_assignment(prev_slot: np.ndarray, prev_use: np.ndarray, slot: np.ndarray, use: np.ndarray) -> bool:
    """Whether the same points are used, on slots that differ only by a constant offset."""
    offset = np.nan
    for i in range(use.shape[0]):
        if use[i] != prev_use[i]:
            return False
        if use[i]:
            d = slot[i] - prev_slot[i]
            if offset != offset:  # first used point sets the offset
                offset = d
            elif d != offset:
                return False
    return True


@njit(cache=True, nogil=True)
def _fit_slots(t: np.ndarray, slot: np.ndarray, use: np.ndarray) -> tuple[float, float, float, float, int, int]:
    """Least-squares t ~ a + b*slot over used points: (a, b, rms, max_abs_residual, used, missed)."""
    n = t.shape[0]
    cnt = 0
    sm = 0.0
    st = 0.0
    lo = 0.0
    hi = 0.0
    for i in range(n):
        if use[i]:
            if cnt == 0:
                lo = slot[i]
            hi = slot[i]
            cnt += 1
            sm += slot[i]
            st += t[i]
    if cnt < 3:
        return 0.0, 0.0, 0.0, 0.0, cnt, 0
    mm = sm / cnt
    tm = st / cnt
    sxx = 0.0
    sxy = 0.0
    for i in range(n):
        if use[i]:
            sxx += (slot[i] - mm) * (slot[i] - mm)
            sxy += (slot[i] - mm) * (t[i] - tm)
    if sxx <= 0.0:
        return 0.0, 0.0, 0.0, 0.0, cnt, 0
    b = sxy / sxx
    a = tm - b * mm
    ss = 0.0
    worst = 0.0
    for i in range(n):
        if use[i]:
            d = t[i] - (a + b * slot[i])
            ss += d * d
            if abs(d) > worst:
                worst = abs(d)
    return a, b, np.sqrt(ss / cnt), worst, cnt, int(hi - lo + 1.0) - cnt


@njit(cache=True, nogil=True)
def _may_fit(t: np.ndarray, nominal: float, tol: float, max_missed: int, max_extra: int, max_err: float) -> bool:
    """A cheap necessary condition for any valid fit at this nominal period (False = skip the search).

    Kept points lie in distinct slots, each within tol of its point, slots b apart with b within
    max_err of nominal: two kept points are at least (1 - max_err)*nominal - 2*tol apart, so each of
    a set of disjoint closer pairs holds an extra; and an empty stretch of g days inside the kept span
    holds at least ceil((g - 2*tol) / ((1 + max_err)*nominal)) - 1 missed slots (at most max_extra
    stretches lie outside the span, so the largest of those are not counted)."""
    n = t.shape[0]
    close = (1.0 - max_err) * nominal - 2.0 * tol
    extras = 0
    i = 0
    while i < n - 1:
        if t[i + 1] - t[i] < close:
            extras += 1
            i += 2
        else:
            i += 1
    if extras > max_extra:
        return False
    wide = (1.0 + max_err) * nominal
    gaps = np.zeros(max(n - 1, 1), dtype=np.float64)
    for i in range(n - 1):
        gaps[i] = max(0.0, np.ceil((t[i + 1] - t[i] - 2.0 * tol) / wide) - 1.0)
    gaps = np.sort(gaps)
    missed = 0.0
    for i in range(gaps.shape[0] - max_extra):
        missed += gaps[i]
    return missed <= max_missed


@njit(cache=True, nogil=True)
def schedule_regularity(
    starts: np.ndarray,
    t_days: np.ndarray,
    periods: np.ndarray,
    max_missed: np.int64,
    max_cv: np.float64,
    max_period_error: np.float64,
    jitter_days: np.float64,
    max_extra_share: np.float64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per group, the schedule (nominal period) its times keep best, robust to jitter, missed periods
    and stray extra payments.

    For each nominal period p and each trial period p' = p*f (f in 0.92, 1, 1.08; with the refits a
    period drifting up to about 20% from nominal is found), the phases t mod p' give the densest arc
    (width 2*tol, tol = min(jitter_days + 0.05*p, 0.5*p)); with anchors at the arc's centre and shifted
    by -0.5 and +0.5 tol (heavy jitter moves the centre), every time is assigned to its nearest
    schedule point; points further than tol, or not the closest in their slot, are extras. A
    least-squares line t ~ a + b*slot over the kept points is refitted up to twice (re-assigning
    slots; stopping early when no point changes its slot). A fit is valid when missed slots <=
    max_missed, extras <= max_extra_share of the points, |b/p - 1| <= max_period_error and rms/b <=
    max_cv. Best = most kept points, then fewest missed, then lowest cv; a nominal period stops being
    searched once a valid fit keeps every point with no missed period, and is skipped when a cheap
    necessary condition (`_may_fit`) already rules out every valid fit.

    Returns per group: nominal period (0 = none), fitted period, cv, largest deviation in days,
    missed periods, kept points; and per row whether it is one of the kept points."""
    g_count = starts.shape[0] - 1
    best_period = np.zeros(g_count, dtype=np.float64)
    best_p_hat = np.zeros(g_count, dtype=np.float64)
    best_cv = np.full(g_count, np.nan, dtype=np.float64)
    best_dev = np.full(g_count, np.nan, dtype=np.float64)
    best_missed = np.zeros(g_count, dtype=np.int64)
    best_used = np.zeros(g_count, dtype=np.int64)
    used_rows = np.zeros(t_days.shape[0], dtype=np.bool_)
    factors = np.array([1.0, 0.92, 1.08])  # with the refits, finds periods drifting up to about +-20%
    shifts = np.array([0.0, -0.5, 0.5])  # anchors around the arc's centre, in units of tol
    for g in range(g_count):
        a0 = starts[g]
        b0 = starts[g + 1]
        n = b0 - a0
        if n < 3:
            continue
        t = t_days[a0:b0] - t_days[a0]
        slot = np.empty(n, dtype=np.float64)
        use = np.empty(n, dtype=np.bool_)
        prev_slot = np.empty(n, dtype=np.float64)
        prev_use = np.empty(n, dtype=np.bool_)
        keep = np.zeros(n, dtype=np.bool_)
        phase = np.empty(n, dtype=np.float64)
        found = False
        for q in range(periods.shape[0]):
            nominal = periods[q]
            tol = min(jitter_days + 0.05 * nominal, 0.5 * nominal)
            if not _may_fit(t, nominal, tol, int(max_missed), int(np.floor(max_extra_share * n)), max_period_error):
                continue
            perfect = False
            for f in range(factors.shape[0]):
                if perfect:
                    break
                p = nominal * factors[f]
                for i in range(n):
                    phase[i] = t[i] - np.floor(t[i] / p) * p
                centre = _densest_arc(phase, p, 2.0 * tol)
                for shift in shifts:
                    if perfect:
                        break
                    _assign_slots(t, centre + shift * tol, p, tol, slot, use)
                    a, b, rms, worst, cnt, missed = _fit_slots(t, slot, use)
                    for _ in range(2):
                        if cnt < 3 or b <= 0.0:
                            break
                        prev_slot[:] = slot
                        prev_use[:] = use
                        _assign_slots(t, a, b, tol, slot, use)
                        if _same_assignment(prev_slot, prev_use, slot, use):
                            break  # the same points on the same slots: the fit cannot change
                        a, b, rms, worst, cnt, missed = _fit_slots(t, slot, use)
                    if cnt < 3 or b <= 0.0:
                        continue
                    cv = rms / b
                    if missed > max_missed or (n - cnt) > max_extra_share * n:
                        continue
                    if cv > max_cv or abs(b / nominal - 1.0) > max_period_error:
                        continue
                    better = (
                        (not found)
                        or cnt > best_used[g]
                        or (cnt == best_used[g] and missed < best_missed[g])
                        or (cnt == best_used[g] and missed == best_missed[g] and cv < best_cv[g])
                    )
                    if cnt == n and missed == 0:
                        perfect = True
                    if better:
                        found = True
                        best_period[g] = nominal
                        best_p_hat[g] = b
                        best_cv[g] = cv
                        best_dev[g] = worst
                        best_missed[g] = missed
                        best_used[g] = cnt
                        for i in range(n):
                            keep[i] = use[i]
        if found:
            for i in range(n):
                used_rows[a0 + i] = keep[i]
    return best_period, best_p_hat, best_cv, best_dev, best_missed, best_used, used_rows


PHONE_TAIL_NONE = -1  # phone_tail_numbers: no phone, or fewer than 7 digits
PHONE_TAIL_OTHER = -2  # phone_tail_numbers: bytes outside ASCII (left to the Polars expression)


@njit(cache=True, nogil=True)
def phone_tail_numbers(
    offsets: np.ndarray, data: np.ndarray, valid: np.ndarray, with_length: bool = False
) -> np.ndarray:
    """The number the last 9 ASCII digits of each text make (Arrow offsets and data bytes), or
    PHONE_TAIL_NONE for a null or a text of fewer than 7 digits, or PHONE_TAIL_OTHER for a text holding a
    byte outside ASCII (its digits may be other scripts' digits, which only a Unicode-aware reading sees).
    For ASCII text this is the number phones.phone_digits' text stands for, without building it;
    `with_length`: that number times 16 plus how many digits it has (up to 9), which tells texts with
    leading zeros apart ("012345678" from "12345678"), as phones.phone_group_key does."""
    n = offsets.shape[0] - 1
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        if not valid[i]:
            out[i] = PHONE_TAIL_NONE
            continue
        count = 0
        value = 0
        other = False
        for j in range(offsets[i], offsets[i + 1]):
            b = data[j]
            if b >= 128:
                other = True
                break
            if 48 <= b <= 57:
                value = (value * 10 + (b - 48)) % 1_000_000_000
                count += 1
        if other:
            out[i] = PHONE_TAIL_OTHER
        elif count >= 7:
            out[i] = value * 16 + min(count, 9) if with_length else value
        else:
            out[i] = PHONE_TAIL_NONE
    return out


@njit(cache=True, nogil=True)
def partition_copies(
    sender_part: np.ndarray, receiver_part: np.ndarray, phone_part: np.ndarray, n_parts: np.int64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The copies of rows spilled into partitions, by partition then row: (row, partition, primary).

    Row i goes to its sender's partition (the primary copy), to its receiver's when that is another one,
    and to its phone's (`phone_part`, -1 for none) when that is neither. A counting sort: one pass counts
    each partition's copies, a second writes every row's copies at its partitions' next free places, so
    each partition's copies come in row order."""
    n = sender_part.shape[0]
    counts = np.zeros(n_parts, dtype=np.int64)
    for i in range(n):
        s = sender_part[i]
        r = receiver_part[i]
        ph = phone_part[i]
        counts[s] += 1
        if r != s:
            counts[r] += 1
        if ph >= 0 and ph != s and ph != r:
            counts[ph] += 1
    place = np.zeros(n_parts, dtype=np.int64)
    total = 0
    for p in range(n_parts):
        place[p] = total
        total += counts[p]
    rows = np.empty(total, dtype=np.uint32)
    parts = np.empty(total, dtype=np.uint32)
    primary = np.zeros(total, dtype=np.bool_)
    for i in range(n):
        s = sender_part[i]
        r = receiver_part[i]
        ph = phone_part[i]
        at = place[s]
        rows[at] = i
        parts[at] = s
        primary[at] = True
        place[s] += 1
        if r != s:
            at = place[r]
            rows[at] = i
            parts[at] = r
            place[r] += 1
        if ph >= 0 and ph != s and ph != r:
            at = place[ph]
            rows[at] = i
            parts[at] = ph
            place[ph] += 1
    return rows, parts, primary


@njit(cache=True, nogil=True)
def group_sums_cv(starts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group: (the sum of its `values`, their coefficient of variation).

    Each sum runs over the group's rows in their order, and the deviations from the group's mean are
    summed the same way (two passes), so a group's figures depend only on its own rows and their order:
    the same whether the group sits in the whole input or in one partition of it. (Polars' parallel
    group-by sums in an order that depends on where its threads split the frame: the last bits differ.)"""
    n_groups = starts.shape[0] - 1
    sums = np.empty(n_groups, dtype=np.float64)
    cvs = np.empty(n_groups, dtype=np.float64)
    for g in range(n_groups):
        a, b = starts[g], starts[g + 1]
        total = 0.0
        for i in range(a, b):
            total += values[i]
        sums[g] = total
        cvs[g] = _cv_of(values[a:b], total)
    return sums, cvs


@njit(cache=True, nogil=True)
def group_gap_cv(starts: np.ndarray, t_us: np.ndarray) -> np.ndarray:
    """Per group of rows sorted by time `t_us` (microseconds): the coefficient of variation of the gaps
    between consecutive rows, in seconds, summed in order (see group_sums_cv); NaN for fewer than 3 rows."""
    n_groups = starts.shape[0] - 1
    out = np.empty(n_groups, dtype=np.float64)
    for g in range(n_groups):
        a, b = starts[g], starts[g + 1]
        if b - a < 3:
            out[g] = np.nan
            continue
        gaps = np.empty(b - a - 1, dtype=np.float64)
        total = 0.0
        for i in range(a + 1, b):
            gaps[i - a - 1] = (t_us[i] - t_us[i - 1]) / 1e6
            total += gaps[i - a - 1]
        out[g] = _cv_of(gaps, total)
    return out


@njit(cache=True, nogil=True)
def payer_time_stats(
    starts: np.ndarray, t_us: np.ndarray, values: np.ndarray, week_us: np.int64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group (a payer's rows, in input order): its rows put in time order (stable: ties keep input order),
    then (the sum of `values` in that order, the CV of the gaps between consecutive times in seconds as
    group_gap_cv, the most rows in one `week_us`-long bucket of time since the epoch)."""
    n_groups = starts.shape[0] - 1
    sums = np.empty(n_groups, dtype=np.float64)
    gap_cv = np.empty(n_groups, dtype=np.float64)
    busiest = np.zeros(n_groups, dtype=np.int64)
    for g in range(n_groups):
        a, b = starts[g], starts[g + 1]
        order = np.argsort(t_us[a:b], kind="mergesort")
        t = t_us[a:b][order]
        x = values[a:b][order]
        total = 0.0
        for i in range(b - a):
            total += x[i]
        sums[g] = total
        run, best = 0, 0
        for i in range(b - a):
            if i > 0 and t[i] // week_us == t[i - 1] // week_us:
                run += 1
            else:
                run = 1
            best = max(best, run)
        busiest[g] = best
        if b - a < 3:
            gap_cv[g] = np.nan
            continue
        gaps = np.empty(b - a - 1, dtype=np.float64)
        gap_total = 0.0
        for i in range(1, b - a):
            gaps[i - 1] = (t[i] - t[i - 1]) / 1e6
            gap_total += gaps[i - 1]
        gap_cv[g] = _cv_of(gaps, gap_total)
    return sums, gap_cv, busiest


@njit(cache=True, nogil=True)
def _cv_of(x: np.ndarray, total: float) -> float:
    """Population standard deviation over the mean of `x` (whose sum is `total`), summed in order; 0 when
    both are 0, infinite when only the mean is; NaN for no values."""
    n = x.shape[0]
    if n == 0:
        return np.nan
    mean = total / n
    squares = 0.0
    for i in range(n):
        d = x[i] - mean
        squares += d * d
    std = np.sqrt(squares / n)
    if mean == 0.0:
        return 0.0 if std == 0.0 else np.inf
    return std / mean


def group_slices(starts: np.ndarray, parts: int, min_rows: int = 200_000) -> list[tuple[int, int]]:
    """Split groups into up to `parts` runs of consecutive groups with about equal row counts, as
    (first group, end group); one run when there are fewer than `min_rows` rows (threads cost more)."""
    g_count = starts.shape[0] - 1
    rows = int(starts[-1]) if g_count > 0 else 0
    if parts <= 1 or rows < min_rows or g_count < 2:
        return [(0, g_count)]
    cuts = np.searchsorted(starts[:-1], np.linspace(0, rows, parts + 1)[1:-1], side="left")
    bounds = [0, *sorted({int(c) for c in cuts if 0 < c < g_count}), g_count]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def schedule_regularity_threads(
    starts: np.ndarray,
    t_days: np.ndarray,
    *args: Any,
    threads: int,
    min_rows: int = 200_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """schedule_regularity(starts, t_days, *args) over runs of groups in `threads` threads (the kernel
    releases the GIL; groups are independent, so the result is the same as one call); `args` are the
    kernel's remaining arguments, passed through. One call below `min_rows` rows."""
    from concurrent.futures import ThreadPoolExecutor

    slices = group_slices(starts, threads, min_rows)
    if len(slices) == 1:
        return schedule_regularity(starts, t_days, *args)

    def run(bounds: tuple[int, int]) -> tuple[np.ndarray, ...]:
        g0, g1 = bounds
        r0, r1 = int(starts[g0]), int(starts[g1])
        return schedule_regularity(np.ascontiguousarray(starts[g0 : g1 + 1] - r0), t_days[r0:r1], *args)

    with ThreadPoolExecutor(len(slices)) as pool:
        results = list(pool.map(run, slices))
    return tuple(np.concatenate([r[k] for r in results]) for k in range(7))  # type: ignore[return-value]


@njit(cache=True, nogil=True)
def token_pair_codes(
    starts_a: np.ndarray, ids_a: np.ndarray, starts_b: np.ndarray, ids_b: np.ndarray, vocab: np.int64
) -> np.ndarray:
    """Every (token of a, token of b) of every name pair, coded id_a * vocab + id_b. Pair p's tokens are
    `ids_a[starts_a[p]:starts_a[p+1]]` and `ids_b[starts_b[p]:starts_b[p+1]]` (ids < vocab)."""
    n = starts_a.shape[0] - 1
    total = 0
    for p in range(n):
        total += (starts_a[p + 1] - starts_a[p]) * (starts_b[p + 1] - starts_b[p])
    out = np.empty(total, dtype=np.int64)
    k = 0
    for p in range(n):
        for i in range(starts_a[p], starts_a[p + 1]):
            base = ids_a[i] * vocab
            for j in range(starts_b[p], starts_b[p + 1]):
                out[k] = base + ids_b[j]
                k += 1
    return out


@njit(cache=True, nogil=True)
def token_aligned_means(
    starts_a: np.ndarray,
    ids_a: np.ndarray,
    starts_b: np.ndarray,
    ids_b: np.ndarray,
    vocab: np.int64,
    codes: np.ndarray,
    sims: np.ndarray,
    table: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per name pair: the mean over a's tokens of each one's best similarity to a token of b, and the same
    from b's side. `codes` (distinct and sorted, as token_pair_codes) with `sims` gives each token pair's
    similarity; means add in token order. A side without tokens gets NaN. `table`, when not empty, holds
    `sims` at their codes (vocab * vocab entries): one load per token pair instead of a search."""
    dense = table.shape[0] > 0
    # Sorted codes are grouped by a's token: each lookup searches only that token's short run of codes.
    runs = np.searchsorted(codes, np.arange(vocab + 1) * vocab)
    n = starts_a.shape[0] - 1
    mean_a = np.full(n, np.nan)
    mean_b = np.full(n, np.nan)
    grid = np.empty(64, dtype=np.float64)
    for p in range(n):
        a0, a1, b0, b1 = starts_a[p], starts_a[p + 1], starts_b[p], starts_b[p + 1]
        na, nb = a1 - a0, b1 - b0
        if na == 0 or nb == 0:
            continue
        if na * nb > grid.shape[0]:
            grid = np.empty(na * nb, dtype=np.float64)
        for i in range(na):
            token = ids_a[a0 + i]
            lo, hi = runs[token], runs[token + 1]
            for j in range(nb):
                code = token * vocab + ids_b[b0 + j]
                grid[i * nb + j] = table[code] if dense else sims[lo + np.searchsorted(codes[lo:hi], code)]
        total = 0.0
        for i in range(na):
            best = -1.0
            for j in range(nb):
                best = max(best, grid[i * nb + j])
            total += best
        mean_a[p] = total / na
        total = 0.0
        for j in range(nb):
            best = -1.0
            for i in range(na):
                best = max(best, grid[i * nb + j])
            total += best
        mean_b[p] = total / nb
    return mean_a, mean_b
