"""Who is who: match candidate parties to the officials and network lists, and attach it to candidates.

Matching in this stage is exact on normalised keys: phones in E.164, names romanised (anyascii),
case-folded, stripped of punctuation and honorifics, tokens sorted. A name match also needs a shared
country (when the list gives one) and no conflicting phones, so that a namesake abroad with another
phone is not taken for the official. Keys are computed once per distinct name/phone, not per row.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
import polars as pl
from anyascii import anyascii

HONORIFICS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "dr",
        "prof",
        "khun",
        "nai",
        "nang",
        "nangsao",
        "daw",
        "u",
        "haji",
        "hajji",
        "hon",
        "sir",
        "madam",
        "pol",
        "col",
        "lt",
        "gen",
        "maj",
        "capt",
        "sgt",
        "cpl",
        "police",
    ]
)
# Particles that do not show a family tie when shared (Vietnamese middle names, Arabic/Malay links).
NON_FAMILY_TOKENS = frozenset(
    [
        "van",
        "thi",
        "bin",
        "binti",
        "bte",
        "bt",
        "al",
        "el",
        "de",
        "la",
        "da",
        "dos",
        "del",
        "mohd",
        "muhammad",
        "mohammed",
    ]
)
_TOKEN = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1_000_000)
def name_key(name: str) -> str:
    """A name reduced to sorted Latin tokens: case, diacritics, script, order and honorifics ignored."""
    tokens = _TOKEN.findall(anyascii(name).lower())
    return " ".join(sorted(t for t in tokens if t not in HONORIFICS))


@lru_cache(maxsize=1_000_000)
def phone_key(phone: str, country: str | None) -> str | None:
    """A phone in E.164 (using the party's country for local formats), or its digits as a fallback."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 6:
        return None
    attempts = [(phone, None)] if phone.strip().startswith("+") else [(phone, country), ("+" + digits, None)]
    for text, region in attempts:
        try:
            parsed = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return "+" + digits


def _name_keys(frame: pl.DataFrame, id_cols: list[str]) -> pl.DataFrame:
    """Explode `names` into (ids..., raw_name, name_key), computing each distinct key once."""
    exploded = frame.select(*id_cols, pl.col("names").alias("raw_name")).explode("raw_name").drop_nulls("raw_name")
    keys = exploded.select(pl.col("raw_name").unique()).with_columns(
        pl.col("raw_name").map_elements(name_key, return_dtype=pl.String).alias("name_key")
    )
    return exploded.join(keys, on="raw_name", how="left").filter(pl.col("name_key") != "")


def _phone_keys(frame: pl.DataFrame, id_cols: list[str]) -> pl.DataFrame:
    """Explode `phones` into (ids..., phone_key) using each row's first country for local formats."""
    exploded = (
        frame.select(*id_cols, pl.col("phones").alias("raw_phone"), pl.col("countries").list.first().alias("cc"))
        .explode("raw_phone")
        .drop_nulls("raw_phone")
    )
    distinct = exploded.select("raw_phone", "cc").unique()
    keyed = distinct.with_columns(
        pl.struct("raw_phone", "cc")
        .map_elements(lambda r: phone_key(r["raw_phone"], r["cc"]), return_dtype=pl.String)
        .alias("phone_key")
    )
    return exploded.join(keyed, on=["raw_phone", "cc"], how="left", nulls_equal=True).drop_nulls("phone_key")


MATCH_SCHEMA: dict[str, pl.DataType] = {
    "party_id": pl.String(),
    "list_kind": pl.String(),
    "list_id": pl.String(),
    "network_id": pl.String(),
    "entry_name": pl.String(),
    "role": pl.String(),
    "dataset": pl.String(),
    "confidence": pl.Float64(),
    "basis": pl.String(),
}


def match_parties(profiles: pl.DataFrame, entries: pl.DataFrame) -> pl.DataFrame:
    """Best list entry per (party, list kind): phone and/or normalised-name matches with a basis text."""
    if profiles.height == 0 or entries.height == 0:
        return pl.DataFrame(schema=MATCH_SCHEMA)
    p_names = _name_keys(profiles, ["party_id"]).join(profiles.select("party_id", "countries"), on="party_id")
    e_names = _name_keys(entries, ["list_kind", "list_id"]).join(
        entries.select("list_kind", "list_id", pl.col("countries").alias("e_countries")), on=["list_kind", "list_id"]
    )
    p_phones = _phone_keys(profiles, ["party_id"]).select("party_id", "phone_key").unique()
    e_phones = _phone_keys(entries, ["list_kind", "list_id"]).select("list_kind", "list_id", "phone_key").unique()

    by_phone = p_phones.join(e_phones, on="phone_key").select("party_id", "list_kind", "list_id").unique()
    by_name = (
        p_names.join(e_names, on="name_key", suffix="_e")
        .filter(
            (pl.col("e_countries").list.len() == 0)
            | (pl.col("countries").list.set_intersection(pl.col("e_countries")).list.len() > 0)
        )
        .group_by("party_id", "list_kind", "list_id")
        .agg((pl.col("raw_name") == pl.col("raw_name_e")).any().alias("verbatim"))
    )
    has_p_phone = p_phones.select("party_id").unique().with_columns(pl.lit(True).alias("p_has_phone"))
    has_e_phone = e_phones.select("list_kind", "list_id").unique().with_columns(pl.lit(True).alias("e_has_phone"))
    keys = ["party_id", "list_kind", "list_id"]
    both = (
        by_name.join(by_phone.with_columns(pl.lit(True).alias("phone")), on=keys, how="full", coalesce=True)
        .join(has_p_phone, on="party_id", how="left")
        .join(has_e_phone, on=["list_kind", "list_id"], how="left")
        .with_columns(
            pl.col("phone").fill_null(False),
            pl.col("verbatim").is_not_null().alias("name"),
            (pl.col("p_has_phone").fill_null(False) & pl.col("e_has_phone").fill_null(False)).alias("both_phones"),
        )
        # A name-only match is void when both sides have phones and none agree (a namesake).
        .filter(pl.col("phone") | ~pl.col("both_phones"))
    )
    name_text = (
        pl.when(pl.col("verbatim"))
        .then(pl.lit("same name"))
        .otherwise(pl.lit("same name after normalising case, diacritics and word order"))
    )
    scored = both.with_columns(
        pl.when(pl.col("phone") & pl.col("name"))
        .then(0.99)
        .when(pl.col("phone"))
        .then(0.9)
        .otherwise(0.85)
        .alias("confidence"),
        pl.when(pl.col("phone") & pl.col("name"))
        .then(pl.concat_str(pl.lit("same phone, "), name_text))
        .when(pl.col("phone"))
        .then(pl.lit("same phone"))
        .otherwise(name_text)
        .alias("basis"),
    )
    return (
        scored.join(
            entries.select("list_kind", "list_id", "network_id", pl.col("name").alias("entry_name"), "role", "dataset"),
            on=["list_kind", "list_id"],
            how="left",
        )
        .sort(["party_id", "list_kind", "confidence", "list_id"], descending=[False, False, True, False])
        .group_by(["party_id", "list_kind"], maintain_order=True)
        .first()
        .select(list(MATCH_SCHEMA))
        .cast(MATCH_SCHEMA)  # type: ignore[arg-type]
    )


def _family_tokens(name: pl.Expr) -> pl.Expr:
    return name.map_elements(
        lambda n: [t for t in name_key(n).split() if len(t) >= 3 and t not in NON_FAMILY_TOKENS],
        return_dtype=pl.List(pl.String),
    )


# Columns the link stage adds to candidates; score.py and the requirements read only these.
LINK_COLUMNS: dict[str, pl.DataType] = {
    "subject_name": pl.String(),
    "counterparty_name": pl.String(),
    "counterparty_official": pl.Boolean(),  # the counterparty matches the officials list
    "official_id": pl.String(),  # counterparty's match first, else the subject's
    "official_text": pl.String(),  # plain-language sentence on the official match
    "official_confidence": pl.Float64(),
    "network_id": pl.String(),
    "network_path": pl.String(),
    "network_confidence": pl.Float64(),
    "network_hops": pl.Int64(),  # 0 = subject or counterparty is a listed member
    "shared_family_name": pl.String(),
}


def _official_columns() -> list[pl.Expr]:
    cp = pl.col("cp_off_list_id").is_not_null()

    def pick(field: str) -> pl.Expr:
        return pl.when(cp).then(pl.col(f"cp_off_{field}")).otherwise(pl.col(f"subj_off_{field}"))

    role = pl.coalesce(pick("role"), pick("dataset"))
    text = pl.format(
        "{} matches listed official {} '{}'{} ({}, confidence {}).",
        pl.when(cp).then(pl.lit("The receiver")).otherwise(pl.lit("The subject")),
        pick("list_id"),
        pick("entry_name"),
        pl.when(role.is_not_null()).then(pl.format(", {}", role)).otherwise(pl.lit("")),
        pick("basis"),
        pick("confidence").round(2),
    )
    return [
        cp.alias("counterparty_official"),
        pick("list_id").alias("official_id"),
        pl.when(pick("list_id").is_not_null()).then(text).otherwise(None).alias("official_text"),
        pick("confidence").alias("official_confidence"),
    ]


def _network_columns() -> list[pl.Expr]:
    """network_id, path text, confidence and hops from direct membership of subject or counterparty."""
    subj = pl.col("subj_net_list_id").is_not_null()
    cp = pl.col("cp_net_list_id").is_not_null()

    def path(who: pl.Expr, prefix: str) -> pl.Expr:
        return pl.format(
            "{} = listed member {} '{}' ({}) of {} ({})",
            who,
            pl.col(f"{prefix}_list_id"),
            pl.col(f"{prefix}_entry_name"),
            pl.col(f"{prefix}_role").fill_null("role unknown"),
            pl.col(f"{prefix}_network_id"),
            pl.col(f"{prefix}_basis"),
        )

    return [
        pl.when(subj).then(pl.col("subj_net_network_id")).otherwise(pl.col("cp_net_network_id")).alias("network_id"),
        pl.when(subj)
        .then(path(pl.format("subject {}", pl.col("subject_id")), "subj_net"))
        .when(cp)
        .then(path(pl.format("counterparty {}", pl.col("counterparty_id")), "cp_net"))
        .otherwise(None)
        .alias("network_path"),
        pl.when(subj)
        .then(pl.col("subj_net_confidence"))
        .otherwise(pl.col("cp_net_confidence"))
        .alias("network_confidence"),
        pl.when(subj | cp).then(pl.lit(0, pl.Int64)).otherwise(None).alias("network_hops"),
    ]


def attach_links(candidates: pl.DataFrame, profiles: pl.DataFrame, matches: pl.DataFrame) -> pl.DataFrame:
    """Add LINK_COLUMNS: names, official and network matches of subject and counterparty, family-tie hint."""
    names = profiles.select("party_id", "name")
    official = matches.filter(pl.col("list_kind") == "official").drop("list_kind", "network_id")
    network = matches.filter(pl.col("list_kind") == "network").drop("list_kind", "dataset")

    def side(prefix: str, table: pl.DataFrame, on: str) -> pl.DataFrame:
        return table.rename({c: f"{prefix}_{c}" for c in table.columns if c != "party_id"}).rename({"party_id": on})

    joined = (
        candidates.join(side("subject", names, "subject_id"), on="subject_id", how="left")
        .join(side("counterparty", names, "counterparty_id"), on="counterparty_id", how="left")
        .join(side("cp_off", official, "counterparty_id"), on="counterparty_id", how="left")
        .join(side("subj_off", official, "subject_id"), on="subject_id", how="left")
        .join(side("subj_net", network, "subject_id"), on="subject_id", how="left")
        .join(side("cp_net", network, "counterparty_id"), on="counterparty_id", how="left")
    )
    shared = (
        _family_tokens(pl.col("subject_name").fill_null(""))
        .list.set_intersection(_family_tokens(pl.col("counterparty_name").fill_null("")))
        .list.sort()
        .list.first()
    )
    linked = joined.with_columns(*_official_columns(), *_network_columns(), shared.alias("shared_family_name"))
    return linked.select(*candidates.columns, *LINK_COLUMNS).cast(LINK_COLUMNS)  # type: ignore[arg-type]
