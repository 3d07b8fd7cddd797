"""Which parties of a dump could be listed officials: a cheap, exact necessary condition, checked over
the whole party directory before detection.

A confirmed match to an official (confidence >= threshold > FUZZY_NAME_ONLY) needs one of the entry's
phones, or a name with exactly the entry name's tokens that few parties of the input use (a fuzzy or
common name alone scores at most FUZZY_NAME_ONLY); a resolved party also pools the names and phones
of the ids sharing its phone. So a party can only be linked to an official when it, or an id sharing
(the last 7 digits of) one of its phones, has an official's phone or an official's exact, uncommon name
(link.could_be_officials applies the same condition to the candidates' parties). Rules that require
an official skip every other party's transfers: most of a dump's regular payments and fan-ins go to
people who are on no list, and fitting them would be wasted.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from followmoney.matching import FUZZY_NAME_ONLY, MatchSettings, name_keys, name_parties_of
from followmoney.normalise import PARTY_KEY_SEED
from followmoney.parties import PartyDirectory, name_frequencies
from followmoney.phones import ascii_digits, phone_tail_number


def name_token_sets(names: pl.Series) -> pl.Series:
    """Each name's tokens (matching.name_tokens: romanised, case-folded, honorifics removed) as a sorted,
    de-duplicated, space-joined set, vectorised (matching.name_keys)."""
    return name_keys(names, distinct=True)


def phone_tail(phone: pl.Expr) -> pl.Expr:
    """The last 7 digits of a phone, as a number: equal E.164 numbers always agree on them (a loose, safe
    key; the party directory's `tail7`)."""
    return phone_tail_number(ascii_digits(phone), 7)


def _entry_keys(entries: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """(name token sets, phone tails) of list entries: what a confirmed match must share with a party."""
    names = entries.select(pl.col("names").explode().drop_nulls().unique())["names"]
    sets = name_token_sets(names)
    tails = entries.select(phone_tail(pl.col("phones").explode()).alias("t"))["t"].drop_nulls().unique()
    return sets.filter(sets != "").unique(), tails


def _uncommon(names: pl.Series, name_counts: pl.DataFrame, max_name_share: int) -> pl.Series:
    """The names used by at most `max_name_share` parties (name_counts: approx_key, name_parties; a name
    not counted counts as one), as the matcher judges them: a common name alone is at most "possible"."""
    counted = name_parties_of(names, name_counts)
    return counted.filter(pl.col("name_parties").fill_null(1) <= max_name_share)["party_name"].alias(names.name)


def listed_lookalikes(
    profiles: pl.DataFrame,
    entries: pl.DataFrame,
    name_counts: pl.DataFrame | None = None,
    max_name_share: int = MatchSettings.max_name_share,
) -> pl.Series:
    """Party ids of `profiles` (party_id, names, phones) that a confirmed match (a threshold above
    FUZZY_NAME_ONLY) can be made for: a phone ending in an entry phone's last 7 digits, or a name of
    exactly an entry name's tokens (a fuzzy name alone scores at most FUZZY_NAME_ONLY) that, with
    `name_counts` (the matcher's), is not a common name (a common name alone scores at most that too)."""
    names = profiles.select("party_id", pl.col("names").alias("name")).explode("name")
    phones = profiles.select("party_id", pl.col("phones").alias("p")).explode("p")
    rows = pl.concat(
        [
            names.with_columns(phone_tail(pl.lit(None, pl.String)).alias("tail7")),
            phones.select("party_id", pl.lit(None, pl.String).alias("name"), phone_tail(pl.col("p")).alias("tail7")),
        ]
    )
    counts = None if name_counts is None else (lambda _names: name_counts)
    return lookalike_row_parties(rows, entries, counts, max_name_share)


def lookalike_row_parties(
    rows: pl.DataFrame,
    entries: pl.DataFrame,
    count_names: Callable[[pl.Series], pl.DataFrame] | None = None,
    max_name_share: int = MatchSettings.max_name_share,
) -> pl.Series:
    """Party ids of party directory rows (party_id, name, tail7) that listed_lookalikes passes against
    `entries` for profiles made of these rows: a phone ending in an entry phone's last 7 digits, or a name of
    exactly an entry name's tokens that, with `count_names` (names -> how many parties of the whole input
    use them: approx_key, name_parties, as parties.name_frequencies counts), is not a common name."""
    if rows.height == 0 or entries.height == 0:
        return pl.Series("party_id", [], dtype=pl.String)
    entry_sets, entry_tails = _entry_keys(entries)
    distinct = rows["name"].drop_nulls().unique()
    listed_names = distinct.filter(name_token_sets(distinct).is_in(entry_sets.implode()))
    if count_names is not None:
        listed_names = _uncommon(listed_names, count_names(listed_names), max_name_share)
    hit = pl.col("name").is_in(listed_names.implode()) | pl.col("tail7").is_in(entry_tails.implode())
    return rows.filter(hit.fill_null(False))["party_id"].unique().sort()


def possible_official_keys(
    directory: PartyDirectory, entries: pl.DataFrame, settings: MatchSettings | None = None
) -> pl.Series | None:
    """Sorted 64-bit party keys (normalise.party_keys' hash) of every party in `directory` that could be
    matched to an official of `entries`; None when every party could (a threshold at or below
    FUZZY_NAME_ONLY lets a fuzzy name alone match)."""
    settings = settings or MatchSettings()
    if settings.threshold <= FUZZY_NAME_ONLY:
        return None
    officials = entries.filter(pl.col("list_kind") == "official")
    empty = pl.Series("key", [], dtype=pl.UInt64)
    if officials.height == 0:
        return empty
    official_sets, official_tails = _entry_keys(officials)
    rows = directory.rows
    names = directory.name_keys["name"]
    named = names.filter(name_token_sets(names).is_in(official_sets.implode()))
    # Linking counts how many parties of the whole input use a name the same way (parties.name_frequencies).
    named = _uncommon(named, name_frequencies(directory, pl.DataFrame({"names": [named]})), settings.max_name_share)
    tail = pl.col("tail7")  # the directory's phone_tail
    hits = (
        rows.filter(pl.col("name").is_in(named.implode()) | tail.is_in(official_tails.implode()))
        .select(pl.col("party_id").unique())
        .collect(engine="streaming")["party_id"]
    )
    # Ids sharing a phone (by its last 7 digits) with a hit may be the same person: they pass too.
    hit_tails = (
        rows.filter(pl.col("party_id").is_in(hits.implode()))
        .select(tail.drop_nulls().unique())
        .collect(engine="streaming")["tail7"]
    )
    near = (
        rows.filter(tail.is_in(hit_tails.implode())).select(pl.col("party_id").unique()).collect(engine="streaming")
    )["party_id"]
    ids = pl.concat([hits, near]).unique()
    return ids.hash(PARTY_KEY_SEED).alias("key").unique().sort()
