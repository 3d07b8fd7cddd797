"""Numba kernels: the loops Polars cannot express, over sorted contiguous arrays with group offsets.

numpy in, numpy out; no polars here. Every kernel has a plain-Python twin in tests/ that it must match.
Group offsets: `starts` has one entry per group plus a final entry equal to the number of rows;
rows of group g are `starts[g]:starts[g+1]`, sorted by time within the group.
"""

from __future__ import annotations

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
def _fit_schedule(t: np.ndarray, period: float, max_missed: np.int64) -> tuple[float, float, float, int]:
    """Fit t_i ~ t0 + m_i * p with m_i counted in nominal periods; (p_hat, cv, max_abs_dev, missed).

    cv is the standard deviation of the deviations from the fitted schedule divided by p_hat;
    cv < 0 means the series does not fit this period at all."""
    n = t.shape[0]
    m = np.empty(n, dtype=np.float64)
    m[0] = 0.0
    missed = 0
    for i in range(1, n):
        k = np.floor((t[i] - t[i - 1]) / period + 0.5)
        if k < 1.0:
            return 0.0, -1.0, 0.0, 0
        missed += int(k) - 1
        if missed > max_missed:
            return 0.0, -1.0, 0.0, missed
        m[i] = m[i - 1] + k
    mm = m.mean()
    tm = t.mean()
    sxx = 0.0
    sxy = 0.0
    for i in range(n):
        sxx += (m[i] - mm) * (m[i] - mm)
        sxy += (m[i] - mm) * (t[i] - tm)
    p_hat = sxy / sxx
    if p_hat <= 0.0:
        return 0.0, -1.0, 0.0, missed
    t0 = tm - p_hat * mm
    ss = 0.0
    worst = 0.0
    for i in range(n):
        d = t[i] - (t0 + p_hat * m[i])
        ss += d * d
        if abs(d) > worst:
            worst = abs(d)
    return p_hat, np.sqrt(ss / n) / p_hat, worst, missed


@njit(cache=True, nogil=True)
def schedule_regularity(
    starts: np.ndarray,
    t_days: np.ndarray,
    periods: np.ndarray,
    max_missed: np.int64,
    max_cv: np.float64,
    max_period_error: np.float64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per group: the nominal period that best fits its times (0 = none), fitted period, cv,
    largest deviation in days, and missed periods. Best = fewest missed periods, then lowest cv."""
    g_count = starts.shape[0] - 1
    best_period = np.zeros(g_count, dtype=np.float64)
    best_p_hat = np.zeros(g_count, dtype=np.float64)
    best_cv = np.full(g_count, np.nan, dtype=np.float64)
    best_dev = np.full(g_count, np.nan, dtype=np.float64)
    best_missed = np.zeros(g_count, dtype=np.int64)
    for g in range(g_count):
        t = t_days[starts[g] : starts[g + 1]]
        if t.shape[0] < 3:
            continue
        found = False
        for q in range(periods.shape[0]):
            p = periods[q]
            p_hat, cv, dev, missed = _fit_schedule(t, p, max_missed)
            if cv < 0.0 or cv > max_cv or abs(p_hat / p - 1.0) > max_period_error:
                continue
            if (not found) or missed < best_missed[g] or (missed == best_missed[g] and cv < best_cv[g]):
                found = True
                best_period[g] = p
                best_p_hat[g] = p_hat
                best_cv[g] = cv
                best_dev[g] = dev
                best_missed[g] = missed
    return best_period, best_p_hat, best_cv, best_dev, best_missed
