"""run(config) -> Summary: the only module that knows the stage order.

read -> normalise -> detectors -> link -> score -> write
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from followmoney import __version__
from followmoney import schema as S
from followmoney.cases import build_cases
from followmoney.config import ScanConfig
from followmoney.detectors import DETECTORS
from followmoney.errors import InputError
from followmoney.graph import Neighbourhood, neighbourhood
from followmoney.link import LinkSettings, attach_links, link_parties
from followmoney.lists import empty_entries, load_networks, load_officials
from followmoney.normalise import (
    FxTable,
    check_key_collisions,
    load_fx,
    mark_duplicates,
    normalise_file,
    party_keys,
)
from followmoney.parties import party_profiles
from followmoney.read import InputFile, file_sha256, inspect_files, load_columns, load_rows, resolve_inputs
from followmoney.rules import Example, Rule, load_rules
from followmoney.score import score_alerts
from followmoney.write import check_out_dir, write_outputs

# Columns the detectors need; names and phones are read again later only for candidate parties.
CORE_COLUMNS = (
    S.TXN_ID,
    S.TS,
    S.SENDER_ID,
    S.RECEIVER_ID,
    S.SENDER_COUNTRY,
    S.RECEIVER_COUNTRY,
    S.AMOUNT,
    S.CURRENCY,
    S.AMOUNT_USD,
    S.AGENT_ID,
)


class Progress(Protocol):
    """What the pipeline reports progress to (the CLI draws bars; tests pass nothing)."""

    def stage(self, name: str, total: int | None = None) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        """A context for one stage; the yielded callable advances it by n units."""
        ...


class _Silent:
    @contextlib.contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        yield lambda n: None


@dataclass
class Summary:
    """What a scan did: counts, timings, alerts; written as summary.json."""

    data: dict[str, Any]
    alerts: pl.DataFrame
    quarantine: pl.DataFrame | None
    outputs: list[Path] = field(default_factory=list)


@dataclass
class _Timer:
    timings: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 3)


def load_transactions(
    files: list[InputFile], config: ScanConfig, fx: FxTable | None, advance: Callable[[int], None]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Load and normalise every file; returns (clean rows, quarantine keys with reasons)."""
    frames = []
    for index, info in enumerate(files):
        raw = load_columns(info, config.read, CORE_COLUMNS)
        typed = normalise_file(
            raw,
            info.label,
            assume_tz=config.read.assume_tz,
            fx=fx,
            now=config.now,
            max_amount_usd=config.max_amount_usd,
        )
        frames.append(typed.with_columns(pl.lit(index, pl.Int32).alias(S.SOURCE_FILE)))
        advance(1)
    frame = pl.concat(frames, how="diagonal_relaxed")
    if frame.height == 0:
        raise InputError("the input holds no transaction rows", file=", ".join(f.label for f in files))
    frame = mark_duplicates(frame)
    bad = frame.filter(pl.col(S.REASON).is_not_null()).select(S.SOURCE_FILE, S.SOURCE_ROW, S.REASON)
    clean = frame.filter(pl.col(S.REASON).is_null()).drop(S.REASON).with_columns(party_keys())
    return clean, bad


def quarantine_rows(files: list[InputFile], config: ScanConfig, bad: pl.DataFrame) -> pl.DataFrame:
    """All original columns of quarantined rows (as text), with file, row and reason."""
    parts = []
    for index, info in enumerate(files):
        keys = bad.filter(pl.col(S.SOURCE_FILE) == index)
        if keys.height == 0:
            continue
        rows = load_rows(info, config.read, keys[S.SOURCE_ROW])
        parts.append(
            rows.join(keys.select(S.SOURCE_ROW, S.REASON), on=S.SOURCE_ROW, how="left").with_columns(
                pl.lit(info.label).alias(S.SOURCE_FILE)
            )
        )
    frame = pl.concat(parts, how="diagonal_relaxed")
    first = [S.SOURCE_FILE, S.SOURCE_ROW]
    return frame.select(*first, pl.exclude(*first, S.REASON), S.REASON).sort(first)


def detect(clean: pl.DataFrame, rules: list[Rule], advance: Callable[[int], None]) -> pl.DataFrame:
    """Run every rule's detector; candidates of all rules in one frame (rule_code filled in)."""
    parts = []
    for rule in rules:
        found = DETECTORS[rule.kind]().detect(clean, rule.params)
        parts.append(found.with_columns(pl.lit(rule.code).alias("rule_code")))
        advance(1)
    if not parts:
        return pl.DataFrame(schema=S.CANDIDATE_BASE_SCHEMA)
    return pl.concat(parts, how="diagonal_relaxed")


def apply_requirements(linked: pl.DataFrame, rules: list[Rule]) -> pl.DataFrame:
    """Keep candidates that meet their rule's link requirements (e.g. the receiver is an official)."""
    keep = pl.lit(False)
    for rule in rules:
        cond = pl.col("rule_code") == rule.code
        if rule.requires.get("counterparty_official"):
            cond = cond & pl.col("counterparty_official")
        if rule.requires.get("subject_or_counterparty_network"):
            cond = cond & (pl.col("network_hops") == 0)
        keep = keep | cond
    return linked.filter(keep)


def link_candidates(
    candidates: pl.DataFrame,
    profiles: pl.DataFrame,
    entries: pl.DataFrame,
    rules: list[Rule],
    graph: Neighbourhood | None = None,
    settings: LinkSettings | None = None,
) -> pl.DataFrame:
    """Resolve and match the profiled parties, follow the graph to networks, attach it, apply requirements.

    `graph` is the transfer neighbourhood of the candidate parties (graph.neighbourhood); without it
    only direct list membership links a party to a network. Requirements see confirmed matches only.
    """
    result = link_parties(profiles, entries, graph, settings)
    linked = attach_links(candidates, profiles, result.matches, result.network, result.resolved)
    return apply_requirements(linked, rules)


def load_list_entries(config: ScanConfig) -> pl.DataFrame:
    """Officials and network members as one frame of list entries."""
    parts = [empty_entries()]
    if config.officials is not None:
        parts.append(load_officials(config.officials))
    if config.networks is not None:
        parts.append(load_networks(config.networks))
    return pl.concat(parts)


def run(config: ScanConfig, progress: Progress | None = None) -> Summary:
    """Scan the configured input and write alerts, summary and quarantine into config.out_dir."""
    progress = progress or _Silent()
    timer = _Timer()
    check_out_dir(config.out_dir)
    with timer("rules"):
        rules = load_rules(
            config.rules_dir, overrides=config.rule_overrides, select=config.select, exclude=config.exclude
        )
    with timer("lists"):
        entries = load_list_entries(config)
        fx = load_fx(config.fx) if config.fx else None
    with timer("read"):
        files = inspect_files(resolve_inputs(config.inputs), config.read)
    with timer("normalise"), progress.stage("reading and checking files", total=len(files)) as advance:
        clean, bad = load_transactions(files, config, fx, advance)
        check_key_collisions(clean)
    with timer("detect"), progress.stage("running rules", total=len(rules)) as advance:
        candidates = detect(clean, rules, advance)
    with timer("link"), progress.stage("linking parties to lists"):
        party_ids = pl.concat([candidates["subject_id"], candidates["counterparty_id"].drop_nulls()]).unique().sort()
        link_settings = LinkSettings()
        # The transfer graph around candidate parties (issue 4): only needed when a networks list is given.
        graph = (
            neighbourhood(clean, party_ids, link_settings.graph)
            if entries.filter(pl.col("list_kind") == "network").height
            else None
        )
        profiled = party_ids
        if graph is not None:
            profiled = pl.concat([party_ids, graph.edges["sender_id"], graph.edges["receiver_id"]])
        profiles = party_profiles(files, config.read, profiled.unique().sort())
        linked = link_candidates(candidates, profiles, entries, rules, graph, link_settings)
    with timer("score"):
        scored = score_alerts(linked, {r.code: r for r in rules})
        alerts = scored.filter(pl.col("score") >= config.min_score)
    with timer("quarantine"):
        quarantine = quarantine_rows(files, config, bad) if bad.height else None
    data = _summary(config, files, clean, bad, rules, candidates, linked, scored, alerts, entries, timer)
    with timer("write"), progress.stage("writing outputs"):
        outputs = write_outputs(config.out_dir, alerts, quarantine, data, extra={"cases.parquet": build_cases(alerts)})
    return Summary(data, alerts, quarantine, outputs)


def _summary(
    config: ScanConfig,
    files: list[InputFile],
    clean: pl.DataFrame,
    bad: pl.DataFrame,
    rules: list[Rule],
    candidates: pl.DataFrame,
    linked: pl.DataFrame,
    scored: pl.DataFrame,
    alerts: pl.DataFrame,
    entries: pl.DataFrame,
    timer: _Timer,
) -> dict[str, Any]:
    scanned = clean.group_by(S.SOURCE_FILE).len()
    quarantined = bad.group_by(S.SOURCE_FILE).len()

    def count(frame: pl.DataFrame, index: int) -> int:
        hit = frame.filter(pl.col(S.SOURCE_FILE) == index)
        return int(hit["len"][0]) if hit.height else 0

    per_file = []
    for index, info in enumerate(files):
        n_scanned, n_bad = count(scanned, index), count(quarantined, index)
        per_file.append(
            {
                "path": info.label,
                "format": info.fmt,
                "sha256": file_sha256(info.path),
                "rows_read": n_scanned + n_bad,
                "rows_scanned": n_scanned,
                "rows_quarantined": n_bad,
            }
        )
    reasons = bad.select(pl.col(S.REASON).str.split("; ")).explode(S.REASON).group_by(S.REASON).len().sort(S.REASON)

    def per(frame: pl.DataFrame, col: str) -> dict[str, int]:
        if frame.height == 0:
            return {}
        grouped = frame.group_by(col).len().sort(col)
        return dict(zip(grouped[col].to_list(), grouped["len"].to_list(), strict=True))

    return {
        "followmoney_version": __version__,
        "run_at": config.now.isoformat(),
        "rows_read": clean.height + bad.height,
        "rows_scanned": clean.height,
        "rows_quarantined": bad.height,
        "quarantine_reasons": dict(zip(reasons[S.REASON].to_list(), reasons["len"].to_list(), strict=True)),
        "files": per_file,
        "rules": [
            {
                "code": r.code,
                "name": r.name,
                "kind": r.kind,
                "file": r.path.name,
                "sha256": r.sha256,
                "params": r.params,
            }
            for r in rules
        ],
        "models": [],
        "lists": {
            "officials": _list_info(config.officials, entries, "official"),
            "networks": _list_info(config.networks, entries, "network"),
        },
        "options": {
            "inputs": config.inputs,
            "column_map": config.read.column_map,
            "assume_tz": config.read.assume_tz,
            "fx": str(config.fx) if config.fx else None,
            "select": list(config.select),
            "exclude": list(config.exclude),
            "min_score": config.min_score,
        },
        "candidates_per_rule": per(candidates, "rule_code"),
        "candidates_meeting_requirements_per_rule": per(linked, "rule_code"),
        "alerts_below_min_score": scored.height - alerts.height,
        "alerts": alerts.height,
        "alerts_per_typology": per(alerts, "typology"),
        "alerts_per_rule": per(
            alerts.with_columns(pl.col("alert_id").str.split("-").list.first().alias("rule")), "rule"
        ),
        "timings_s": dict(timer.timings),
    }


def _list_info(path: Path | None, entries: pl.DataFrame, kind: str) -> dict[str, Any] | None:
    if path is None:
        return None
    return {
        "path": str(path),
        "sha256": file_sha256(path),
        "entries": entries.filter(pl.col("list_kind") == kind).height,
    }


def example_frame(example: Example) -> pl.DataFrame:
    """A clean, normalised transaction frame built from a rule example's rows."""
    rows = example.txns
    frame = pl.DataFrame(
        {
            S.TXN_ID: [f"X{i:04d}" for i in range(len(rows))],
            S.TS: [r[2] for r in rows],
            S.SENDER_ID: [str(r[0]) for r in rows],
            S.RECEIVER_ID: [str(r[1]) for r in rows],
            S.SENDER_COUNTRY: ["TH"] * len(rows),
            S.RECEIVER_COUNTRY: ["TH"] * len(rows),
            S.AMOUNT: [float(r[3]) for r in rows],
            S.CURRENCY: ["USD"] * len(rows),
            S.AMOUNT_USD: [float(r[3]) for r in rows],
            S.AGENT_ID: [str(r[4]) for r in rows],
        }
    ).with_columns(
        pl.col(S.TS)
        .str.replace("Z$", "+00:00")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone=S.UTC, time_unit="us"),
        pl.int_range(1, len(rows) + 1).alias(S.SOURCE_ROW),
    )
    return frame.with_columns(party_keys())


def run_example(rule: Rule, example: Example) -> int:
    """How many alerts `rule` raises on one of its examples (detect, link by ids, requirements)."""
    frame = example_frame(example)
    candidates = DETECTORS[rule.kind]().detect(frame, rule.params).with_columns(pl.lit(rule.code).alias("rule_code"))
    ids = sorted(set(frame[S.SENDER_ID].to_list()) | set(frame[S.RECEIVER_ID].to_list()))
    profiles = pl.DataFrame(
        {
            "party_id": ids,
            "name": ids,
            "names": [[i] for i in ids],
            "countries": [["TH"]] * len(ids),
            "phones": [[]] * len(ids),
        },
        schema={
            "party_id": pl.String,
            "name": pl.String,
            "names": pl.List(pl.String),
            "countries": pl.List(pl.String),
            "phones": pl.List(pl.String),
        },
    )
    entries = pl.concat(
        [empty_entries()]
        + [
            pl.DataFrame(
                {
                    "list_kind": [kind] * len(members),
                    "list_id": members,
                    "network_id": ["N-X" if kind == "network" else None] * len(members),
                    "name": members,
                    "names": [[m] for m in members],
                    "countries": [["TH"]] * len(members),
                    "phones": [[]] * len(members),
                    "role": [None] * len(members),
                    "dataset": [None] * len(members),
                },
                schema=empty_entries().schema,
            )
            for kind, members in (("official", example.officials), ("network", example.networks))
            if members
        ]
    )
    return link_candidates(candidates, profiles, entries, [rule]).height


def now_utc() -> dt.datetime:
    """The current time in UTC (one place, so tests can see what 'now' means)."""
    return dt.datetime.now(dt.UTC)
