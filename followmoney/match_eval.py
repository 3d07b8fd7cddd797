"""How well the matcher finds who is who: precision and recall against a synthetic world's identities.

`identities.parquet` (written by `followmoney synth`) says which customer is which list entry
(`is_true_match`) and which customers are only namesakes of one. Every party in the world's
transactions is profiled, resolved and matched (the same code as a scan, with no candidate filter),
and the confirmed matches are compared with the identities.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl

from followmoney.config import ReadOptions
from followmoney.errors import InputError
from followmoney.link import LinkSettings, link_parties
from followmoney.lists import empty_entries, load_networks, load_officials
from followmoney.parties import party_directory, party_profiles
from followmoney.read import inspect_files, resolve_inputs


def evaluate_world(world: Path, settings: LinkSettings | None = None) -> dict[str, Any]:
    """Precision, recall, namesakes matched and per-noise recall of the matcher on one synth world."""
    settings = settings or LinkSettings()
    paths = {name: world / name for name in ("transactions.arrow", "identities.parquet")}
    for path in paths.values():
        if not path.is_file():
            raise InputError("not found: is this a directory written by `followmoney synth`?", file=str(path))
    started = time.perf_counter()
    parts = [empty_entries()]
    for name, loader in (("officials.csv", load_officials), ("networks.csv", load_networks)):
        if (world / name).is_file():
            parts.append(loader(world / name))
    entries = pl.concat(parts)
    files = inspect_files(resolve_inputs(str(paths["transactions.arrow"])), ReadOptions())
    ids = (
        pl.scan_ipc(paths["transactions.arrow"])
        .select(pl.concat([pl.col("sender_id"), pl.col("receiver_id")]).alias("id"))
        .unique()
        .collect()["id"]
        .drop_nulls()
        .sort()
    )
    profiles = party_profiles(party_directory(files, ReadOptions()), ids)
    result = link_parties(profiles, entries, None, settings)
    elapsed = time.perf_counter() - started
    identities = pl.read_parquet(paths["identities.parquet"]).rename({"customer_id": "party_id"})
    keys = ["party_id", "list_kind", "list_id"]
    matches = result.matches.select(*keys, "status", "confidence", "basis")
    confirmed = matches.filter(pl.col("status") == "match")
    # Identities of customers who never transact cannot be found from the transactions: left out (counted).
    present = identities.join(profiles.select("party_id"), on="party_id", how="semi")
    absent = identities.height - present.height
    identities = present
    truth = identities.filter(pl.col("is_true_match"))
    namesakes = identities.filter(~pl.col("is_true_match"))
    tp = confirmed.join(truth, on=keys, how="semi").height
    found = truth.join(confirmed.select(keys), on=keys, how="left").with_columns(
        pl.Series("found", truth.join(confirmed, on=keys, how="left", coalesce=True)["status"].is_not_null())
    )
    per_noise = (
        found.group_by("noise")
        .agg(pl.len().alias("n"), pl.col("found").sum().alias("found"))
        .sort("noise")
        .with_columns((pl.col("found") / pl.col("n")).round(4).alias("recall"))
    )
    namesake_hits = namesakes.join(confirmed, on=keys, how="semi").height
    namesake_possible = namesakes.join(matches.filter(pl.col("status") == "possible"), on=keys, how="semi").height
    multi = result.resolved.filter(pl.col("party_ids").list.len() > 1)
    return {
        "world": str(world),
        "parties": profiles.height,
        "list_entries": entries.height,
        "threshold": settings.match.threshold,
        "review_floor": settings.match.review_floor,
        "matches": confirmed.height,
        "possible": matches.height - confirmed.height,
        "true_identities": truth.height,
        "identities_not_in_transactions": absent,
        "true_positives": tp,
        "precision": round(tp / confirmed.height, 4) if confirmed.height else 1.0,
        "recall": round(tp / truth.height, 4) if truth.height else 1.0,
        "namesakes": namesakes.height,
        "namesakes_matched": namesake_hits,
        "namesakes_possible": namesake_possible,
        "resolved_parties_with_several_ids": multi["resolved_id"].n_unique(),
        "ids_in_them": multi.height,
        "per_noise": per_noise.to_dicts(),
        "seconds": round(elapsed, 2),
        "false_positives": confirmed.join(truth, on=keys, how="anti").head(20).to_dicts(),
        "missed": truth.join(confirmed, on=keys, how="anti").head(20).to_dicts(),
    }
