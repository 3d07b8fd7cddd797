"""run(config) -> Summary: the only module that knows the stage order.

read -> normalise -> (official screen) -> detectors -> link -> score -> write
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from followmoney import __version__
from followmoney import schema as S
from followmoney.cases import build_cases
from followmoney.config import ScanConfig
from followmoney.detectors import DETECTORS
from followmoney.detectors.anomaly import KIND as ANOMALY_KIND
from followmoney.detectors.anomaly import (
    PairScorer,
    anomaly_models,
    anomaly_stage,
    finalize_anomalies,
    model_feature_names,
    owned_receiver_features,
    pair_scorers,
    receivers_countable,
)
from followmoney.detectors.base import OWNER_KEY, OfficialScreen
from followmoney.graph import Neighbourhood, neighbourhood
from followmoney.link import LinkSettings, attach_links, could_be_officials, link_parties, parties_to_profile
from followmoney.lists import empty_entries, load_networks, load_officials
from followmoney.matching import PreparedLists
from followmoney.memory import HEADROOM, MemoryPlan, page_cache_room, plan_memory
from followmoney.memory import enforce as enforce_memory
from followmoney.normalise import SENDER_KEY, FxTable, load_fx, party_keys
from followmoney.parties import (
    PartyDirectory,
    directory_rows,
    directory_slices,
    name_frequencies,
    party_directory,
    party_profiles,
    phone_sharers,
    profiles_of,
    shared_phone_numbers,
)
from followmoney.partition import Transfers, load_in_memory, spill_estimate, spill_parent, spill_transfers
from followmoney.read import (
    BackgroundDigests,
    InputFile,
    file_sha256,
    inspect_files,
    large_block_warning,
    load_rows,
    remove_temp_files,
    resolve_inputs,
)
from followmoney.rowsets import Rows, own_buffers
from followmoney.rules import Example, Rule, load_rules
from followmoney.score import score_alerts
from followmoney.screen import possible_official_keys
from followmoney.timing import peak_mib, step
from followmoney.write import check_out_dir, write_outputs

_LOG = logging.getLogger("followmoney")

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
    S.SENDER_PHONE,  # optional (absent in many dumps): FM130 shared phones; detectors handle its absence
)


def transfer_columns(rules: list[Rule]) -> tuple[str, ...]:
    """The CORE_COLUMNS a scan with `rules` loads (and spills): the sender's phone only when a rule groups
    by it (a detector whose partition_sides holds "phone"). No quarantine check reads the phone, so
    leaving it out changes no output; it is an eighth of a spill file (10M world: 5.9 of 47.5 MB)."""
    phones = any(
        "phone" in DETECTORS[rule.kind]().partition_sides(rule.params) for rule in rules if rule.kind != ANOMALY_KIND
    )
    return CORE_COLUMNS if phones else tuple(c for c in CORE_COLUMNS if c != S.SENDER_PHONE)


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
            # Stage name, seconds and peak memory only: never names or ids (FOLLOWMONEY_LOG=info shows it).
            _LOG.info("stage %s done in %.1f s; peak RSS %.0f MiB", name, time.perf_counter() - start, peak_mib())


def load_transactions(
    files: list[InputFile], config: ScanConfig, fx: FxTable | None, advance: Callable[[int], None]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Load and normalise every file in memory; returns (clean rows, quarantine keys with reasons)."""
    transfers = load_in_memory(files, CORE_COLUMNS, config, fx, advance)
    assert transfers.memory is not None
    return transfers.memory, transfers.bad


def load_transfers(
    files: list[InputFile],
    config: ScanConfig,
    fx: FxTable | None,
    rules: list[Rule],
    plan: MemoryPlan,
    advance: Callable[[int], None],
    count_receivers: bool = False,
    shared_phones: np.ndarray | None = None,
) -> Transfers:
    """The clean transfers: in memory, or (plan.mode == "out_of_core") spilled into party partitions that
    hold every transfer of the parties (and phones) each rule groups on (`count_receivers`, `shared_phones`:
    see partition.spill_transfers)."""
    columns = transfer_columns(rules)
    if plan.mode != "out_of_core":
        return load_in_memory(files, columns, config, fx, advance)
    sides: frozenset[str] = frozenset({"party"})
    for rule in rules:
        if rule.kind != ANOMALY_KIND:
            sides |= DETECTORS[rule.kind]().partition_sides(rule.params)
    estimate = spill_estimate(plan.load_bytes)
    cache = page_cache_room(plan, sum(info.path.stat().st_size for info in files))
    return spill_transfers(
        files,
        columns,
        config,
        fx,
        plan.partitions,
        sides,
        plan.chunk_rows,
        advance,
        count_receivers,
        estimate,
        cache,
        shared_phones,
    )


def shared_phones_suffice(rules: list[Rule]) -> bool:
    """Whether some rule groups on a phone and every such rule needs two or more sender ids using the phone
    (Detector.needs_shared_phone): a partitioned scan then copies only shared phones' sends."""
    phone_rules = [
        rule
        for rule in rules
        if rule.kind != ANOMALY_KIND and "phone" in DETECTORS[rule.kind]().partition_sides(rule.params)
    ]
    return bool(phone_rules) and all(DETECTORS[rule.kind]().needs_shared_phone(rule.params) for rule in phone_rules)


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


def official_side(rule: Rule) -> str | None:
    """Which side of a rule's candidates must be a listed official: "counterparty", "subject" or None."""
    if rule.requires.get("counterparty_official"):
        return "counterparty"
    if rule.requires.get("subject_official"):
        return "subject"
    return None


def detect(
    transfers: Transfers | pl.DataFrame,
    rules: list[Rule],
    advance: Callable[[int], None],
    also: Callable[[int, pl.DataFrame], None] | None = None,
    officials: pl.Series | None = None,
) -> pl.DataFrame:
    """Run every rule's detector on every partition, keeping the candidates each partition owns; candidates
    of all rules in one frame (rule_code filled in), in rule order then a canonical order within a rule.
    `also` is called with each partition's index and frame (work that needs every partition, done in the same
    pass).
    `officials` (screen.possible_official_keys) lets rules that need an official skip every other party."""
    if isinstance(transfers, pl.DataFrame):
        transfers = Transfers(n_parts=1, bad=pl.DataFrame(), scanned={}, memory=transfers)
    screens = {}
    for rule in rules:
        side = official_side(rule)
        screens[rule.code] = OfficialScreen(side, officials) if side and officials is not None else None
    parts = []
    seconds = dict.fromkeys([r.code for r in rules], 0.0)
    read_s = 0.0
    started = time.perf_counter()
    for part, frame in transfers.partitions():
        read_s += time.perf_counter() - started
        for rule in rules:
            started = time.perf_counter()
            found = DETECTORS[rule.kind]().detect(frame, rule.params, screens[rule.code])
            found = found.filter(transfers.owned(OWNER_KEY, part)).drop(OWNER_KEY)
            found = found.with_columns(pl.lit(rule.code).alias("rule_code"))
            # Partitioned, the few candidates must not keep their partition's text alive (their txn_ids are views
            # into it): 200M rows, 303 partitions, 5.3 GB more resident memory by the end of the pass.
            parts.append(own_buffers(found) if transfers.n_parts > 1 else found)
            seconds[rule.code] += time.perf_counter() - started
        if also is not None:
            started = time.perf_counter()
            also(part, frame)
            seconds["(also)"] = seconds.get("(also)", 0.0) + time.perf_counter() - started
        advance(1)
        started = time.perf_counter()
    _LOG.info("  partitions read: %.1f s; by rule: %s", read_s, ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    if not parts:
        return pl.DataFrame(schema=S.CANDIDATE_BASE_SCHEMA)
    order = {rule.code: i for i, rule in enumerate(rules)}
    return canonical_order(pl.concat(parts, how="diagonal_relaxed"), order)


def canonical_order(candidates: pl.DataFrame, rule_order: dict[str, int]) -> pl.DataFrame:
    """Candidates sorted by rule (in `rule_order`), subject, counterparty, window and first evidence
    transfer: the same order whether they were found in one partition or many."""
    return (
        candidates.with_columns(
            pl.col("rule_code").replace_strict(rule_order, return_dtype=pl.Int32).alias("_rule"),
            pl.col("txn_ids").list.first().alias("_first"),
            pl.col("txn_ids").list.len().alias("_n_ids"),
        )
        .sort("_rule", "subject_id", "counterparty_id", "window_start", "window_end", "_first", "_n_ids")
        .drop("_rule", "_first", "_n_ids")
    )


def named_parties(candidates: pl.DataFrame) -> pl.DataFrame:
    """(rule_code, party_id) of every party a candidate names as subject or counterparty."""
    return (
        pl.concat(
            [
                candidates.select("rule_code", pl.col("subject_id").alias("party_id")),
                candidates.select("rule_code", pl.col("counterparty_id").alias("party_id")),
            ]
        )
        .drop_nulls()
        .unique()
    )


def apply_requirements(
    linked: pl.DataFrame,
    rules: list[Rule],
    matches: pl.DataFrame | None = None,
    named: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Keep candidates that meet their rule's link requirements (rules.REQUIREMENTS).

    Network facts about a candidate's other parties (`member_ids`: the payers of a rotating series,
    the senders sharing a phone, ...) come from `matches` (link.match_parties output). `named`
    (named_parties of every candidate found, default: of `linked`) decides `alone`."""
    if linked.height == 0:
        return linked
    frame = linked.with_row_index("_cand")
    members = _network_members(frame, matches)
    named = named if named is not None else named_parties(frame)
    # Parties named (as subject or counterparty) by candidates of other rules; the anomaly kind is left out
    # because it already defers to every rule (its candidates are dropped where a rule alert covers them).
    deferring = [r.code for r in rules if r.kind == "anomaly"]
    subjects_elsewhere = {
        code: set(
            named.filter((pl.col("rule_code") != code) & ~pl.col("rule_code").is_in(deferring))["party_id"].to_list()
        )
        for code in {r.code for r in rules if r.requires.get("alone")}
    }
    keep = pl.lit(False)
    for rule in rules:
        req = rule.requires
        cond = pl.col("rule_code") == rule.code
        if req.get("counterparty_official"):
            cond = cond & pl.col("counterparty_official").fill_null(False)
        if req.get("subject_official"):
            cond = cond & pl.col("official_id").is_not_null() & ~pl.col("counterparty_official").fill_null(False)
        if req.get("subject_or_counterparty_network"):
            cond = cond & (pl.col("network_hops") == 0).fill_null(False)
        if req.get("subject_or_counterparty_listed"):
            cond = cond & (pl.col("official_id").is_not_null() | (pl.col("network_hops") == 0).fill_null(False))
        if req.get("min_network_members"):
            cond = cond & (pl.col("_n_members_listed") >= int(req["min_network_members"]))
        if req.get("payers_one_network"):
            cond = cond & ((pl.col("_n_members") <= 1) | (pl.col("_max_same_network") >= 2))
        if req.get("alone"):
            cond = cond & ~pl.col("subject_id").is_in(sorted(subjects_elsewhere[rule.code]))
        keep = keep | cond
    return (
        frame.join(members, on="_cand", how="left")
        .filter(keep)
        .drop("_cand", "_n_members", "_n_members_listed", "_max_same_network")
    )


def _network_members(frame: pl.DataFrame, matches: pl.DataFrame | None) -> pl.DataFrame:
    """Per candidate row: how many member_ids it has, how many are listed network members, and the most
    of them in one network (0 where the candidate has no member_ids)."""
    empty = frame.select(
        "_cand",
        pl.lit(0, pl.UInt32).alias("_n_members"),
        pl.lit(0, pl.UInt32).alias("_n_members_listed"),
        pl.lit(0, pl.UInt32).alias("_max_same_network"),
    )
    if "member_ids" not in frame.columns:
        return empty
    exploded = frame.select("_cand", pl.col("member_ids").alias("party_id")).explode("party_id").drop_nulls()
    nets = (
        matches.filter(pl.col("list_kind") == "network").select("party_id", "network_id")
        if matches is not None and matches.height
        else pl.DataFrame(schema={"party_id": pl.String, "network_id": pl.String})
    )
    listed = exploded.unique().join(nets, on="party_id", how="left")
    per_net = listed.drop_nulls("network_id").group_by("_cand", "network_id").agg(pl.len().alias("_k"))
    counts = listed.group_by("_cand").agg(
        pl.col("party_id").n_unique().cast(pl.UInt32).alias("_n_members"),
        pl.col("party_id")
        .filter(pl.col("network_id").is_not_null())
        .n_unique()
        .cast(pl.UInt32)
        .alias("_n_members_listed"),
    )
    best = per_net.group_by("_cand").agg(pl.col("_k").max().cast(pl.UInt32).alias("_max_same_network"))
    return (
        empty.select("_cand")
        .join(counts, on="_cand", how="left")
        .join(best, on="_cand", how="left")
        .with_columns(pl.col("_n_members", "_n_members_listed", "_max_same_network").fill_null(0))
    )


def link_candidates(
    candidates: pl.DataFrame,
    profiles: pl.DataFrame,
    entries: pl.DataFrame | PreparedLists,
    rules: list[Rule],
    graph: Neighbourhood | None = None,
    settings: LinkSettings | None = None,
    name_counts: pl.DataFrame | None = None,
    named: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Resolve and match the profiled parties, follow the graph to networks, attach it, apply requirements.

    `graph` is the transfer neighbourhood of the candidate parties (graph.neighbourhood); without it
    only direct list membership links a party to a network. Requirements see confirmed matches only.
    """
    # Only subjects and counterparties can be named as officials; member_ids need network facts alone.
    seeds = candidate_party_ids(candidates, member_rules=())
    result = link_parties(profiles, entries, graph, settings, name_counts, seeds=seeds)
    linked = attach_links(candidates, profiles, result.matches, result.network, result.resolved)
    return apply_requirements(linked, rules, result.matches.filter(pl.col("status") == "match"), named)


@contextlib.contextmanager
def directory_of(
    files: list[InputFile], config: ScanConfig, plan: MemoryPlan, needed: bool = True
) -> Iterator[PartyDirectory]:
    """The party directory of the input (empty when not `needed`), built once for screening and linking;
    in passes written to a temporary directory (removed on exit) when it would not fit in memory: as many as
    the plan's memory needs for the first pass, fewer when that pass measured less (parties.PassSizer)."""
    if not needed:
        yield PartyDirectory.empty()
        return
    slices = directory_slices(plan.rows, plan.available_bytes)
    with contextlib.ExitStack() as stack:
        spill_dir = None
        if slices > 1:
            temp = tempfile.TemporaryDirectory(prefix=".followmoney-directory-", dir=spill_parent(config))
            spill_dir = Path(stack.enter_context(temp))
        with step("party directory (names and phones)"):
            directory = party_directory(
                files,
                config.read,
                slices=slices,
                spill_dir=spill_dir,
                memory_bytes=int(plan.available_bytes * HEADROOM),
            )
        _LOG.info("    %d pass(es) over the input, %d planned", directory.passes, slices)
        yield directory


def link_stage(
    directory: PartyDirectory,
    transfers: Rows,
    candidates: pl.DataFrame,
    entries: pl.DataFrame,
    rules: list[Rule],
    settings: LinkSettings | None = None,
) -> pl.DataFrame:
    """Link candidates in two passes: first their parties (and the ids sharing their phones) to the lists,
    which decides every rule requirement; then, for the candidates that met them, the transfer graph
    around their parties to known networks. A dump's many candidates that need an official and have
    none (most fan-ins, most regular payments) never pay for the graph walk or its profiles.

    Names and phones come from the party directory (directory_of)."""
    settings = settings or LinkSettings()
    with step("screen candidates needing an official"):
        screened = screen_officials(directory, candidates, entries, rules, settings)
    # `alone` is judged against the candidates that could be reported: those past the official screen (so
    # the result is the same whether or not detection already skipped parties that cannot be officials).
    named = named_parties(screened)
    numbered = screened.with_row_index("_cand_id")
    with step("profiles of candidate parties"):
        seeds = _with_phone_sharers(directory, candidate_party_ids(numbered, member_rules(rules)), settings)
        profiles = party_profiles(directory, seeds)
        name_counts = name_frequencies(directory, profiles)
    lists = PreparedLists(entries)  # both passes match against the same lists: prepared once
    with step("match to lists, requirements"):
        first = link_candidates(numbered, profiles, lists, rules, None, settings, name_counts, named)
    if entries.filter(pl.col("list_kind") == "network").height == 0:
        return first.drop("_cand_id")  # no graph to walk: the first pass is the answer
    survivors = numbered.filter(pl.col("_cand_id").is_in(first["_cand_id"].implode())).drop("_cand_id")
    with step("graph neighbourhood and its profiles"):
        graph, profiles, name_counts, settings = link_inputs(
            directory, transfers, survivors, entries, settings, member_rules(rules)
        )
    with step("match and network paths"):
        return link_candidates(survivors, profiles, lists, rules, graph, settings, name_counts, named)


def screen_officials(
    directory: PartyDirectory,
    candidates: pl.DataFrame,
    entries: pl.DataFrame,
    rules: list[Rule],
    settings: LinkSettings,
) -> pl.DataFrame:
    """Drop candidates of rules that require an official (as counterparty or subject) whose party cannot
    match one (link.could_be_officials: no official's phone or exact, uncommon name, themselves or through
    an id sharing their phone), before the costly fuzzy matching; the rest come back unchanged."""
    side = {r.code: official_side(r) for r in rules if official_side(r)}
    if not side or candidates.height == 0:
        return candidates
    cp_rules = [code for code, which in side.items() if which == "counterparty"]
    party = pl.when(pl.col("rule_code").is_in(cp_rules)).then(pl.col("counterparty_id")).otherwise(pl.col("subject_id"))
    screened = pl.col("rule_code").is_in(list(side))
    parties = candidates.filter(screened).select(party.alias("p"))["p"].drop_nulls().unique().sort()
    pool = _with_phone_sharers(directory, parties, settings)
    profiles = party_profiles(directory, pool)
    possible = could_be_officials(profiles, entries, settings.match, name_frequencies(directory, profiles))
    return candidates.filter(~screened | party.is_in(possible.implode()).fill_null(False))


def _with_phone_sharers(directory: PartyDirectory, seeds: pl.Series, settings: LinkSettings) -> pl.Series:
    """The seed ids plus every id that used one of their phones (possibly the same person; resolution decides)."""
    seed_profiles = party_profiles(directory, seeds)
    sharers = phone_sharers(directory, seed_profiles["phones"].explode().drop_nulls(), settings.match.max_phone_share)
    return pl.concat([seeds, sharers]).unique().sort()


def link_inputs(
    directory: PartyDirectory,
    clean: Rows,
    candidates: pl.DataFrame,
    entries: pl.DataFrame,
    settings: LinkSettings | None = None,
    members_of: Collection[str] | None = None,
) -> tuple[Neighbourhood | None, pl.DataFrame, pl.DataFrame, LinkSettings]:
    """What linking needs beyond the candidates: the transfer graph around them and party profiles.

    Seeds are the candidate parties plus every id that used one of their phones (possibly the same
    person under another id; resolution decides). The graph is built only when a networks list is
    given; profiles are read for the seeds and the parties of the graph that resolution could merge or
    that could be network members (link.parties_to_profile: the rest enter linking as graph nodes of
    their own), and how many parties of the whole input use each of their names (a common name alone is
    weak evidence).
    """
    settings = settings or LinkSettings()
    with step("seeds and ids sharing their phones", depth=2):
        seeds = _with_phone_sharers(directory, candidate_party_ids(candidates, members_of), settings)
    graph = None
    nodes = seeds
    if entries.filter(pl.col("list_kind") == "network").height:
        with step(f"transfer graph around {seeds.len():,} seeds", depth=2):
            graph = neighbourhood(clean, seeds, settings.graph)
        nodes = pl.concat([seeds, graph.edges["sender_id"], graph.edges["receiver_id"]]).unique().sort()

    def count_names(names: pl.Series) -> pl.DataFrame:
        return name_frequencies(directory, pl.DataFrame({"names": [names]}))

    # Most of the neighbourhood only carries paths: parties that can neither be merged with another id nor
    # match a network member need no profile (link.parties_to_profile; 50M rows: 46,045 of 1,715,291 parties).
    with step(f"directory rows of {nodes.len():,} parties", depth=2):
        rows = directory_rows(directory, nodes)
        wanted = nodes if graph is None else parties_to_profile(rows, seeds, entries, settings.match, count_names)
    with step(f"profiles and name frequencies of {wanted.len():,} parties", depth=2):
        profiles = profiles_of(rows.filter(pl.col("party_id").is_in(wanted.implode())))
        del rows
        name_counts = name_frequencies(directory, profiles)
    return graph, profiles, name_counts, settings


def candidate_party_ids(candidates: pl.DataFrame, member_rules: Collection[str] | None = None) -> pl.Series:
    """Every party a candidate names: subject, counterparty and member_ids (payers, senders sharing a phone)
    — members only of the rules in `member_rules` when given (those whose requirements ask about them)."""
    parts = [candidates["subject_id"], candidates["counterparty_id"].drop_nulls()]
    if "member_ids" in candidates.columns:
        with_members = (
            candidates if member_rules is None else candidates.filter(pl.col("rule_code").is_in(member_rules))
        )
        parts.append(with_members["member_ids"].explode().drop_nulls())
    return pl.concat(parts).unique().sort()


def member_rules(rules: list[Rule]) -> list[str]:
    """Codes of the rules whose requirements ask whether a candidate's member_ids are network members."""
    return [r.code for r in rules if r.requires.get("min_network_members") or r.requires.get("payers_one_network")]


def load_list_entries(config: ScanConfig) -> pl.DataFrame:
    """Officials and network members as one frame of list entries."""
    parts = [empty_entries()]
    if config.officials is not None:
        parts.append(load_officials(config.officials))
    if config.networks is not None:
        parts.append(load_networks(config.networks))
    return pl.concat(parts)


def run(config: ScanConfig, progress: Progress | None = None) -> Summary:
    """Scan the configured input and write alerts, summary and quarantine into config.out_dir. The copies of
    inputs the scan made (read.py: a CSV in another encoding, a file in oversized blocks) are removed when it
    ends, however it ends."""
    try:
        return _run(config, progress)
    finally:
        remove_temp_files()


def _run(config: ScanConfig, progress: Progress | None = None) -> Summary:
    progress = progress or _Silent()
    timer = _Timer()
    check_out_dir(config.out_dir)
    with timer("rules"):
        rules = load_rules(
            config.rules_dir, overrides=config.rule_overrides, select=config.select, exclude=config.exclude
        )
        settings = LinkSettings.from_mapping(config.link, "config [link]") if config.link else None
    with timer("lists"):
        entries = load_list_entries(config)
        fx = load_fx(config.fx) if config.fx else None
    with timer("read"):
        # A copy of a file in oversized blocks goes where the scan's spill files go (a large disk), not to /tmp.
        files = inspect_files(resolve_inputs(config.inputs), replace(config.read, temp_dir=spill_parent(config)))
        for note in filter(None, map(large_block_warning, files)):
            _LOG.warning("%s", note)
        digests = BackgroundDigests([info.path for info in files])
        # Memory guard: in memory when it fits, else partitioned by party into spill files (or stop with advice).
        plan = plan_memory(files, transfer_columns(rules), out_of_core_available=True, limit=config.memory_limit)
        enforce_memory(plan)
    models = anomaly_models(rules, config.model, config.models_dir)
    # Partitioned, a model that reads no receiver feature but receiver_n scores pairs in the detection pass:
    # the spilling pass counts every receiver's transfers, which is all one partition cannot see.
    fused = plan.mode == "out_of_core" and receivers_countable(models)
    # Rules that need an official only look at parties that could be one (screen.py), which takes the party
    # directory before detection; it is then reused for linking.
    needs_officials = any(official_side(r) for r in rules)
    with contextlib.ExitStack() as stack:
        directory, shared_phones = None, None
        if needs_officials and plan.mode == "out_of_core" and shared_phones_suffice(rules):
            # Partitioned, the directory is built first: it says which phones several ids use, and only their
            # sends are copied to the phone's partition (most phones are one id's; the 10M world's copies per
            # row fall from 2.6 to 2.0).
            with timer("screen"), progress.stage("finding parties that could be listed officials"):
                directory = stack.enter_context(directory_of(files, config, plan))
                shared_phones = shared_phone_numbers(directory)
        with timer("normalise"), progress.stage("reading and checking files", total=len(files)) as advance:
            transfers = load_transfers(files, config, fx, rules, plan, advance, fused, shared_phones)
        try:
            officials = None
            if needs_officials:
                with timer("screen"), progress.stage("finding parties that could be listed officials"):
                    if directory is None:
                        directory = stack.enter_context(directory_of(files, config, plan))
                    officials = possible_official_keys(directory, entries, (settings or LinkSettings()).match)
            also, receivers, scorers = _detection_pass_extras(transfers, models)
            with timer("detect"), progress.stage("running rules", total=transfers.n_parts) as advance:
                candidates = detect(transfers, [r for r in rules if r.kind != ANOMALY_KIND], advance, also, officials)
            with timer("model"), progress.stage("scoring payer->receiver pairs with the anomaly model"):
                # Anomaly model (issue 5): pair features + model scores -> anomaly candidates, payer percentiles.
                candidates, models_used = anomaly_stage(
                    transfers,
                    candidates,
                    models,
                    pl.concat(receivers) if receivers else None,
                    {ref: scorer.result() for ref, scorer in scorers.items()} if scorers else None,
                )
            with timer("link"), progress.stage("linking parties to lists"):
                if directory is None:
                    directory = stack.enter_context(directory_of(files, config, plan, needed=candidates.height > 0))
                linked = link_stage(directory, transfers.every_row_parts(), candidates, entries, rules, settings)
                linked = finalize_anomalies(linked, rules)  # anomaly alerts only for parties no rule alert covers
        finally:
            spill_bytes = transfers.spill_bytes
            transfers.close()
    with timer("score"):
        scored = score_alerts(linked, {r.code: r for r in rules})
        alerts = scored.filter(pl.col("score") >= config.min_score)
    bad = transfers.bad
    with timer("quarantine"):
        quarantine = quarantine_rows(files, config, bad) if bad.height else None
    data = _summary(config, files, digests, transfers, rules, candidates, linked, scored, alerts, entries, timer)
    data["models"] = models_used  # name, version, manifest sha256 of each anomaly model used
    data["memory"] = {
        "mode": plan.mode,
        "partitions": transfers.n_parts,
        "spill_bytes": spill_bytes,
        "spill_compression": transfers.spill_compression or None,  # "none" or "zstd" when spilled
        "planned_working_set_bytes": plan.working_set_bytes,
        "available_bytes": plan.available_bytes,
        "available_from": plan.source,
    }
    with timer("write"), progress.stage("writing outputs"):
        outputs = write_outputs(config.out_dir, alerts, quarantine, data, extra={"cases.parquet": build_cases(alerts)})
    return Summary(data, alerts, quarantine, outputs)


def _detection_pass_extras(
    transfers: Transfers, models: dict[str, Any]
) -> tuple[Callable[[int, pl.DataFrame], None] | None, list[pl.DataFrame], dict[str, PairScorer]]:
    """What the anomaly models need from the detection pass over the partitions: (the per-partition call for
    detect's `also`, the receiver features it gathers, the pair scorers it fills).

    In memory nothing (one partition: the model stage computes it all from the same frame). Partitioned,
    with the receivers counted while spilling (Transfers.receiver_counts), every partition's pairs are scored
    as it is read for detection; otherwise every receiver's features are gathered, for the model stage's
    own pass over the partitions."""
    receivers: list[pl.DataFrame] = []
    if transfers.n_parts <= 1 or not models:
        return None, receivers, {}
    if transfers.receiver_counts is not None:
        scorers = pair_scorers(models, transfers.receiver_counts)

        def score(part: int, frame: pl.DataFrame) -> None:
            for scorer in scorers.values():
                scorer.add(frame, transfers.owned(SENDER_KEY, part))

        return score, receivers, scorers
    features = model_feature_names(models)  # only what the models read is computed

    def gather(_part: int, frame: pl.DataFrame) -> None:
        receivers.append(owned_receiver_features(frame, features))

    return gather, receivers, {}


def _summary(
    config: ScanConfig,
    files: list[InputFile],
    digests: BackgroundDigests,
    transfers: Transfers,
    rules: list[Rule],
    candidates: pl.DataFrame,
    linked: pl.DataFrame,
    scored: pl.DataFrame,
    alerts: pl.DataFrame,
    entries: pl.DataFrame,
    timer: _Timer,
) -> dict[str, Any]:
    bad = transfers.bad
    quarantined = bad.group_by(S.SOURCE_FILE).len()

    def count(frame: pl.DataFrame, index: int) -> int:
        hit = frame.filter(pl.col(S.SOURCE_FILE) == index)
        return int(hit["len"][0]) if hit.height else 0

    per_file = []
    for index, info in enumerate(files):
        n_scanned, n_bad = transfers.scanned.get(index, 0), count(quarantined, index)
        per_file.append(
            {
                "path": info.label,
                "format": info.fmt,
                "sha256": digests.sha256(info.path),
                "rows_read": n_scanned + n_bad,
                "rows_scanned": n_scanned,
                "rows_quarantined": n_bad,
                "largest_block_rows": info.largest_block_rows,
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
        "rows_read": transfers.rows + bad.height,
        "rows_scanned": transfers.rows,
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
        "alerts_linked": {
            "official": int(alerts["official_id"].is_not_null().sum()),
            "network": int(alerts["network_id"].is_not_null().sum()),
            "networks": int(alerts["network_id"].drop_nulls().n_unique()),
        },
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
    """A clean, normalised transaction frame built from a rule example's rows (and its party tables)."""
    rows = example.txns
    currency = [str(r[5]).upper() if len(r) == 6 else "USD" for r in rows]
    rate = {"USD": 1.0, **example.fx}
    country = {**example.countries}
    frame = pl.DataFrame(
        {
            S.TXN_ID: [f"X{i:04d}" for i in range(len(rows))],
            S.TS: [r[2] for r in rows],
            S.SENDER_ID: [str(r[0]) for r in rows],
            S.RECEIVER_ID: [str(r[1]) for r in rows],
            S.SENDER_COUNTRY: [country.get(str(r[0]), "TH") for r in rows],
            S.RECEIVER_COUNTRY: [country.get(str(r[1]), "TH") for r in rows],
            S.AMOUNT: [float(r[3]) for r in rows],
            S.CURRENCY: currency,
            S.AMOUNT_USD: [float(r[3]) * rate[c] for r, c in zip(rows, currency, strict=True)],
            S.AGENT_ID: [str(r[4]) for r in rows],
            S.SENDER_PHONE: [example.phones.get(str(r[0])) for r in rows],
        },
        schema_overrides={S.SENDER_PHONE: pl.String},
    ).with_columns(
        pl.col(S.TS)
        .str.replace("Z$", "+00:00")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone=S.UTC, time_unit="us"),
        pl.int_range(1, len(rows) + 1).alias(S.SOURCE_ROW),
    )
    return frame.with_columns(party_keys())


def _example_entries(example: Example) -> pl.DataFrame:
    """List entries for an example: officials by id, network members as "ID" (network N-X) or "N-2:ID"."""
    members: list[tuple[str, str, str | None]] = [("official", o, None) for o in example.officials]
    for item in example.networks:
        network, _, member = item.rpartition(":")
        members.append(("network", member, network or "N-X"))
    if not members:
        return empty_entries()
    return pl.DataFrame(
        {
            "list_kind": [m[0] for m in members],
            "list_id": [m[1] for m in members],
            "network_id": [m[2] for m in members],
            "name": [example.names.get(m[1], m[1]) for m in members],
            "names": [[example.names.get(m[1], m[1])] for m in members],
            "countries": [[example.countries.get(m[1], "TH")] for m in members],
            "phones": [[example.phones[m[1]]] if m[1] in example.phones else [] for m in members],
            "role": [None] * len(members),
            "dataset": [None] * len(members),
        },
        schema=empty_entries().schema,
    )


def run_example(rule: Rule, example: Example, min_score: float = 25.0) -> int:
    """How many alerts `rule` raises on one of its examples: detect, link by ids, requirements, score,
    and the scan's default --min-score (so a damped family-support series does not count)."""
    frame = example_frame(example)
    found = DETECTORS[rule.kind]().detect(frame, rule.params).drop(OWNER_KEY, strict=False)
    candidates = found.with_columns(pl.lit(rule.code).alias("rule_code"))
    ids = sorted(set(frame[S.SENDER_ID].to_list()) | set(frame[S.RECEIVER_ID].to_list()))
    profiles = pl.DataFrame(
        {
            "party_id": ids,
            "name": [example.names.get(i, i) for i in ids],
            "names": [[example.names.get(i, i)] for i in ids],
            "countries": [[example.countries.get(i, "TH")] for i in ids],
            "phones": [[example.phones[i]] if i in example.phones else [] for i in ids],
        },
        schema={
            "party_id": pl.String,
            "name": pl.String,
            "names": pl.List(pl.String),
            "countries": pl.List(pl.String),
            "phones": pl.List(pl.String),
        },
    )
    linked = link_candidates(candidates, profiles, _example_entries(example), [rule])
    alerts = score_alerts(linked, {rule.code: rule})
    return alerts.filter(pl.col("score") >= min_score).height


def now_utc() -> dt.datetime:
    """The current time in UTC (one place, so tests can see what 'now' means)."""
    return dt.datetime.now(dt.UTC)
