"""Fuzzy matching of parties to list entries: normalised names and phones, blocking, a confidence and a reason.

How a party (names, countries, phones) is compared with a list entry:

- **Names** are romanised with `anyascii` (every script we meet, Khmer and Lao included), case-folded,
  stripped of punctuation and honorifics, and split into tokens. Candidate pairs come from *blocking
  keys* built from each token's consonant skeleton (a rough phonetic key, so "Somchai"/"Somchay"/
  Thai "smchay" share one): the whole name's sorted skeletons, every pair of skeletons (a missing
  middle name still shares a pair), and single skeletons only when rare in the list. Keys shared by
  more than `max_block` list names are dropped, so the number of pairs grows with the number of
  parties, never with parties x entries.
- Each candidate pair is scored by token alignment: every token of the shorter name takes its best
  Jaro-Winkler similarity (`rapidfuzz`) among the other name's tokens (a shared skeleton counts at
  least 0.9), averaged (both ways for names of equal length, the lower of the two), less 0.04 per
  unmatched extra token; a one-token name against a longer one
  is capped at 0.75 (a given name alone is not an identity).
- **Phones** are compared in E.164 (`phonenumbers`, using the party's country for local formats).
  A phone that several parties share (an agent's phone) is only weak evidence.
- **Confidence**: a shared phone gives 0.90-0.99 (higher with a closer name). Otherwise the name
  score is multiplied by 0.8 unless the names are equal after normalising (a fuzzy name alone is
  what namesakes look like, so it is only "possible" at the default threshold), by 0.75 when the
  countries differ (0.93 when either side has none) and by 0.75 when both sides have phones and
  none agree, and by 0.8 when the name is common (more than `max_name_share` parties in the data
  use it). So a namesake abroad with another phone (a common name, different phone and country)
  scores at most 0.56 and is never matched.
- A pair at or above `threshold` is a match; between `review_floor` and `threshold` it is reported
  as "possible" (shown for review, never used for scoring). Each keeps a plain reason, e.g.
  `name 0.94 (token order), same phone, same country`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import combinations

import numpy as np
import phonenumbers
import polars as pl
from anyascii import anyascii
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler

from followmoney.kernels import token_aligned_means, token_pair_codes
from followmoney.phones import ascii_digits, ascii_digits_of
from followmoney.timing import LOG, step

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
# Burmese "U", "Daw", "Ko", "Ma" are kept: they are titles but also name parts ("Ko Ko Aung", "Phyo Htet
# Ko"); as tokens are compared in any order, "Ko Aung Thida" still equals "AUNG THIDA KO".
# Particles that carry little identity (Vietnamese middle names, Arabic/Malay links): not used for blocking.
PARTICLES = frozenset(
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
        "md",
    ]
)
_TOKEN = re.compile(r"[a-z0-9]+")
_SKELETON_SUBS = (
    ("ph", "p"),
    ("th", "t"),
    ("kh", "k"),
    ("gh", "g"),
    ("ch", "c"),
    ("sh", "s"),
    ("ck", "k"),
    ("j", "c"),
    ("v", "w"),
    ("z", "s"),
    ("q", "k"),
    ("x", "s"),
)
# Factor on a name-only match whose names differ after normalising (spelling, dropped part): keeps it
# below the default threshold, so a fuzzy name needs a phone (or the exact name) to be a match.
FUZZY_NAME_ONLY = 0.8
_DROP = re.compile(r"[aeiouyhw]")
_REPEAT = re.compile(r"(.)\1+")


@dataclass(frozen=True)
class MatchSettings:
    """Thresholds of the matcher (defaults measured on synthetic worlds; see the README's Linking section)."""

    threshold: float = 0.85  # at or above: a match, used for linking and scoring
    review_floor: float = 0.70  # at or above (and below threshold): reported as "possible"
    max_block: int = 200  # a blocking key shared by more list names than this is too common to use
    max_rare_token: int = 25  # a single-token key is used only when at most this many list names have it
    max_phone_share: int = 5  # a phone used by more parties than this (an agent's) is weak evidence
    max_name_share: int = 2  # a name used by more parties than this is common: alone, only "possible"
    chunk_parties: int = 200_000  # parties matched at once (bounds memory; phone sharing is counted per slice)


@lru_cache(maxsize=2_000_000)
def name_tokens(name: str) -> tuple[str, ...]:
    """A name as Latin tokens in written order: romanised, case-folded, punctuation and honorifics removed."""
    tokens = _TOKEN.findall(anyascii(name).lower())
    return tuple(t for t in tokens if t not in HONORIFICS)


def name_key(name: str) -> str:
    """A name reduced to sorted Latin tokens: case, diacritics, script, order and honorifics ignored."""
    return " ".join(sorted(name_tokens(name)))


def name_keys(names: pl.Series, *, distinct: bool = False) -> pl.Series:
    """`name_key` of every name, vectorised (null stays null); with `distinct`, each token once (a sorted token
    set). anyascii romanises a name one character at a time, so each distinct character outside ASCII is
    romanised once and replaced in every name that holds it (str.replace_many); case-folding, tokens,
    honorifics and sorting are Polars expressions, in one query (an eager list.sort of 800k lists took 15 s)."""
    frame = pl.DataFrame({"n": names.cast(pl.String)})
    chars = frame.select(pl.col("n").str.extract_all(r"[^\x00-\x7F]").explode().drop_nulls().unique().sort())["n"]
    text = pl.col("n")
    if chars.len():
        text = text.str.replace_many(chars.to_list(), [anyascii(c) for c in chars.to_list()])
    honorifics = sorted(HONORIFICS)
    tokens = (
        text.str.to_lowercase()
        .str.extract_all(_TOKEN.pattern)
        .list.eval(pl.element().filter(~pl.element().is_in(honorifics)))
    )
    if distinct:
        tokens = tokens.list.unique()
    return frame.select(tokens.list.sort().list.join(" ").alias(names.name)).to_series()


@lru_cache(maxsize=2_000_000)
def skeleton(token: str) -> str:
    """A rough phonetic key of one romanised token: its first letter and following consonants."""
    t = token
    for a, b in _SKELETON_SUBS:
        t = t.replace(a, b)
    return _REPEAT.sub(r"\1", t[:1] + _DROP.sub("", t[1:]))


def block_keys(key: str) -> list[str]:
    """Blocking keys of one name key: all skeletons sorted, every pair of skeletons, each skeleton."""
    skels = sorted({skeleton(t) for t in key.split() if t not in PARTICLES and len(skeleton(t)) >= 2})
    if not skels:
        skels = sorted({skeleton(t) for t in key.split() if t})
    keys = ["A:" + " ".join(skels)]
    if len(skels) >= 2:
        keys += [f"P:{a} {b}" for a, b in combinations(skels[:6], 2)]
    keys += [f"T:{s}" for s in skels]
    return keys


def phone_keys(phone: str, country: str | None, regions: tuple[str, ...] = ()) -> list[str]:
    """Every E.164 reading of a phone: the party's country's when the number is valid there; else each of
    `regions` where it is valid (a migrant's home-country phone written in local format); else `phone_key`."""
    if not phone.strip().startswith("+") and len(ascii_digits_of(phone)) >= 6:
        readings = []
        for region in dict.fromkeys([country, *regions]):
            try:
                parsed = phonenumbers.parse(phone, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(parsed):
                readings.append(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
                if region == country:
                    break
        if readings:
            return sorted(set(readings))
    key = phone_key(phone, country)
    return [key] if key else []


@lru_cache(maxsize=2_000_000)
def phone_key(phone: str, country: str | None) -> str | None:
    """A phone in E.164 (using the party's country for local formats), or its digits as a fallback."""
    digits = ascii_digits_of(phone)
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


def prepare_names(frame: pl.DataFrame, id_cols: list[str]) -> pl.DataFrame:
    """Explode `names` into (ids..., raw_name, name_key), computing each distinct key once."""
    exploded = (
        frame.select(*id_cols, pl.col("names").alias("raw_name")).explode("raw_name").drop_nulls("raw_name").unique()
    )
    distinct = exploded["raw_name"].unique()
    keys = pl.DataFrame({"raw_name": distinct, "name_key": name_keys(distinct)})
    return exploded.join(keys, on="raw_name", how="left").filter(pl.col("name_key") != "")


def _fast_local_keys(exploded: pl.DataFrame) -> pl.DataFrame:
    """Vectorised E.164 for local numbers valid in the party's own country (the common case).

    Uses phonenumbers' own metadata per distinct country (country code, national prefix, national
    number pattern) as Polars expressions on that country's distinct numbers, so only numbers not
    valid at home (a migrant's phone from another country, odd formats) go through `phone_keys` one
    by one. A number counts as valid here when, without its national prefix (or a leading country
    code), it fully matches the country's general national-number pattern. That reads only the digits
    (`_digits`), so each distinct (digits, country) is checked once, however many ways it is written."""
    todo = exploded.filter(pl.col("phone_key").is_null() & pl.col("cc").is_not_null()).select("_digits", "cc")
    todo = todo.unique()
    found: list[pl.DataFrame] = []
    for (cc,), sub in todo.partition_by("cc", as_dict=True, maintain_order=False).items():
        meta = phonenumbers.PhoneMetadata.metadata_for_region(str(cc).upper())
        if meta is None or meta.general_desc is None or not meta.general_desc.national_number_pattern:
            continue
        pattern = f"^(?:{meta.general_desc.national_number_pattern})$"
        code = str(meta.country_code)
        prefix = meta.national_prefix or ""
        digits = pl.col("_digits")
        readings: list[pl.Expr] = [pl.when(digits.str.starts_with(code)).then(digits.str.slice(len(code)))]
        if prefix:
            readings.append(pl.when(digits.str.starts_with(prefix)).then(digits.str.slice(len(prefix))))
        readings.append(digits)
        valid = [pl.when(r.str.contains(pattern).fill_null(False)).then(r) for r in readings]
        found.append(
            sub.select(
                "_digits", "cc", pl.concat_str(pl.lit("+" + code), pl.coalesce(valid)).alias("_fast")
            ).drop_nulls("_fast")
        )
    if not found:
        return exploded
    fast = pl.concat(found)
    return exploded.join(fast, on=["_digits", "cc"], how="left").select(
        pl.exclude("phone_key", "_fast"), pl.coalesce("phone_key", "_fast").alias("phone_key")
    )


def prepare_phones(frame: pl.DataFrame, id_cols: list[str], regions: tuple[str, ...] = ()) -> pl.DataFrame:
    """Explode `phones` into unique (ids..., phone_key) using each row's first country for local formats.

    Numbers written internationally (`+`/`00` then digits) are already E.164 once the formatting is
    stripped, so only local formats go through `phonenumbers` (once per distinct number and country).
    """
    exploded = (
        frame.select(*id_cols, pl.col("phones").alias("raw_phone"), pl.col("countries").list.first().alias("cc"))
        .explode("raw_phone")
        .drop_nulls("raw_phone")
    )
    exploded = exploded.with_columns(ascii_digits(pl.col("raw_phone")).alias("_digits"))
    raw = pl.col("raw_phone").str.strip_chars()
    digits = pl.col("_digits")
    intl = (
        pl.when(raw.str.starts_with("+"))
        .then(pl.concat_str(pl.lit("+"), digits))
        .when(raw.str.starts_with("00"))
        .then(pl.concat_str(pl.lit("+"), digits.str.slice(2)))
        .otherwise(None)
    )
    exploded = exploded.with_columns(intl.alias("phone_key"))
    exploded = exploded.with_columns(
        pl.when(pl.col("phone_key").str.len_chars() < 7).then(None).otherwise(pl.col("phone_key")).alias("phone_key")
    )
    exploded = _fast_local_keys(exploded)
    local = exploded.filter(pl.col("phone_key").is_null()).select("raw_phone", "cc").unique()
    keyed = local.with_columns(
        pl.struct("raw_phone", "cc")
        .map_elements(lambda r: phone_keys(r["raw_phone"], r["cc"], regions), return_dtype=pl.List(pl.String))
        .alias("local_key")
    ).explode("local_key")
    out = exploded.join(keyed, on=["raw_phone", "cc"], how="left", nulls_equal=True).select(
        *id_cols, pl.coalesce("phone_key", "local_key").alias("phone_key")
    )
    return out.drop_nulls("phone_key").unique()


SIMILARITY_CHUNK = 500_000  # name pairs scored at once: their token pair codes are built in memory
DENSE_TOKEN_PAIRS = 1 << 24  # up to this many (a 4,096-token vocabulary), token pairs are looked up densely


def name_similarity(pairs: pl.DataFrame) -> pl.Series:
    """Token-aligned similarity (0-1) of each row's `key_a` and `key_b` (name keys), in row order.

    Pairs are independent: they are scored SIMILARITY_CHUNK at a time, so memory stays bounded however
    many pairs blocking produced (3.2M pairs at 50M rows took 8 GB in one piece)."""
    if pairs.height <= SIMILARITY_CHUNK:
        return _name_similarity(pairs)
    return pl.concat(
        [_name_similarity(pairs.slice(i, SIMILARITY_CHUNK)) for i in range(0, pairs.height, SIMILARITY_CHUNK)]
    )


def _name_similarity(pairs: pl.DataFrame) -> pl.Series:
    """name_similarity of one chunk. Tokens are numbered over the chunk's vocabulary; each distinct token
    pair is scored once (Jaro-Winkler, raised to 0.9 for equal phonetic skeletons), and a Numba kernel
    aligns every name pair's tokens with those scores.

    Each side's distinct name keys are split into tokens once, and every pair's tokens gathered from its
    keys' (a chunk of 500k blocked pairs of the 50M world holds about 10k distinct keys a side: splitting
    every pair's two keys was a third of the step)."""
    if pairs.height == 0:
        return pl.Series("name_score", [], dtype=pl.Float64)
    keys_a, keys_b = (pairs[k].fill_null("") for k in ("key_a", "key_b"))
    distinct_a, distinct_b = keys_a.unique(), keys_b.unique()
    split_a, split_b = distinct_a.str.split(" "), distinct_b.str.split(" ")
    tok_a, tok_b = split_a.explode(), split_b.explode()
    vocab = pl.concat([tok_a, tok_b]).drop_nulls().unique().sort()
    enum = pl.Enum(vocab)
    starts_a, ids_a = _pair_tokens(
        keys_a.cast(pl.Enum(distinct_a)).to_physical().cast(pl.Int64).to_numpy(),
        _offsets(split_a),
        tok_a.cast(enum).to_physical().cast(pl.Int64).to_numpy(),
    )
    starts_b, ids_b = _pair_tokens(
        keys_b.cast(pl.Enum(distinct_b)).to_physical().cast(pl.Int64).to_numpy(),
        _offsets(split_b),
        tok_b.cast(enum).to_physical().cast(pl.Int64).to_numpy(),
    )
    n_vocab = np.int64(vocab.len())
    every = token_pair_codes(starts_a, ids_a, starts_b, ids_b, n_vocab)
    dense = n_vocab * n_vocab <= DENSE_TOKEN_PAIRS
    if dense:
        # The distinct codes, sorted, from a mark per possible code (4.5M codes of 500k pairs: 0.01 s against
        # 0.14 s to hash and sort them).
        seen = np.zeros(n_vocab * n_vocab, dtype=np.bool_)
        seen[every] = True
        codes = np.flatnonzero(seen).astype(np.int64)
    else:
        codes = pl.Series(every).unique().sort().to_numpy()
    del every
    first, second = codes // n_vocab, codes % n_vocab
    jw = process.cpdist(
        vocab.gather(first).to_list(),
        vocab.gather(second).to_list(),
        scorer=JaroWinkler.normalized_similarity,
        workers=-1,
    )
    skel = vocab.map_elements(skeleton, return_dtype=pl.String)
    skel_id = skel.rank("dense").to_numpy()
    long = (skel.str.len_chars() >= 2).to_numpy()
    same = (skel_id[first] == skel_id[second]) & long[first]
    sims = np.where(same, np.maximum(jw, np.float32(0.9)), jw)
    table = np.empty(0, dtype=sims.dtype)
    if dense:
        # Every token pair of the chunk's vocabulary by code: the kernel loads a pair's similarity instead of
        # searching for it (500k pairs of the 50M world, vocabulary 2,389: 0.25 -> 0.04 s). Only the pages
        # holding the chunk's pairs are touched.
        table = np.empty(n_vocab * n_vocab, dtype=sims.dtype)
        table[codes] = sims
    mean_a, mean_b = token_aligned_means(starts_a, ids_a, starts_b, ids_b, n_vocab, codes, sims, table)
    scored = pairs.select(
        "key_a",
        "key_b",
        pl.Series("mean_a", mean_a).cast(pl.Float32).fill_nan(None),
        pl.Series("mean_b", mean_b).cast(pl.Float32).fill_nan(None),
        pl.Series("n_a", np.diff(starts_a)),
        pl.Series("n_b", np.diff(starts_b)),
    )
    short = (
        pl.when(pl.col("n_a") == pl.col("n_b"))
        .then(pl.min_horizontal("mean_a", "mean_b"))
        .when(pl.col("n_a") < pl.col("n_b"))
        .then(pl.col("mean_a"))
        .otherwise(pl.col("mean_b"))
    )
    extra = (pl.col("n_a") - pl.col("n_b")).abs()
    sim = short * (1 - 0.04 * extra)
    sim = (
        pl.when((pl.min_horizontal("n_a", "n_b") == 1) & (extra > 0)).then(pl.min_horizontal(sim, 0.75)).otherwise(sim)
    )
    sim = pl.when(pl.col("key_a") == pl.col("key_b")).then(1.0).otherwise(sim)
    return scored.select(sim.clip(0, 1).fill_null(0.0).alias("name_score")).to_series()


def _offsets(token_lists: pl.Series) -> np.ndarray:
    """Where each list's tokens start in the exploded lists, and their end: n + 1 offsets."""
    return np.concatenate([[0], token_lists.list.len().fill_null(0).cum_sum().cast(pl.Int64).to_numpy()])


def _pair_tokens(
    pair_keys: np.ndarray, key_starts: np.ndarray, key_tokens: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(starts, tokens) of every pair's side, as the alignment kernels read them (pair p's tokens are
    tokens[starts[p]:starts[p + 1]]), gathered from its distinct key's: `pair_keys` indexes the keys, whose
    tokens are key_tokens[key_starts[k]:key_starts[k + 1]]."""
    first = key_starts[pair_keys]
    lengths = key_starts[pair_keys + 1] - first
    starts = np.zeros(pair_keys.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    at = np.repeat(first - starts[:-1], lengths) + np.arange(starts[-1], dtype=np.int64)
    return starts, np.ascontiguousarray(key_tokens[at])


def _script(name: str) -> bool:
    """True when the name has letters outside Latin (so matching it needed transliteration)."""
    return any(ch.isalpha() and not unicodedata.name(ch, "").startswith("LATIN") for ch in name)


def explain_name(a: str, b: str, score: float) -> str:
    """Why two names compare as they do, in a few words: `name 0.94 (token order)`."""
    if score < 0.7:
        return f"name differs ({score:.2f})"
    ta, tb = name_tokens(a), name_tokens(b)
    if a.strip() == b.strip():
        how = "exact"
    elif ta == tb:
        raw_a, raw_b = _TOKEN.findall(anyascii(a).lower()), _TOKEN.findall(anyascii(b).lower())
        if _script(a) or _script(b):
            how = "transliteration"
        elif raw_a != raw_b:
            how = "honorific"
        else:
            how = "case/diacritics"
    elif sorted(ta) == sorted(tb):
        how = "token order"
    elif len(ta) != len(tb):
        how = "missing name part"
    elif _script(a) or _script(b):
        how = "transliteration"
    else:
        how = "spelling"
    return f"name {score:.2f} ({how})"


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
    # Added by the fuzzy matcher (the columns above are the stable contract).
    "status": pl.String(),  # "match" (>= threshold) or "possible" (>= review floor)
    "name_score": pl.Float64(),
    "party_name": pl.String(),  # the party's name that matched best
    "matched_name": pl.String(),  # the list name (or alias) it matched
}


def _with_blocks(names: pl.DataFrame) -> pl.DataFrame:
    """(name_key, bkey): every blocking key of each distinct name key of `names`."""
    # Built as two flat lists: one Python call per distinct name, no per-row Series construction.
    keys: list[str] = []
    blocks: list[str] = []
    for key in names["name_key"].unique().to_list():
        found = block_keys(key)
        keys.extend([key] * len(found))
        blocks.extend(found)
    return pl.DataFrame({"name_key": keys, "bkey": blocks}, schema={"name_key": pl.String, "bkey": pl.String})


def entry_blocks(e_names: pl.DataFrame) -> pl.DataFrame:
    """(name_key, bkey, block_len) of list names: each distinct name key's blocking keys, with how many
    name keys of the list share the blocking key (a key shared by too many is not used)."""
    blocks = _with_blocks(e_names)
    return blocks.join(blocks.group_by("bkey").len("block_len"), on="bkey", how="left")


def _name_pairs(
    p_names: pl.DataFrame, e_names: pl.DataFrame, settings: MatchSettings, e_blocks: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Distinct (party name key, entry name key) pairs sharing a usable blocking key (`e_blocks`: the
    entries' entry_blocks, when already computed)."""
    eb = entry_blocks(e_names) if e_blocks is None else e_blocks
    cap = pl.when(pl.col("bkey").str.starts_with("T:")).then(settings.max_rare_token).otherwise(settings.max_block)
    eb = eb.filter(pl.col("block_len") <= cap).select("name_key", "bkey")
    pb = _with_blocks(p_names).join(eb.select(pl.col("bkey").unique()), on="bkey", how="semi")
    return (
        pb.join(eb, on="bkey", suffix="_e")
        .select(pl.col("name_key").alias("key_a"), pl.col("name_key_e").alias("key_b"))
        .unique()
    )


def approx_name_key(name: pl.Expr) -> pl.Expr:
    """A vectorised stand-in for `name_key` (lower-case Latin tokens, sorted) to count names over a whole dump."""
    return (
        name.str.to_lowercase()
        .str.replace_all(r"[^a-z0-9]+", " ")
        .str.strip_chars()
        .str.split(" ")
        .list.sort()
        .list.join(" ")
    )


def name_counts_from(profiles: pl.DataFrame) -> pl.DataFrame:
    """How many distinct parties use each name (by `approx_name_key`) among the given profiles."""
    return (
        profiles.select("party_id", pl.col("names").alias("n"))
        .explode("n")
        .drop_nulls("n")
        .select("party_id", approx_name_key(pl.col("n")).alias("approx_key"))
        .group_by("approx_key")
        .agg(pl.col("party_id").n_unique().cast(pl.Int64).alias("name_parties"))
    )


# Whole-name similarity (sorted tokens, rapidfuzz ratio) below which a blocked pair cannot reach the review
# floor after token alignment; one vectorised pass drops most blocked pairs before the costlier alignment.
PREFILTER_RATIO = 0.5


def _prefilter(pairs: pl.DataFrame) -> pl.DataFrame:
    """Blocked name pairs whose sorted-token strings are at least PREFILTER_RATIO alike."""
    if pairs.height == 0:
        return pairs
    ratio = process.cpdist(
        pairs["key_a"].to_list(), pairs["key_b"].to_list(), scorer=fuzz.ratio, workers=-1, score_cutoff=None
    )
    return pairs.filter(pl.Series(ratio) >= 100 * PREFILTER_RATIO)


ENTRY_KEYS = ["list_kind", "list_id"]


@dataclass(frozen=True)
class PreparedEntries:
    """List entries as the matcher compares them, prepared once for every batch of parties matched against
    them (a scan matches several batches against the same lists; at 100k entries preparing them takes 1 s)."""

    frame: pl.DataFrame  # the entries (lists.ENTRY_SCHEMA)
    names: pl.DataFrame  # prepare_names: list_kind, list_id, raw_name, name_key
    blocks: pl.DataFrame  # entry_blocks: name_key, bkey, block_len
    regions: tuple[str, ...]  # the entries' countries: a local-format phone may belong to any of them
    phones: pl.DataFrame  # prepare_phones: list_kind, list_id, phone_key

    @classmethod
    def of(cls, entries: pl.DataFrame | PreparedEntries) -> PreparedEntries:
        """The prepared form of `entries` (returned as it is when already prepared)."""
        if isinstance(entries, PreparedEntries):
            return entries
        names = prepare_names(entries, ENTRY_KEYS)
        # Local-format phones may belong to any country the lists know (a migrant's home number).
        regions = tuple(sorted(set(entries["countries"].explode().drop_nulls().to_list())))
        return cls(
            frame=entries,
            names=names,
            blocks=entry_blocks(names),
            regions=regions,
            phones=prepare_phones(entries, ENTRY_KEYS, regions),
        )


@dataclass(frozen=True)
class PreparedLists:
    """The lists of a scan, each way the linker matches against them, prepared on first use and then kept:
    every list (for the parties an alert can name) and the networks list alone (for the rest of the graph)."""

    frame: pl.DataFrame  # every entry (lists.ENTRY_SCHEMA)

    @cached_property
    def every(self) -> PreparedEntries:
        """All entries, prepared."""
        return PreparedEntries.of(self.frame)

    @cached_property
    def networks(self) -> PreparedEntries:
        """The network members' entries alone, prepared."""
        return PreparedEntries.of(self.frame.filter(pl.col("list_kind") == "network"))


def score_candidates(
    profiles: pl.DataFrame,
    entries: pl.DataFrame | PreparedEntries,
    settings: MatchSettings | None = None,
    name_counts: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Every blocked (party, entry) pair with name score, phone and country evidence, confidence and basis.

    `name_counts` (approx_key, name_parties) says how many parties of the whole data use a name; a
    name used by more than `settings.max_name_share` parties is common, and alone only "possible".
    Without it, names are counted among `profiles`.
    """
    settings = settings or MatchSettings()
    name_counts = name_counts if name_counts is not None else name_counts_from(profiles)
    ekeys = ENTRY_KEYS
    prepared = PreparedEntries.of(entries)
    p_names = prepare_names(profiles, ["party_id"])
    e_names = prepared.names
    p_phones = prepare_phones(profiles, ["party_id"], prepared.regions)
    e_phones = prepared.phones
    share = p_phones.group_by("phone_key").agg(pl.col("party_id").n_unique().alias("share"))
    by_phone = (
        p_phones.join(e_phones, on="phone_key")
        .join(share, on="phone_key", how="left")
        .group_by("party_id", *ekeys)
        .agg((pl.col("share").min() <= settings.max_phone_share).alias("phone_strong"))
    )
    with step("blocked name pairs", depth=3):
        blocked = _name_pairs(p_names, e_names, settings, prepared.blocks)
        name_pairs = _prefilter(blocked)
    LOG.info(
        "      %s party names, %s blocked name pairs, %s after the prefilter",
        f"{p_names.height:,}",
        f"{blocked.height:,}",
        f"{name_pairs.height:,}",
    )
    # Pairs found by phone are scored on names too, so their reason can say how the names compare.
    phone_name_pairs = (
        by_phone.select("party_id", *ekeys)
        .join(p_names.select("party_id", pl.col("name_key").alias("key_a")), on="party_id")
        .join(e_names.select(*ekeys, pl.col("name_key").alias("key_b")), on=ekeys)
        .select("key_a", "key_b")
    )
    all_pairs = pl.concat([name_pairs, phone_name_pairs]).unique()
    with step(f"name similarity of {all_pairs.height:,} pairs", depth=3):
        all_pairs = all_pairs.with_columns(name_similarity(all_pairs))
    # Without a shared phone a pair's confidence is at most its name score, times FUZZY_NAME_ONLY when the
    # names differ (see `by_name` below). A name pair that cannot reach the review floor that way matters
    # only to a (party, entry) sharing a phone (its reason says how the names compare): the rest are
    # dropped before names fan out to every party and entry using them (with a 100k-entry list, 200k
    # parties fanned out to 14M scored pairs, 8 GB, almost all of them namesakes below the floor).
    name = pl.col("name_score")
    floor = pl.when(name >= 1.0).then(name).otherwise(name * FUZZY_NAME_ONLY) >= settings.review_floor
    all_pairs = pl.concat(
        [all_pairs.filter(floor), all_pairs.filter(~floor).join(phone_name_pairs, on=["key_a", "key_b"], how="semi")]
    )
    per_name = (
        p_names.rename({"raw_name": "party_name", "name_key": "key_a"})
        .join(all_pairs, on="key_a")
        .join(e_names.rename({"raw_name": "matched_name", "name_key": "key_b"}), on="key_b")
        .with_columns(pl.col("matched_name").str.len_chars().alias("_len"))
        # The best name pair per (party, entry); ties go to the shortest list name (the plain name before
        # titled aliases), then alphabetically. Sorted within each group, not as one sort of every pair
        # (2.3M pairs of a 131k-party match against the 50M lists: 1.15 s against 1.73 s); callers order
        # the result themselves (match_parties sorts by party, kind, confidence and list id).
        .group_by("party_id", *ekeys)
        .agg(
            pl.col("name_score", "party_name", "matched_name")
            .sort_by(["name_score", "_len", "party_name", "matched_name"], descending=[True, False, False, False])
            .first()
        )
        # How many parties use each name: keyed once per distinct party name, not per (party, entry) pair (2.3M
        # pairs in the 50M world's first match, which this made about 1.5 s faster, of 11).
        .join(name_parties_of(p_names["raw_name"], name_counts), on="party_name", how="left")
    )
    keys = ["party_id", *ekeys]
    # Name-only pairs below the review floor can never be reported: drop them before the joins.
    per_name = (
        per_name.join(by_phone.select(keys), on=keys, how="anti")
        .filter(pl.col("name_score") >= settings.review_floor)
        .vstack(per_name.join(by_phone.select(keys), on=keys, how="semi"))
    )
    pairs = per_name.join(by_phone, on=keys, how="full", coalesce=True)
    p_has = p_phones.select("party_id").unique().with_columns(pl.lit(True).alias("p_has_phone"))
    e_has = e_phones.select(*ekeys).unique().with_columns(pl.lit(True).alias("e_has_phone"))
    pairs = (
        pairs.join(p_has, on="party_id", how="left")
        .join(e_has, on=ekeys, how="left")
        .join(profiles.select("party_id", pl.col("countries").alias("p_countries")), on="party_id", how="left")
        .join(prepared.frame.select(*ekeys, pl.col("countries").alias("e_countries")), on=ekeys, how="left")
    )
    return with_evidence(pairs, settings)


def name_parties_of(names: pl.Series, name_counts: pl.DataFrame) -> pl.DataFrame:
    """(party_name, name_parties) of every distinct name of `names`: name_counts' (approx_key, name_parties) count
    of its approx_name_key, null when the key is not counted. Each distinct name is keyed once."""
    distinct = names.unique().drop_nulls().to_frame("party_name")
    return (
        distinct.with_columns(approx_name_key(pl.col("party_name")).alias("approx_key"))
        .join(name_counts, on="approx_key", how="left")
        .select("party_name", "name_parties")
    )


def with_evidence(pairs: pl.DataFrame, settings: MatchSettings) -> pl.DataFrame:
    """score_candidates' last step: each joined (party, entry) pair's `phone` and `country` evidence and its
    `confidence`, from its name score, name_parties, phone_strong (null: no shared phone), whether each side
    has a phone and both sides' countries; the helper columns are dropped.

    The countries both sides share are counted in a column of their own before any conditional uses them:
    Polars 2.2.0 panics ("index out of bounds") on a list set operation evaluated inside a when/then branch
    when the two list columns are split into chunks at different rows, as score_candidates' stack of name-only
    pairs over phone pairs leaves them."""
    pairs = pairs.with_columns(
        pl.col("p_countries").list.set_intersection(pl.col("e_countries")).list.len().alias("_n_shared")
    )
    phone_same = pl.col("phone_strong").is_not_null()
    phone_conflict = ~phone_same & pl.col("p_has_phone").fill_null(False) & pl.col("e_has_phone").fill_null(False)
    n_shared = pl.col("_n_shared")
    either_empty = (pl.col("p_countries").list.len() == 0) | (pl.col("e_countries").list.len() == 0)
    country = (
        pl.when(n_shared > 0)
        .then(pl.lit("same"))
        .when(either_empty)
        .then(pl.lit("unknown"))
        .otherwise(pl.lit("different"))
    )
    name = pl.col("name_score").fill_null(0.0)
    common = pl.col("name_parties").fill_null(1) > settings.max_name_share
    by_name = (
        name
        # A fuzzy name (not the same after normalising) is common among namesakes: alone it is only "possible".
        * pl.when(name >= 1.0).then(1.0).otherwise(FUZZY_NAME_ONLY)
        # A name many parties use says little about which of them is the listed person.
        * pl.when(common).then(FUZZY_NAME_ONLY).otherwise(1.0)
        * pl.when(country == "same").then(1.0).when(country == "unknown").then(0.93).otherwise(0.75)
        * pl.when(phone_conflict).then(0.75).otherwise(1.0)
    )
    confidence = (
        pl.when(phone_same & pl.col("phone_strong").fill_null(False))
        .then(0.90 + 0.09 * name)
        .when(phone_same)  # a phone many parties share: weak support for the name
        .then(pl.min_horizontal(by_name + 0.05, pl.lit(0.95)))
        .otherwise(by_name)
    )
    return pairs.with_columns(
        pl.when(phone_same)
        .then(pl.when(pl.col("phone_strong")).then(pl.lit("same phone")).otherwise(pl.lit("same shared phone")))
        .when(phone_conflict)
        .then(pl.lit("different phone"))
        .otherwise(None)
        .alias("phone"),
        country.alias("country"),
        confidence.round(4).alias("confidence"),
    ).drop("p_has_phone", "e_has_phone", "p_countries", "e_countries", "phone_strong", "_n_shared")


def _basis(frame: pl.DataFrame, max_share: int) -> pl.Series:
    """The plain reason of each scored pair: `name 0.94 (token order), same phone, same country`."""
    out = []
    for party_name, matched, score, phone, country, share in zip(
        frame["party_name"].to_list(),
        frame["matched_name"].to_list(),
        frame["name_score"].to_list(),
        frame["phone"].to_list(),
        frame["country"].to_list(),
        frame["name_parties"].to_list(),
        strict=True,
    ):
        parts = []
        if party_name is not None and matched is not None and score is not None:
            parts.append(explain_name(party_name, matched, score))
            if share is not None and share > max_share:
                parts.append(f"a common name ({share} parties use it)")
        if phone:
            parts.append(phone)
        if country in ("same", "different"):
            parts.append(f"{country} country")
        out.append(", ".join(parts))
    return pl.Series("basis", out, dtype=pl.String)


def match_parties(
    profiles: pl.DataFrame,
    entries: pl.DataFrame | PreparedEntries,
    settings: MatchSettings | None = None,
    *,
    include_possible: bool = False,
    name_counts: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Best list entry per (party, list kind) at or above the threshold (and the review floor if asked).
    `entries` may come prepared (PreparedEntries.of) when the same lists are matched more than once."""
    settings = settings or MatchSettings()
    frame = entries.frame if isinstance(entries, PreparedEntries) else entries
    if profiles.height == 0 or frame.height == 0:
        return pl.DataFrame(schema=MATCH_SCHEMA)
    if profiles.height > settings.chunk_parties:
        # Parties are independent: match them in slices so memory stays bounded.
        counts = name_counts if name_counts is not None else name_counts_from(profiles)
        prepared = PreparedEntries.of(entries)
        parts = [
            match_parties(
                profiles.slice(i, settings.chunk_parties),
                prepared,
                settings,
                include_possible=include_possible,
                name_counts=counts,
            )
            for i in range(0, profiles.height, settings.chunk_parties)
        ]
        return pl.concat(parts).sort(["party_id", "list_kind"])
    scored = score_candidates(profiles, entries, settings, name_counts)
    floor = settings.review_floor if include_possible else settings.threshold
    best = (
        scored.filter(pl.col("confidence") >= floor)
        .sort(["party_id", "list_kind", "confidence", "list_id"], descending=[False, False, True, False])
        .group_by(["party_id", "list_kind"], maintain_order=True)
        .first()
    )
    best = best.with_columns(
        _basis(best, settings.max_name_share),
        pl.when(pl.col("confidence") >= settings.threshold)
        .then(pl.lit("match"))
        .otherwise(pl.lit("possible"))
        .alias("status"),
    )
    return (
        best.join(
            frame.select("list_kind", "list_id", "network_id", pl.col("name").alias("entry_name"), "role", "dataset"),
            on=["list_kind", "list_id"],
            how="left",
        )
        .select(list(MATCH_SCHEMA))
        .cast(MATCH_SCHEMA)  # type: ignore[arg-type]
        .sort(["party_id", "list_kind"])
    )
