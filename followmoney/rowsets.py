"""Every clean transfer of a scan as one frame (in memory) or as parts (groups of whole spill partitions), and
queries collected over them part by part.

Polars holds some tens of kilobytes for each file one query scans, so a query over every spill file of a big
scan (200M rows: 73k files when each slice wrote files of its own) held gigabytes beyond the memory limit.
Collected part by part, a query scans a bounded number of files at a time (a scan now writes one file per
partition, but per slice where the open-file limit is low: spillfiles.SpillWriters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import polars as pl

# Every clean transfer: a frame, a lazy frame, or parts of it (partition.Transfers.every_row_parts).
Rows = pl.DataFrame | pl.LazyFrame | list[pl.LazyFrame]


def collect_rows(rows: Rows, query: Callable[[pl.LazyFrame], pl.LazyFrame]) -> pl.DataFrame:
    """`query` applied to `rows` and collected (streaming); over parts, part by part, the results stacked in
    part order. Exact for filters and projections; a group-by is exact only when its groups never span two parts
    (every_row_parts: each part holds whole partitions, and a row's copy in it is its sender's)."""
    if not isinstance(rows, list):
        return query(rows.lazy()).collect(engine="streaming")
    frames = [query(part).collect(engine="streaming") for part in rows]
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def own_buffers(rows: pl.DataFrame) -> pl.DataFrame:
    """A copy of a few rows taken from a big frame, its text in buffers of its own. Polars' text columns are views
    into shared buffers, so a filtered or gathered column keeps the whole frame's text alive: each slice's
    quarantined rows kept the slice's txn_ids (14 bytes a row, 2.7 GB over a 200M-row scan), each partition's
    candidates their partition's."""
    return cast(pl.DataFrame, pl.from_arrow(rows.to_arrow()))
