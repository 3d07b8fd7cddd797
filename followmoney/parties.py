"""Profiles of the parties that appear in candidate alerts: the names, countries and phones they used.

Names and phones are not needed to detect patterns, so they are read again, only for the few
parties that candidates name, instead of carrying them through every stage for every row.
"""

from __future__ import annotations

import polars as pl

from followmoney import schema as S
from followmoney.config import ReadOptions
from followmoney.errors import InputError
from followmoney.read import InputFile, scan_file

PROFILE_SCHEMA: dict[str, pl.DataType] = {
    "party_id": pl.String(),
    "name": pl.String(),
    "names": pl.List(pl.String()),
    "countries": pl.List(pl.String()),
    "phones": pl.List(pl.String()),
}


def _side(lf: pl.LazyFrame, present: set[str], id_col: str, name: str, country: str, phone: str) -> pl.LazyFrame:
    def opt(col: str) -> pl.Expr:
        return pl.col(col).cast(pl.String) if col in present else pl.lit(None, pl.String)

    return lf.select(
        pl.col(id_col).cast(pl.String).alias("party_id"),
        opt(name).alias("name"),
        opt(country).str.strip_chars().str.to_uppercase().alias("country"),
        opt(phone).alias("phone"),
    )


def party_profiles(files: list[InputFile], options: ReadOptions, party_ids: pl.Series) -> pl.DataFrame:
    """One row per party id: its most used name, all names, countries and phones (sorted, unique)."""
    if party_ids.len() == 0:
        return pl.DataFrame(schema=PROFILE_SCHEMA)
    wanted = party_ids.unique().implode()
    parts = []
    for info in files:
        lf = scan_file(info, options)
        present = set(info.columns)
        for side in (
            (S.SENDER_ID, S.SENDER_NAME, S.SENDER_COUNTRY, S.SENDER_PHONE),
            (S.RECEIVER_ID, S.RECEIVER_NAME, S.RECEIVER_COUNTRY, S.RECEIVER_PHONE),
        ):
            parts.append(_side(lf, present, *side).filter(pl.col("party_id").is_in(wanted)))
    try:
        rows = pl.concat(parts).collect()
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"could not re-read party details ({' '.join(str(exc).split())[:150]})") from None
    name = pl.col("name").str.strip_chars()
    counts = (
        rows.filter(name.is_not_null() & (name != ""))
        .group_by("party_id", "name")
        .len()
        .sort(["party_id", "len", "name"], descending=[False, True, False])
    )
    top = counts.group_by("party_id", maintain_order=True).agg(pl.col("name").first())

    def uniq(col: str) -> pl.Expr:
        return pl.col(col).filter(pl.col(col).str.strip_chars() != "").drop_nulls().unique().sort()

    lists = rows.group_by("party_id").agg(
        uniq("name").alias("names"), uniq("country").alias("countries"), uniq("phone").alias("phones")
    )
    return (
        lists.join(top, on="party_id", how="left").select(list(PROFILE_SCHEMA)).sort("party_id").cast(PROFILE_SCHEMA)  # type: ignore[arg-type]
    )
