"""Phone texts as numbers: a phone's digits in whatever script it is written, and the tails and keys
compared on them.

A phone may be written in Arabic-Indic, Persian, Devanagari, Thai or fullwidth digits as well as ASCII
ones, and phonenumbers reads them all as the same number. Every reading here goes through
`ascii_digits`, so "+٩٧١ ٥٠ ١٢٣ ٤٥٦٧" and "+971 50 123 4567" have the same digits, tails and keys: the
party directory's tails (the official screen, ids sharing a phone), the E.164 keys (matching), the
partition owning a phone and the key a phone rule groups by. ASCII texts, nearly all, are read from
their Arrow bytes by the Numba kernel `kernels.phone_tail_numbers`; texts holding other bytes go through
the Polars expressions, which the kernel's results must equal (tests/test_kernels.py).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import numpy as np
import polars as pl
import pyarrow as pa

from followmoney.kernels import PHONE_TAIL_NONE, PHONE_TAIL_OTHER, phone_tail_numbers

PHONE_KEY = "_phone_key"  # phone_group_keys of the sender's phone: what a phone rule groups by
PHONE_MIX = 0x9E3779B97F4A7C15  # odd: multiplying by it (mod 2^64) spreads phone numbers over partitions
# Above every decimal digit Unicode has (the last, U+1FBF9, is a segmented digit nine); scanning the code
# points below it takes 10 ms once per process.
_DIGITS_END = 0x20000


@cache
def _other_digits() -> tuple[list[str], list[str]]:
    """Every non-ASCII decimal digit (Unicode category Nd) and the ASCII digit it stands for."""
    found = [chr(c) for c in range(0x80, _DIGITS_END) if unicodedata.category(chr(c)) == "Nd"]
    return found, [str(unicodedata.decimal(ch)) for ch in found]


@cache
def _to_ascii_table() -> dict[int, str]:
    digits, values = _other_digits()
    return {ord(d): v for d, v in zip(digits, values, strict=True)}


def ascii_digits(text: pl.Expr) -> pl.Expr:
    """The decimal digits of each text, of any script, as ASCII digits, everything else dropped ("" for a
    text with none, null for null). Only texts holding a byte outside ASCII pay for the script mapping."""
    digits, values = _other_digits()
    text = text.cast(pl.String)
    ascii_only = text.str.len_bytes() == text.str.len_chars()  # cheaper than a regex looking for other bytes
    mapped = pl.when(ascii_only).then(text).otherwise(text.str.replace_many(digits, values))
    return mapped.str.replace_all(r"[^0-9]+", "")


def ascii_digits_of(text: str) -> str:
    """ascii_digits of one Python string."""
    return re.sub(r"[^0-9]+", "", text.translate(_to_ascii_table()))


def phone_tail_number(digits: pl.Expr, n: int) -> pl.Expr:
    """The last `n` digits (of ascii_digits' text) as a number; null with fewer than `n` digits (so equal
    numbers mean equal n-digit tails, leading zeros included). Not a strict cast: Polars may cast a shorter
    text the condition rules out (an exploded list's "n/a" phone, whose digits are "", once stopped a scan)."""
    tail = digits.str.slice(-n).cast(pl.UInt32, strict=False)
    return pl.when(digits.str.len_chars() >= n).then(tail).otherwise(None)


def phone_digits(column: str) -> pl.Expr:
    """A cheap phone key: the last 9 digits (local and international formats of one number agree)."""
    digits = ascii_digits(pl.col(column))
    return pl.when(digits.str.len_chars() >= 7).then(digits.str.slice(-9)).otherwise(None)


def phone_owner_key(digits: pl.Expr) -> pl.Expr:
    """The 64-bit key whose partition owns a phone (`digits`: phone_digits' text): the number its digits
    make, times PHONE_MIX (wrapping), so the partitioner can compute it from the raw text's bytes
    (kernels.phone_tail_numbers) without building the digits."""
    return digits.cast(pl.UInt64, strict=False) * pl.lit(PHONE_MIX, pl.UInt64)  # (see phone_tail_number)


def phone_group_key(digits: pl.Expr) -> pl.Expr:
    """The 64-bit key a phone rule groups a phone by, standing for phone_digits' text (`digits`) exactly:
    its number times 16 plus its length (so "012345678" and "12345678" differ)."""
    number = digits.cast(pl.UInt64, strict=False)  # (see phone_tail_number)
    return number * pl.lit(16, pl.UInt64) + digits.str.len_chars().cast(pl.UInt64)


def phone_tails(phones: pl.Series, with_length: bool = False) -> np.ndarray:
    """kernels.phone_tail_numbers of every text of `phones`, read from its Arrow bytes."""
    if phones.len() == 0:
        return np.zeros(0, dtype=np.int64)
    text = phones.cast(pl.String).to_arrow().cast(pa.large_string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset : text.offset + len(text) + 1]
    data_buffer = text.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    valid = phones.is_not_null().to_numpy()
    return phone_tail_numbers(np.ascontiguousarray(offsets), data, np.ascontiguousarray(valid), with_length)


def phone_numbers(phones: pl.Series) -> np.ndarray:
    """The number the last 9 digits of each phone make (phone_digits' text as a number: what the partition
    owning the phone is computed from), or PHONE_TAIL_NONE for a null or a phone of fewer than 7 digits; texts
    with bytes outside ASCII are read by the expression (phone_tails' PHONE_TAIL_OTHER)."""
    numbers = phone_tails(phones)
    other = np.flatnonzero(numbers == PHONE_TAIL_OTHER)
    if other.size:
        texts = phones.gather(other).to_frame("phone")
        read = texts.select(phone_digits("phone").cast(pl.Int64, strict=False).fill_null(PHONE_TAIL_NONE))
        numbers[other] = read.to_series().to_numpy()
    return numbers


def phone_group_keys(phones: pl.Series) -> pl.Series:
    """phone_group_key(phone_digits) of every phone (null without a usable one), read from the text's bytes
    by a kernel: the regex that builds each phone's digits took most of a phone rule's time (10M phones:
    1.5 s). Texts with bytes outside ASCII go through the expression itself."""
    codes = phone_tails(phones, with_length=True)
    keys = pl.Series(PHONE_KEY, codes.astype(np.uint64)).scatter(np.flatnonzero(codes == PHONE_TAIL_NONE), None)
    other = np.flatnonzero(codes == PHONE_TAIL_OTHER)
    if other.size:
        texts = phones.gather(other).to_frame("phone")
        keys = keys.scatter(other, texts.select(phone_group_key(phone_digits("phone"))).to_series())
    return keys
