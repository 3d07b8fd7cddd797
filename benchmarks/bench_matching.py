"""Time the matcher: N distinct parties against an M-entry list (default 1,000,000 x 100,000).

Names are drawn from Thai/Khmer/Burmese/Vietnamese-like syllables (two or three tokens); 2% of the
parties are noisy variants of list entries (typo, token order, dropped part, phone only) so that
real matches exist. Prints a table: stage, wall seconds, rows, CPU seconds (on a shared machine the
wall time includes waiting for the cores); and peak memory (ru_maxrss).

    .venv/bin/python benchmarks/bench_matching.py --parties 1000000 --entries 100000
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import polars as pl

from followmoney.lists import LIST_ENTRY_SCHEMA
from followmoney.matching import MatchSettings, match_parties
from followmoney.parties import PROFILE_SCHEMA

ONSETS = [
    "b",
    "ch",
    "d",
    "h",
    "j",
    "k",
    "kh",
    "l",
    "m",
    "n",
    "ng",
    "ny",
    "p",
    "ph",
    "r",
    "s",
    "t",
    "th",
    "w",
    "y",
    "v",
    "tr",
    "x",
    "gi",
    "nh",
]
NUCLEI = [
    "a",
    "ai",
    "ao",
    "e",
    "ei",
    "i",
    "ia",
    "o",
    "oe",
    "oi",
    "u",
    "ua",
    "ue",
    "uy",
    "oo",
    "ee",
    "aw",
    "ung",
    "ong",
    "an",
    "en",
    "in",
    "un",
    "am",
    "om",
    "at",
    "ak",
    "ok",
    "it",
]
COUNTRIES = ["TH", "KH", "MM", "VN", "LA", "MY", "PH"]


def _tokens(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random tokens of one or two syllables, title case."""
    onset = rng.choice(ONSETS, (n, 2))
    nucleus = rng.choice(NUCLEI, (n, 2))
    two = rng.random(n) < 0.7
    first = np.char.add(onset[:, 0], nucleus[:, 0])
    second = np.char.add(onset[:, 1], nucleus[:, 1])
    return np.char.title(np.where(two, np.char.add(first, second), first))


def _names(rng: np.random.Generator, n: int) -> list[str]:
    parts = [_tokens(rng, n) for _ in range(3)]
    three = rng.random(n) < 0.4
    base = np.char.add(np.char.add(parts[0], " "), parts[1])
    return np.where(three, np.char.add(np.char.add(base, " "), parts[2]), base).tolist()


def _phones(rng: np.random.Generator, n: int) -> list[str]:
    return [f"+66{x}" for x in rng.integers(600_000_000, 999_999_999, n)]


def build(n_parties: int, n_entries: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A profile frame of n_parties distinct parties and a list of n_entries entries."""
    rng = np.random.default_rng(seed)
    e_names = _names(rng, n_entries)
    e_phones = _phones(rng, n_entries)
    e_country = rng.choice(COUNTRIES, n_entries).tolist()
    entries = pl.DataFrame(
        {
            "list_kind": ["official"] * n_entries,
            "list_id": [f"Q{i}" for i in range(n_entries)],
            "network_id": [None] * n_entries,
            "name": e_names,
            "names": [[x] for x in e_names],
            "countries": [[c] for c in e_country],
            "phones": [
                [p] if rng_bit else [] for p, rng_bit in zip(e_phones, rng.random(n_entries) < 0.5, strict=True)
            ],
            "role": [None] * n_entries,
            "dataset": [None] * n_entries,
        },
        schema=LIST_ENTRY_SCHEMA,
    )
    p_names = _names(rng, n_parties)
    p_phones = _phones(rng, n_parties)
    p_country = rng.choice(COUNTRIES, n_parties).tolist()
    n_true = n_parties // 50
    idx = rng.choice(n_entries, n_true, replace=n_true > n_entries)
    for j, i in enumerate(idx.tolist()):
        tokens = e_names[i].split()
        kind = j % 4
        if kind == 0:
            tokens = tokens[::-1]
        elif kind == 1:
            t = tokens[0]
            tokens[0] = t[:-1] + ("a" if t[-1] != "a" else "e")
        elif kind == 2 and len(tokens) == 3:
            tokens = [tokens[0], tokens[2]]
        p_names[j] = " ".join(tokens) if kind != 3 else p_names[j]
        p_phones[j] = e_phones[i]
        p_country[j] = e_country[i]
    profiles = pl.DataFrame(
        {
            "party_id": [f"C{i:08d}" for i in range(n_parties)],
            "name": p_names,
            "names": [[x] for x in p_names],
            "countries": [[c] for c in p_country],
            "phones": [[p] for p in p_phones],
        },
        schema=PROFILE_SCHEMA,
    )
    return profiles, entries


def main() -> None:
    """Build the frames, match once, print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parties", type=int, default=1_000_000)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    profiles, entries = build(args.parties, args.entries, args.seed)
    t1 = time.perf_counter()
    cpu1 = time.process_time()
    matches = match_parties(profiles, entries, MatchSettings(), include_possible=True)
    t2 = time.perf_counter()
    cpu = time.process_time() - cpu1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    confirmed = matches.filter(pl.col("status") == "match").height
    print(f"{'stage':<28}{'seconds':>10}{'rows':>14}")
    print(f"{'build synthetic frames':<28}{t1 - t0:>10.1f}{args.parties + args.entries:>14,}")
    print(f"{'match_parties':<28}{t2 - t1:>10.1f}{args.parties:>14,}")
    print(f"{'  parties per second':<28}{args.parties / (t2 - t1):>10,.0f}")
    print(f"{'  CPU seconds (all threads)':<28}{cpu:>10.1f}")
    print(f"matches {confirmed:,}, possible {matches.height - confirmed:,}, planted {args.parties // 50:,}")
    print(f"peak memory {peak:.2f} GiB")


if __name__ == "__main__":
    main()
