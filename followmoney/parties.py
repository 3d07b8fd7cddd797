"""Profiles of the parties that appear in candidate alerts: the names, countries and phones they used.

Names and phones are not needed to detect patterns, so they are not carried through detection. When
candidates need linking, one streaming pass over the input builds the party directory (every distinct
party id, name, country and phone, with how many transfers used them); profiles, phone sharers and
name frequencies are then lookups in it, not further passes over a dump of hundreds of millions of rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

from followmoney import schema as S
from followmoney.config import ReadOptions
from followmoney.errors import InputError, ResourceError
from followmoney.normalise import PARTY_KEY_SEED
from followmoney.phones import ascii_digits, phone_numbers, phone_tail_number
from followmoney.read import READ_ERRORS, InputFile, scan_file
from followmoney.resident import PeakSampler, Resident, resident

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


def _collect(
    parts: list[tuple[InputFile, pl.LazyFrame]],
    what: str,
    combine: Callable[[pl.LazyFrame], pl.LazyFrame],
    per_part: Callable[[pl.LazyFrame], pl.LazyFrame] | None = None,
) -> pl.DataFrame:
    """`combine` the per-file scans (each first passed through `per_part`, if given) as one query and
    collect it (streaming); a file that cannot be read again is named in the error."""
    try:
        union = pl.concat([lf if per_part is None else per_part(lf) for _, lf in parts])
        return combine(union).collect(engine="streaming")
    except READ_ERRORS as exc:
        for info, lf in parts:  # error path only: find the file at fault
            try:
                lf.collect()
            except READ_ERRORS as own:
                raise InputError(
                    f"could not re-read {what} ({' '.join(str(own).split())[:150]})", file=info.label
                ) from None
        raise InputError(f"could not re-read {what} ({' '.join(str(exc).split())[:150]})") from None


# Peak memory of building the directory, per input row of a slice (synth worlds, whose names and phones vary
# by transliteration; measured: 1.3 GB for the 10M world in one piece, 130 bytes a row; 5.4 GB for the 50M
# world in two slices, 216 bytes a row of a slice, the process's own half GB included). Each slice is a
# pass over every input row (50M: 18.6 s a pass), so slices are not made smaller than this needs. The
# figure plans the first pass only: later passes are sized from what the first one measured (PassSizer).
DIRECTORY_BYTES_PER_ROW = 300
# The hash space of party ids a directory built in passes is cut into: each pass takes a range of buckets.
DIRECTORY_BUCKETS = 4096
# The least memory a pass is taken to hold per directory row it finds, whatever its measured rise (measured:
# 390 bytes at 50M rows in 2 passes, 390-600 at 200M in 4 files; the union of a file's sides, grouped per file
# and side, then merged).
DIRECTORY_BYTES_PER_DISTINCT_ROW = 300


@dataclass(frozen=True)
class PartyDirectory:
    """Distinct (party_id, name, country, phone) of both sides of every input row, with `len`: how many
    transfers used that combination. Ids as text, countries trimmed and upper-case, names and phones raw.
    Lazy: in memory, or Parquet slices on disk for a dump whose directory would not fit (`passes`: how many
    passes over the input built it)."""

    rows: pl.LazyFrame  # with phone_tails' tail7 and tail8 (see of())
    passes: int = 1

    @classmethod
    def of(cls, rows: pl.DataFrame | pl.LazyFrame, passes: int = 1) -> PartyDirectory:
        """A directory of (party_id, name, country, phone, len) rows, with phone tails added if absent."""
        lazy = rows.lazy()
        return cls(lazy if "tail8" in lazy.collect_schema().names() else with_phone_tails(lazy), passes)

    @classmethod
    def empty(cls) -> PartyDirectory:
        """A directory of no parties."""
        schema = {"party_id": pl.String, "name": pl.String, "country": pl.String, "phone": pl.String, "len": pl.UInt32}
        return cls.of(pl.LazyFrame(schema=schema))

    @cached_property
    def name_keys(self) -> pl.DataFrame:
        """Every distinct name of the directory with its matching.approx_name_key, computed once for all the
        lookups of a scan (name frequencies, the official screen)."""
        from followmoney.matching import approx_name_key

        names = self.rows.select(pl.col("name").drop_nulls().unique()).collect(engine="streaming")
        return names.with_columns(approx_name_key(pl.col("name")).alias("approx_key"))

    @cached_property
    def name_parties(self) -> pl.DataFrame:
        """How many distinct party ids use each approx_name_key of the directory (approx_key, name_parties),
        counted once per scan: every name_frequencies lookup is then a filter of this table, not a join
        over the whole directory (10M rows: 0.65 s once, against 0.77 s per lookup). One streaming query: each
        directory row's name becomes its key's 32-bit code (a join against the distinct names), and the distinct
        (code, party) pairs are counted per code. 50M rows: 3.1-3.3 s, against 3.9 s for distinct (party, name)
        and then distinct (key, party) on the texts, and 6.4 s for counting distinct parties per key in memory."""
        keys = self.name_keys.with_columns(pl.col("approx_key").rank("dense").cast(pl.UInt32).alias("_code"))
        counted = (
            self.rows.select("party_id", "name")
            .join(keys.lazy().select("name", "_code"), on="name")
            .select("_code", "party_id")
            .unique()
            .group_by("_code")
            .agg(pl.len().cast(pl.Int64).alias("name_parties"))
        )
        return (
            counted.join(keys.lazy().select("_code", "approx_key").unique(), on="_code")
            .select("approx_key", "name_parties")
            .collect(engine="streaming")
        )


def with_phone_tails(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Directory rows with `tail7` (screen.phone_tail) and `tail8` (phone_sharers' key): their phone's last 7
    and 8 digits (of any script, phones.ascii_digits) as numbers (null when it has fewer). Computed once per
    distinct directory row, so lookups by phone compare numbers."""
    return (
        rows.with_columns(ascii_digits(pl.col("phone")).alias("_digits"))
        .with_columns(
            phone_tail_number(pl.col("_digits"), 7).alias("tail7"),
            phone_tail_number(pl.col("_digits"), 8).alias("tail8"),
        )
        .drop("_digits")
    )


def directory_slices(rows: int, memory_bytes: int) -> int:
    """How many slices the directory of `rows` input rows is built in to stay within `memory_bytes`."""
    return max(1, -(-rows * DIRECTORY_BYTES_PER_ROW // max(memory_bytes, 1)))


@dataclass
class PassSizer:
    """How many hash buckets each pass of a directory built in passes takes: `planned` until a pass has been
    measured, then as many as fit in `budget` bytes beside the memory the process holds when the pass starts,
    judged from the passes measured so far (their largest anonymous growth per bucket, which grows with the
    parties a pass groups, and their largest other growth, the input's file pages being read, which does not).
    Never fewer than planned: a pass costs a read of the whole input, and the plan is what the scan had before.

    At 200M rows (session 17) the planned seven passes held 2.2 GB of anonymous memory at most, of an 8 GiB
    limit: the plan's bytes per input row follow the input, the directory's memory its distinct rows."""

    planned: int
    budget: int = 0  # 0: not measured, every pass as planned
    per_bucket: float = 0.0
    fixed: int = 0
    measured: bool = False

    def record(self, buckets: int, peak: PeakSampler, rows: int) -> None:
        """Take in what one pass of `buckets` buckets, which found `rows` directory rows, held (its PeakSampler's
        rises). The growth counted is at least DIRECTORY_BYTES_PER_DISTINCT_ROW per row found: an allocator that
        reuses memory a previous step freed (without giving it back) shows a pass no rise at all."""
        if peak.anon_rise is None or peak.total_rise is None or buckets <= 0:
            return
        grown = max(peak.anon_rise, rows * DIRECTORY_BYTES_PER_DISTINCT_ROW)
        self.per_bucket = max(self.per_bucket, grown / buckets)
        self.fixed = max(self.fixed, peak.total_rise - peak.anon_rise)
        self.measured = True

    def width(self, now: Resident | None) -> int:
        """Buckets for the next pass, given the process's resident memory `now`."""
        if not self.measured or now is None or self.budget <= 0:
            return self.planned
        room = self.budget - now.total - self.fixed
        if room <= 0:
            return self.planned
        if self.per_bucket <= 0:
            return DIRECTORY_BUCKETS
        return max(self.planned, int(room // self.per_bucket))


def party_directory(
    files: list[InputFile],
    options: ReadOptions,
    *,
    slices: int = 1,
    spill_dir: Path | None = None,
    memory_bytes: int = 0,
) -> PartyDirectory:
    """One streaming pass over every file's id, name, country and phone columns (both sides).

    With `slices` > 1 (and a `spill_dir`), parties are split by a hash of their id into DIRECTORY_BUCKETS
    buckets and each range of buckets is built in its own pass and written to Parquet, so only one range's
    groups are ever in memory; lookups then scan those files. The first pass takes 1/`slices` of the buckets;
    with `memory_bytes` (what the process may hold), later passes take what its measured memory says fits
    (PassSizer), so a directory smaller than planned costs fewer passes over the input."""
    if slices <= 1 or spill_dir is None:
        return PartyDirectory.of(_directory_slice(files, options, (0, DIRECTORY_BUCKETS)))
    sizer = PassSizer(planned=-(-DIRECTORY_BUCKETS // slices), budget=memory_bytes)
    paths: list[Path] = []
    start = 0
    while start < DIRECTORY_BUCKETS:
        end = min(DIRECTORY_BUCKETS, start + sizer.width(resident()))
        path = spill_dir / f"directory-{len(paths):04d}.parquet"
        with PeakSampler() as peak:
            rows = _directory_slice(files, options, (start, end))
            found = rows.height
            try:
                rows.write_parquet(path, compression="lz4")
            except (OSError, pl.exceptions.PolarsError) as exc:  # a full disk, mostly
                raise ResourceError(
                    f"{spill_dir}: could not write the party directory ({' '.join(str(exc).split())[:150]}); "
                    "free space there or pass --spill-dir on a larger disk"
                ) from None
            # Released before the next pass groups: kept, one pass's rows (50M: 1.2 GB) set the scan's peak.
            del rows
        sizer.record(end - start, peak, found)
        paths.append(path)
        start = end
    return PartyDirectory.of(pl.scan_parquet(paths), passes=len(paths))


def _directory_slice(files: list[InputFile], options: ReadOptions, buckets: tuple[int, int]) -> pl.DataFrame:
    """The directory rows of the parties whose id hashes into the bucket range [start, end)."""
    parts: list[tuple[InputFile, pl.LazyFrame]] = []
    keys = ["party_id", "name", "country", "phone"]
    start, end = buckets
    whole = start == 0 and end == DIRECTORY_BUCKETS
    mine = (pl.col("party_id").hash(PARTY_KEY_SEED) % DIRECTORY_BUCKETS).is_between(start, end, closed="left")
    for info in files:
        lf = scan_file(info, options)
        present = set(info.columns)
        for side in (
            (S.SENDER_ID, S.SENDER_NAME, S.SENDER_COUNTRY, S.SENDER_PHONE),
            (S.RECEIVER_ID, S.RECEIVER_NAME, S.RECEIVER_COUNTRY, S.RECEIVER_PHONE),
        ):
            side_rows = _side(lf, present, *side)
            if not whole:
                side_rows = side_rows.filter(mine)
            parts.append((info, side_rows))
    if whole:
        # One group over both sides of every file: 10M rows 4.6 s, against 6.6 s grouping each side and
        # merging the groups. Polars holds the union's rows to group them (about 100-250 bytes per input
        # row), so this is only for a directory that fits in one slice (DIRECTORY_BYTES_PER_ROW).
        return _collect(parts, "party details", lambda rows: with_phone_tails(rows.group_by(keys).len()))
    # In slices memory is short: each side of each file is grouped as it streams, then the groups are
    # merged in the same query (50M rows, a third of the parties: 20 s and 3.4 GB, against 14 s and
    # 5.7 GB for the union, whose memory grows with the input, not the slice).
    return _collect(
        parts,
        "party details",
        lambda rows: with_phone_tails(rows.group_by(keys).agg(pl.col("len").sum())),
        per_part=lambda lf: lf.group_by(keys).len(),
    )


def shared_phone_numbers(directory: PartyDirectory) -> np.ndarray:
    """The phones (as phones.phone_numbers: the number of their last 9 digits) that two or more party ids of
    the directory use, sorted. A rule counting the sender ids of a phone finds nothing on any other phone, so
    a partitioned scan copies only these phones' sends to the phone's partition (10M world: 2.0M phones, 935
    numbers used by several ids). Both sides' phones count, and every way a number is written: a phone on no
    side of two ids is on no sender side of two.

    Ids are compared by their 64-bit party keys (normalise.party_keys), which a scan stops on if two ids
    share one; a number is shared when its smallest and largest key differ (50M rows: 3.5 s, against 6.8 s
    for counting distinct (id, phone) texts)."""
    rows = (
        directory.rows.filter(pl.col("phone").is_not_null())
        .select(pl.col("party_id").hash(PARTY_KEY_SEED).alias("key"), "phone")
        .collect(engine="streaming")
    )
    numbered = pl.DataFrame({"number": phone_numbers(rows["phone"]), "key": rows["key"]})
    shared = (
        numbered.filter(pl.col("number") >= 0)
        .group_by("number")
        .agg(pl.col("key").min().alias("first"), pl.col("key").max().alias("last"))
        .filter(pl.col("first") != pl.col("last"))
    )
    return np.ascontiguousarray(shared["number"].sort().to_numpy())


def party_profiles(directory: PartyDirectory, party_ids: pl.Series) -> pl.DataFrame:
    """One row per party id: its most used name, all names, countries and phones (sorted, unique)."""
    return profiles_of(directory_rows(directory, party_ids))


def directory_rows(directory: PartyDirectory, party_ids: pl.Series) -> pl.DataFrame:
    """The directory's rows (party_id, name, country, phone, len, tail7, tail8) of `party_ids`, in memory, in the
    directory's order.

    A semi join, not a filter by `is_in`: on a directory in Parquet passes, Polars 2.2.0 takes 25 times as long
    for the filter (50M world, 1.8M of its ids: 56-67 s against 2.2-2.7 s; Polars 2.1.0 2.5 s either way)."""
    if party_ids.len() == 0:
        return directory.rows.head(0).collect()
    wanted = party_ids.unique().to_frame("party_id").lazy()
    return directory.rows.join(wanted, on="party_id", how="semi", maintain_order="left").collect(engine="streaming")


def profiles_of(rows: pl.DataFrame) -> pl.DataFrame:
    """party_profiles of the parties of some directory `rows` (directory_rows): one row per party id."""
    if rows.height == 0:
        return pl.DataFrame(schema=PROFILE_SCHEMA)
    name = pl.col("name").str.strip_chars()
    counts = (
        rows.filter(name.is_not_null() & (name != ""))
        .group_by("party_id", "name")
        .agg(pl.col("len").sum())
        .sort(["party_id", "len", "name"], descending=[False, True, False])
    )
    top = counts.group_by("party_id", maintain_order=True).agg(pl.col("name").first())
    lists = _value_lists(rows, {"names": "name", "countries": "country", "phones": "phone"})
    return (
        lists.join(top, on="party_id", how="left").select(list(PROFILE_SCHEMA)).sort("party_id").cast(PROFILE_SCHEMA)  # type: ignore[arg-type]
    )


def contacts_of(rows: pl.DataFrame) -> pl.DataFrame:
    """The countries and phones lists of profiles_of (party_id, countries, phones), without the names: what
    matching.prepare_phones reads."""
    return _value_lists(rows, {"countries": "country", "phones": "phone"})


def _value_lists(rows: pl.DataFrame, lists: dict[str, str]) -> pl.DataFrame:
    """Per party id of directory `rows`, each list named in `lists` of the values of its column: non-blank,
    unique, sorted."""

    def uniq(col: str) -> pl.Expr:
        # On the gathered lists, not inside the group-by: per-group filter/unique/sort there was 12% slower.
        value = pl.element()
        return pl.col(col).list.eval(value.filter(value.str.strip_chars() != "").drop_nulls().unique().sort())

    grouped = rows.group_by("party_id").agg(pl.col(col).alias(name) for name, col in lists.items())
    return grouped.with_columns(uniq(name) for name in lists)


# --- Party resolution -----------------------------------------------------------------------------

RESOLVED_SCHEMA: dict[str, pl.DataType] = {
    "party_id": pl.String(),
    "resolved_id": pl.String(),  # the smallest party id of the resolved party (stable across runs)
    "party_ids": pl.List(pl.String()),  # every raw id of the resolved party, sorted
    "resolution": pl.String(),  # why ids were merged, e.g. "same phone, name 0.93" (null for a single id)
}


def resolve_parties(profiles: pl.DataFrame, *, min_name: float = 0.85, max_phone_share: int = 5) -> pl.DataFrame:
    """Cluster party ids into resolved parties: ids sharing a phone whose names are close, in a shared country.

    A shared phone alone does not merge (families and agents share phones), nor does a close name
    alone (namesakes are common); both together, in one country, do. A phone used by more than
    `max_phone_share` ids (an agent's) links nobody. Every profiled id appears once in the result.
    """
    from followmoney.graph import union_find
    from followmoney.matching import name_similarity, prepare_names, prepare_phones

    if profiles.height == 0:
        return pl.DataFrame(schema=RESOLVED_SCHEMA)
    ids = profiles.select("party_id").unique().sort("party_id").with_row_index("code")
    phones = prepare_phones(profiles, ["party_id"])
    shared = phones.group_by("phone_key").agg(pl.col("party_id").unique().sort().alias("ids"))
    shared = shared.filter((pl.col("ids").list.len() >= 2) & (pl.col("ids").list.len() <= max_phone_share))
    pairs = (
        shared.select(pl.col("ids").alias("a"), pl.col("ids").alias("b"))
        .explode("a")
        .explode("b")
        .filter(pl.col("a") < pl.col("b"))
        .unique()
    )
    edges = pl.DataFrame(schema={"a": pl.String, "b": pl.String, "score": pl.Float64})
    if pairs.height:
        countries = profiles.select("party_id", "countries")
        pairs = (
            pairs.join(countries.rename({"party_id": "a", "countries": "ca"}), on="a")
            .join(countries.rename({"party_id": "b", "countries": "cb"}), on="b")
            .filter(pl.col("ca").list.set_intersection(pl.col("cb")).list.len() > 0)
            .select("a", "b")
        )
        names = prepare_names(profiles, ["party_id"]).select("party_id", "name_key")
        keyed = pairs.join(names.rename({"party_id": "a", "name_key": "key_a"}), on="a").join(
            names.rename({"party_id": "b", "name_key": "key_b"}), on="b"
        )
        distinct = keyed.select("key_a", "key_b").unique()
        distinct = distinct.with_columns(name_similarity(distinct).alias("score"))
        edges = (
            keyed.join(distinct, on=["key_a", "key_b"])
            .group_by("a", "b")
            .agg(pl.col("score").max())
            .filter(pl.col("score") >= min_name)
        )
    coded = edges.join(ids.rename({"party_id": "a", "code": "ia"}), on="a").join(
        ids.rename({"party_id": "b", "code": "ib"}), on="b"
    )
    labels = union_find(ids.height, coded["ia"].cast(pl.Int64).to_numpy(), coded["ib"].cast(pl.Int64).to_numpy())
    # Codes follow sorted party ids, so the smallest code of a component is its smallest id.
    out = ids.with_columns(pl.Series("root", labels)).with_columns(
        pl.col("party_id").gather(pl.col("root")).alias("resolved_id")
    )
    members = out.group_by("resolved_id").agg(pl.col("party_id").sort().alias("party_ids"))
    why = (
        edges.join(out.select(pl.col("party_id").alias("a"), "resolved_id"), on="a")
        .group_by("resolved_id")
        .agg(pl.col("score").min())
        .select("resolved_id", pl.format("same phone, name {}", pl.col("score").round(2)).alias("resolution"))
    )
    return (
        out.join(members, on="resolved_id")
        .join(why, on="resolved_id", how="left")
        .select(list(RESOLVED_SCHEMA))
        .cast(RESOLVED_SCHEMA)  # type: ignore[arg-type]
        .sort("party_id")
    )


def resolved_profiles(profiles: pl.DataFrame, resolved: pl.DataFrame) -> pl.DataFrame:
    """One profile per resolved party (party_id = resolved_id): names, countries and phones of all its ids."""
    if profiles.height == 0:
        return pl.DataFrame(schema=PROFILE_SCHEMA)
    joined = profiles.join(resolved.select("party_id", "resolved_id"), on="party_id", how="left").with_columns(
        pl.coalesce("resolved_id", "party_id").alias("resolved_id")
    )
    own_name = joined.filter(pl.col("party_id") == pl.col("resolved_id")).select("resolved_id", "name")

    def pooled(col: str) -> pl.Expr:
        return pl.col(col).list.explode(keep_nulls=False, empty_as_null=False).drop_nulls().unique().sort()

    pooled_frame = joined.group_by("resolved_id").agg(pooled("names"), pooled("countries"), pooled("phones"))
    return (
        pooled_frame.join(own_name, on="resolved_id", how="left")
        .rename({"resolved_id": "party_id"})
        .select(list(PROFILE_SCHEMA))
        .cast(PROFILE_SCHEMA)  # type: ignore[arg-type]
        .sort("party_id")
    )


def phone_sharers(directory: PartyDirectory, phones: pl.Series, max_share: int = 5) -> pl.Series:
    """Every party id (sender or receiver) that used one of `phones` (compared on their last 8 digits).

    A phone used by more than `max_share` ids (an agent's, a shop's) is skipped. These ids are only
    candidates: `resolve_parties` decides who is the same person.
    """

    digits = ascii_digits(pl.col("p"))
    wanted = phones.drop_nulls().to_frame("p").select(phone_tail_number(digits, 8).alias("t"))["t"].drop_nulls()
    if wanted.len() == 0:
        return pl.Series("party_id", [], pl.String)
    rows = (
        directory.rows.filter(pl.col("tail8").is_in(wanted.unique().implode()))
        .select("party_id", pl.col("tail8").alias("t"))
        .unique()
        .collect(engine="streaming")
    )
    shared = rows.group_by("t").agg(pl.col("party_id").n_unique().alias("n")).filter(pl.col("n") <= max_share)
    return rows.join(shared, on="t", how="semi")["party_id"].unique().sort()


def name_frequencies(directory: PartyDirectory, profiles: pl.DataFrame) -> pl.DataFrame:
    """How many distinct party ids of the whole input use each name of `profiles` (approx_key, name_parties).

    The counts of every name of the directory are made once per scan (PartyDirectory.name_parties) and kept
    only for the names the profiled parties use. A name many customers share is weak evidence of identity.
    """
    from followmoney.matching import approx_name_key

    wanted = (
        profiles.select(pl.col("names").explode().drop_nulls().alias("n"))
        .select(approx_name_key(pl.col("n")).alias("approx_key"))
        .unique()
    )
    if wanted.height == 0:
        return pl.DataFrame(schema={"approx_key": pl.String, "name_parties": pl.Int64})
    return directory.name_parties.join(wanted, on="approx_key", how="semi")
