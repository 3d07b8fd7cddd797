"""Which parties of a dump could be listed officials: a cheap, exact necessary condition, checked over
the whole party directory before detection.

A confirmed match to an official (confidence >= threshold > FUZZY_NAME_ONLY) needs one of the entry's
phones, or a name with exactly the entry name's tokens; a resolved party also pools the names and phones
of the ids sharing its phone. So a party can only be linked to an official when it, or an id sharing
(the last 7 digits of) one of its phones, has an official's phone or an official's exact name tokens
(link.could_be_officials applies the same condition to the candidates' parties). Rules that require
an official skip every other party's transfers: most of a dump's regular payments and fan-ins go to
people who are on no list, and fitting them would be wasted.
"""

from __future__ import annotations

import polars as pl

from followmoney.matching import FUZZY_NAME_ONLY, HONORIFICS, MatchSettings, name_tokens
from followmoney.normalise import PARTY_KEY_SEED
from followmoney.parties import PartyDirectory

_ASCII = r"^[\x00-\x7F]*$"
_TOKENS = r"[a-z0-9]+"


def _python_token_set(name: str) -> str:
    return " ".join(sorted(set(name_tokens(name))))


def name_token_sets(names: pl.Series) -> pl.Series:
    """Each name's tokens (matching.name_tokens: romanised, case-folded, honorifics removed) as a sorted,
    de-duplicated, space-joined set. ASCII names, which romanising leaves as they are, are done with
    Polars expressions; only names in other scripts or with diacritics go through `name_tokens`."""
    frame = pl.DataFrame({"n": names.cast(pl.String)})
    plain = pl.col("n").str.contains(_ASCII).fill_null(False)
    honorifics = sorted(HONORIFICS)
    fast = (
        pl.col("n")
        .str.to_lowercase()
        .str.extract_all(_TOKENS)
        .list.eval(pl.element().filter(~pl.element().is_in(honorifics)))
        .list.unique()
        .list.sort()
        .list.join(" ")
    )
    other = frame.filter(~plain & pl.col("n").is_not_null()).select(pl.col("n").unique())
    slow = other.with_columns(pl.col("n").map_elements(_python_token_set, return_dtype=pl.String).alias("_slow"))
    return (
        frame.with_columns(pl.when(plain).then(fast).alias("_fast"))
        .join(slow, on="n", how="left", maintain_order="left")
        .select(pl.coalesce("_fast", "_slow").alias(names.name))
        .to_series()
    )


def phone_tail(phone: pl.Expr) -> pl.Expr:
    """The last 7 digits of a phone: equal E.164 numbers always agree on them (a loose, safe key)."""
    digits = phone.str.replace_all(r"\D", "")
    return pl.when(digits.str.len_chars() >= 7).then(digits.str.slice(-7)).otherwise(None)


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
    official_names = officials.select(pl.col("names").explode().drop_nulls().unique())["names"]
    official_sets = name_token_sets(official_names)
    official_sets = official_sets.filter(official_sets != "").unique()
    official_tails = officials.select(phone_tail(pl.col("phones").explode()).alias("t"))["t"].drop_nulls().unique()
    rows = directory.rows
    names = rows.select(pl.col("name").drop_nulls().unique()).collect(engine="streaming")["name"]
    named = names.filter(name_token_sets(names).is_in(official_sets.implode()))
    tails = (
        rows.select(pl.col("phone").drop_nulls().unique())
        .collect(engine="streaming")
        .with_columns(phone_tail(pl.col("phone")).alias("t"))
        .drop_nulls("t")
    )
    hit_phones = tails.filter(pl.col("t").is_in(official_tails.implode()))["phone"]
    hits = (
        rows.filter(pl.col("name").is_in(named.implode()) | pl.col("phone").is_in(hit_phones.implode()))
        .select(pl.col("party_id").unique())
        .collect(engine="streaming")["party_id"]
    )
    # Ids sharing a phone (by its last 7 digits) with a hit may be the same person: they pass too.
    hit_tails = (
        rows.filter(pl.col("party_id").is_in(hits.implode()))
        .select("phone")
        .collect(engine="streaming")
        .join(tails, on="phone", how="inner")["t"]
        .unique()
    )
    near_phones = tails.filter(pl.col("t").is_in(hit_tails.implode()))["phone"]
    near = (
        rows.filter(pl.col("phone").is_in(near_phones.implode()))
        .select(pl.col("party_id").unique())
        .collect(engine="streaming")["party_id"]
    )
    ids = pl.concat([hits, near]).unique()
    return ids.hash(PARTY_KEY_SEED).alias("key").unique().sort()
