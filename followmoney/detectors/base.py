"""The detector contract: a kind of pattern, parametrised by rules, returning candidate alerts.

A detector receives the clean transactions (one partition of parties, or all of them) and a
rule's parameters, and returns candidates in one shape (`schema.CANDIDATE_BASE_SCHEMA` plus its
own evidence columns). It never links parties to lists and never scores: later stages do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from followmoney import schema as S
from followmoney.normalise import PARTY_KEY_SEED


@dataclass(frozen=True)
class Param:
    """One tunable parameter of a detector kind: its type, default and meaning."""

    type: type
    default: Any
    doc: str
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class OfficialScreen:
    """A rule's candidates must name a listed official as `side` ("subject" or "counterparty"), and only
    the parties whose 64-bit keys (normalise.party_keys) are in `keys` can be one (screen.py). A detector
    that knows which of its parties stands on that side may skip every transfer that cannot make such a
    candidate; what it still finds must be exactly what it finds without the screen, for those parties."""

    side: str
    keys: pl.Series  # UInt64, sorted, unique

    def allows(self, key: pl.Expr) -> pl.Expr:
        """True where a 64-bit party key could belong to an official."""
        return key.is_in(self.keys.implode())


class Detector(ABC):
    """A kind of pattern. Subclasses declare `kind`, `params` and `evidence`, and implement `detect`."""

    kind: ClassVar[str]
    summary: ClassVar[str]
    params: ClassVar[dict[str, Param]]
    evidence: ClassVar[dict[str, pl.DataType]]  # extra candidate columns, usable in reason templates

    @abstractmethod
    def detect(
        self, txns: pl.DataFrame, params: dict[str, Any], officials: OfficialScreen | None = None
    ) -> pl.DataFrame:
        """Candidates found in `txns` (clean, normalised transfers) under `params`, each with the
        OWNER_KEY of the party (or phone) whose transfers it was grouped on. With `officials`, a detector
        may leave out candidates whose required official cannot be one (and the work of finding them)."""

    def partition_sides(self, params: dict[str, Any]) -> frozenset[str]:
        """What a partition must hold every transfer of, for this detector's owners: the owner's sends
        and receipts ("party"), or every send from the owner phone ("phone")."""
        return frozenset({"party"})

    def needs_shared_phone(self, params: dict[str, Any]) -> bool:
        """Whether a candidate grouped on a phone (partition_sides "phone") needs two or more sender ids
        using that phone: a partition then needs the sends of shared phones only (spill_transfers)."""
        return False

    @classmethod
    def empty(cls) -> pl.DataFrame:
        """A zero-row candidate frame of this detector's shape (with its OWNER_KEY)."""
        return pl.DataFrame(schema={**S.CANDIDATE_BASE_SCHEMA, **cls.evidence, OWNER_KEY: pl.UInt64()})

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """Every column a candidate of this kind has (base + evidence)."""
        return tuple(S.CANDIDATE_BASE_SCHEMA) + tuple(cls.evidence)


# The partition-then-detect contract: a detector run on one partition of transfers returns candidates
# about every party it sees, but only those whose owner (the party, pair side or phone the candidate was
# grouped on) belongs to the partition saw all of that owner's transfers; the pipeline keeps those.
OWNER_KEY = "_owner_key"


# Optional boolean columns of a partition's frame: the row's sender / receiver / sender phone is owned by
# the partition. A detector may drop rows its owners cannot need (a sender-grouped rule keeps OWN_SENDER
# rows) before any costly step; absent (in memory: one partition owns everything) they read as true.
OWN_SENDER = "_own_sender"
OWN_RECEIVER = "_own_receiver"
OWN_PHONE = "_own_phone"


def owned_rows(frame: pl.DataFrame | pl.LazyFrame, flag: str) -> pl.Expr:
    """The ownership flag `flag` of each row, or true when the frame has no such column."""
    columns = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    return pl.col(flag) if flag in columns else pl.lit(True)


def ownership(frame: pl.DataFrame | pl.LazyFrame) -> list[pl.Expr]:
    """The sender and receiver ownership flags of each row, as `_own_s` and `_own_r`."""
    return [owned_rows(frame, OWN_SENDER).alias("_own_s"), owned_rows(frame, OWN_RECEIVER).alias("_own_r")]


def owner_key(column: str) -> pl.Expr:
    """OWNER_KEY from an id column: the same 64-bit hash as normalise.party_keys (and the partitioner)."""
    return pl.col(column).hash(PARTY_KEY_SEED).alias(OWNER_KEY)


def candidate_head(strength: pl.Expr) -> list[pl.Expr]:
    """The base candidate columns, in schema order, from a frame that already names them; `strength`
    is the detector's own 0-1 evidence strength (rule_code is filled in by the pipeline). The
    detector adds its OWNER_KEY after its evidence columns."""
    return [
        pl.lit(None, pl.String).alias("rule_code"),
        pl.col("subject_id"),
        pl.col("counterparty_id"),
        pl.col("window_start"),
        pl.col("window_end"),
        pl.col("n_txns"),
        pl.col("total_usd"),
        strength.alias("strength"),
        pl.col("txn_ids"),
    ]
