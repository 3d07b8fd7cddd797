"""Who is who: resolve candidate parties, match them to the lists, follow the transfer graph to networks.

The stage, in order (`link_parties`):

1. **Resolve** the profiled parties (candidates and their graph neighbourhood): ids sharing a phone
   whose names are close, in one country, become one resolved party (`parties.resolve_parties`).
   Detectors keep working on raw ids; alerts carry the resolved knowledge: matching uses the pooled
   names and phones of every id of the party, graph paths run between resolved parties, and the
   alert's texts say which other ids were taken for the same person and why.
2. **Match** resolved parties to the officials and network lists (`matching.match_parties`): fuzzy
   names, E.164 phones, countries; a confidence and a plain reason per match, "possible" below the
   threshold down to the review floor.
3. **Follow the graph** (`graph.network_links`): the shortest path (<= max_hops transfers) from each
   resolved party to a matched network member.

`attach_links` then adds `LINK_COLUMNS` to the candidates; score.py and the rule requirements read
only those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import polars as pl

from followmoney.errors import ConfigError
from followmoney.graph import GraphSettings, Neighbourhood, network_links
from followmoney.matching import (
    FUZZY_NAME_ONLY,
    HONORIFICS,
    MATCH_SCHEMA,
    PARTICLES,
    MatchSettings,
    PreparedLists,
    name_counts_from,
    name_key,
    phone_key,
    prepare_phones,
)
from followmoney.matching import match_parties as _fuzzy_match
from followmoney.parties import RESOLVED_SCHEMA, contacts_of, resolve_parties, resolved_profiles
from followmoney.screen import listed_lookalikes, lookalike_row_parties, phone_tail
from followmoney.timing import step

__all__ = [
    "HONORIFICS",
    "LINK_COLUMNS",
    "MATCH_SCHEMA",
    "LinkResult",
    "LinkSettings",
    "attach_links",
    "link_parties",
    "match_parties",
    "name_key",
    "phone_key",
]

# Particles (Vietnamese middle names, Arabic/Malay links) do not show a family tie when shared.
NON_FAMILY_TOKENS = PARTICLES


@dataclass(frozen=True)
class LinkSettings:
    """Everything the link stage can be tuned with (defaults documented in the README's Linking section)."""

    match: MatchSettings = field(default_factory=MatchSettings)
    graph: GraphSettings = field(default_factory=GraphSettings)
    resolve_min_name: float = 0.85  # name score two ids sharing a phone need to be one party

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "[link]") -> LinkSettings:
        """Settings from a config table (e.g. a TOML `[link]` section); every problem is reported at once.

        Keys: threshold, review_floor, max_block, max_rare_token, max_phone_share, max_name_share,
        chunk_parties (matching); max_hops, max_degree (graph); resolve_min_name (resolution).
        """
        match_fields = {f.name: f.type for f in fields(MatchSettings)}
        graph_fields = {f.name: f.type for f in fields(GraphSettings)}
        problems: list[str] = []
        match_args: dict[str, Any] = {}
        graph_args: dict[str, Any] = {}
        own: dict[str, Any] = {}
        for key, value in values.items():
            kind = match_fields.get(key) or graph_fields.get(key) or ("float" if key == "resolve_min_name" else None)
            if kind is None:
                problems.append(f"{source}: unknown key '{key}'")
                continue
            want_int = kind in ("int", int)
            ok = isinstance(value, int) if want_int else isinstance(value, int | float)
            if not ok or isinstance(value, bool):
                problems.append(f"{source}: '{key}' must be {'an integer' if want_int else 'a number'}, got {value!r}")
                continue
            if (want_int and value < (0 if key == "max_hops" else 1)) or (not want_int and not 0 < value <= 1):
                problems.append(f"{source}: '{key}' = {value} is out of range")
                continue
            target = match_args if key in match_fields else graph_args if key in graph_fields else own
            target[key] = value
        if not problems:
            floor = match_args.get("review_floor", MatchSettings.review_floor)
            if floor > match_args.get("threshold", MatchSettings.threshold):
                problems.append(f"{source}: review_floor ({floor}) must not exceed threshold")
        if problems:
            raise ConfigError("; ".join(problems))
        return cls(match=MatchSettings(**match_args), graph=GraphSettings(**graph_args), **own)


@dataclass
class LinkResult:
    """What the link stage found about the profiled parties (raw ids)."""

    resolved: pl.DataFrame  # parties.RESOLVED_SCHEMA
    matches: pl.DataFrame  # matching.MATCH_SCHEMA, one row per (raw party id, list kind), matches and possibles
    network: pl.DataFrame  # graph.NETWORK_LINK_SCHEMA, one row per raw party id within reach of a network


def match_parties(profiles: pl.DataFrame, entries: pl.DataFrame, settings: MatchSettings | None = None) -> pl.DataFrame:
    """Best list entry per (party, list kind) at or above the match threshold (stable MATCH_SCHEMA columns)."""
    return _fuzzy_match(profiles, entries, settings)


def link_parties(
    profiles: pl.DataFrame,
    entries: pl.DataFrame | PreparedLists,
    graph: Neighbourhood | None = None,
    settings: LinkSettings | None = None,
    name_counts: pl.DataFrame | None = None,
    seeds: pl.Series | None = None,
) -> LinkResult:
    """Resolve the profiled parties, match them to the lists, and find their paths to network members.

    `name_counts` (parties.name_frequencies) says how common each name is in the whole input;
    without it names are counted among the profiles. With `seeds` (the candidates' party ids), only
    resolved parties holding a seed are matched against the officials list; the rest of the graph
    neighbourhood only needs network members (to find paths), which keeps the costly fuzzy matching
    to the parties an alert can name as an official. A party of `graph` without a profile is a party
    of its own that matches nothing (parties_to_profile leaves out only such parties).
    """
    settings = settings or LinkSettings()
    lists = entries if isinstance(entries, PreparedLists) else PreparedLists(entries)
    with step(f"resolve {profiles.height:,} profiles", depth=2):
        resolved = resolve_parties(
            profiles, min_name=settings.resolve_min_name, max_phone_share=settings.match.max_phone_share
        )
        pooled = resolved_profiles(profiles, resolved)
        if graph is not None:
            resolved = _with_unprofiled(resolved, graph.edges)
    counts = name_counts if name_counts is not None else name_counts_from(profiles)
    with step(f"match {pooled.height:,} resolved parties to {lists.frame.height:,} list entries", depth=2):
        by_party = _match_resolved(pooled, resolved, lists, settings, counts, seeds)
    # Every raw id of a resolved party carries the party's matches.
    matches = (
        resolved.select("party_id", "resolved_id")
        .join(by_party.rename({"party_id": "resolved_id"}), on="resolved_id")
        .select(list(MATCH_SCHEMA))
        .sort("party_id", "list_kind")
    )
    members = (
        by_party.filter((pl.col("list_kind") == "network") & (pl.col("status") == "match"))
        .sort(["confidence", "network_id", "list_id"], descending=[True, False, False])
        .select("party_id", "network_id", "list_id")
    )
    if graph is None:
        edges = pl.DataFrame(schema={"sender_id": pl.String, "receiver_id": pl.String})
        hubs = None
    else:
        edges, hubs = graph.edges, graph.hubs
    with step(f"network paths over {edges.height:,} edges", depth=2):
        network = network_links(edges, resolved, members, hubs, settings.graph)
    return LinkResult(resolved=resolved, matches=matches, network=network)


def _with_unprofiled(resolved: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """`resolved` plus every party of the graph's `edges` that was not profiled, as a party of its own: the
    caller profiles only the parties whose profile can change what linking finds (parties_to_profile)."""
    nodes = pl.concat([edges["sender_id"], edges["receiver_id"]]).unique()
    missing = nodes.filter(~nodes.is_in(resolved["party_id"].implode()))
    if missing.len() == 0:
        return resolved
    alone = pl.DataFrame({"party_id": missing}).select(
        "party_id",
        pl.col("party_id").alias("resolved_id"),
        pl.concat_list("party_id").alias("party_ids"),
        pl.lit(None, pl.String).alias("resolution"),
    )
    return pl.concat([resolved, alone.cast(RESOLVED_SCHEMA)]).sort("party_id")  # type: ignore[arg-type]


def parties_to_profile(
    rows: pl.DataFrame,
    seeds: pl.Series,
    entries: pl.DataFrame,
    settings: MatchSettings | None = None,
    count_names: Callable[[pl.Series], pl.DataFrame] | None = None,
) -> pl.Series:
    """Of the party directory `rows` (parties.directory_rows) of a graph neighbourhood, the party ids whose
    profiles can change what link_parties finds: the `seeds` (the candidates' parties, matched to every
    list), every id sharing a phone key (matching.prepare_phones) with another id of `rows` (resolution
    merges only such ids; only ids whose phones share their last 7 digits, as could_be_officials takes
    equal phones to, are keyed), and every id that could be a confirmed network member
    (screen.lookalike_row_parties; `count_names` counts names for the whole input, as the matcher's name
    counts do). Any other id resolves to itself and matches no list entry, so it enters linking as a graph
    node alone (_with_unprofiled). With a threshold at or below FUZZY_NAME_ONLY (a fuzzy name alone can
    match), every id of `rows`."""
    settings = settings or MatchSettings()
    ids = rows["party_id"].unique().sort()
    if settings.threshold <= FUZZY_NAME_ONLY:
        return ids

    def keyed(some: pl.Series) -> pl.DataFrame:  # (party_id, phone_key) as resolve_parties reads them
        return prepare_phones(contacts_of(rows.filter(pl.col("party_id").is_in(some.implode()))), ["party_id"])

    tails = rows.select("party_id", "tail7").drop_nulls().unique()
    # Shared last digits only hint at a shared phone: among the 1.7M parties of a 50M-row scan a fifth share
    # them by chance, so the hinted ids' phone keys are read and compared.
    hinted = tails.filter(pl.col("party_id").n_unique().over("tail7") > 1)["party_id"]
    phone = pl.col("phone").str.strip_chars()
    short = rows.filter(phone.is_not_null() & (phone != "") & pl.col("tail7").is_null())["party_id"].unique()
    if short.len():
        # A phone of fewer than 7 digits may still read as a whole number (a country code added): ids whose
        # last 7 digits are those of its key are hinted too.
        key_tails = keyed(short).select(phone_tail(pl.col("phone_key")))["phone_key"].drop_nulls()
        hinted = pl.concat([hinted, short, tails.filter(pl.col("tail7").is_in(key_tails.implode()))["party_id"]])
    keys = keyed(hinted.unique())
    shared = keys.filter(pl.col("party_id").n_unique().over("phone_key") > 1)["party_id"]
    networks = entries.filter(pl.col("list_kind") == "network")
    members = lookalike_row_parties(rows, networks, count_names, settings.max_name_share)
    keep = pl.concat([seeds, shared, members]).unique()
    return ids.filter(ids.is_in(keep.implode()))


def _match_resolved(
    pooled: pl.DataFrame,
    resolved: pl.DataFrame,
    lists: PreparedLists,
    settings: LinkSettings,
    counts: pl.DataFrame,
    seeds: pl.Series | None,
) -> pl.DataFrame:
    """Best list entries per resolved party: every list for parties holding a seed (all when no seeds),
    the networks list only for the rest."""
    if seeds is None:
        return _fuzzy_match(pooled, lists.every, settings.match, include_possible=True, name_counts=counts)
    seed_parties = resolved.filter(pl.col("party_id").is_in(seeds.implode()))["resolved_id"].unique()
    is_seed = pl.col("party_id").is_in(pl.concat([seed_parties, seeds]).implode())
    networks_only = lists.networks.frame
    rest = pooled.filter(~is_seed)
    if settings.match.threshold > FUZZY_NAME_ONLY:
        # The rest only need confirmed network matches (paths start at them; "possible" ones are shown for
        # an alert's own parties alone), so parties that cannot make one are not fuzzy-matched. Every
        # party using a phone of an entry passes, so the count of parties sharing such a phone is unchanged.
        could = listed_lookalikes(rest, networks_only, counts, settings.match.max_name_share)
        rest = rest.filter(pl.col("party_id").is_in(could.implode()))
    seeded = pooled.filter(is_seed)
    return pl.concat(
        [
            _fuzzy_match(seeded, lists.every, settings.match, include_possible=True, name_counts=counts),
            _fuzzy_match(rest, lists.networks, settings.match, include_possible=True, name_counts=counts),
        ]
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
    subj = pl.col("subj_off_list_id").is_not_null()

    def pick(field: str) -> pl.Expr:
        return pl.when(cp).then(pl.col(f"cp_off_{field}")).otherwise(pl.col(f"subj_off_{field}"))

    def sentence(prefix: str, who: str, verb: str) -> pl.Expr:
        role = pl.coalesce(pl.col(f"{prefix}_role"), pl.col(f"{prefix}_dataset"))
        return pl.format(
            "{}{} {} listed official {} '{}'{} ({}; confidence {}){}",
            pl.lit(who),
            pl.col(f"{prefix}_alias_text").fill_null(""),
            pl.lit(verb),
            pl.col(f"{prefix}_list_id"),
            pl.col(f"{prefix}_entry_name"),
            pl.when(role.is_not_null()).then(pl.format(", {}", role)).otherwise(pl.lit("")),
            pl.col(f"{prefix}_basis"),
            pl.col(f"{prefix}_confidence").round(2),
            pl.when(verb == "possibly matches")
            .then(pl.lit(", below the match threshold: for review"))
            .otherwise(pl.lit("")),
        )

    matched = (
        pl.when(cp)
        .then(sentence("cp_off", "The receiver", "matches"))
        .when(subj)
        .then(sentence("subj_off", "The subject", "matches"))
    )
    possible = pl.concat_list(
        pl.when(~cp & pl.col("cp_pos_list_id").is_not_null()).then(
            sentence("cp_pos", "The receiver", "possibly matches")
        ),
        pl.when(~subj & pl.col("subj_pos_list_id").is_not_null()).then(
            sentence("subj_pos", "The subject", "possibly matches")
        ),
    ).list.drop_nulls()
    text = (
        pl.concat_list(matched, possible.list.join(". "))
        .list.drop_nulls()
        .list.eval(pl.element().filter(pl.element() != ""))
    )
    return [
        cp.alias("counterparty_official"),
        pick("list_id").alias("official_id"),
        pl.when(text.list.len() > 0)
        .then(pl.format("{}.", text.list.join(". ")))
        .otherwise(None)
        .alias("official_text"),
        pick("confidence").alias("official_confidence"),
    ]


def _network_paths(joined: pl.DataFrame) -> pl.Series:
    """`subject C1 -> C2 <- C3 = listed member E-12 'name' (role) of N-7 (name 0.94 (spelling), same phone)`,
    one per candidate (null where neither side links to a network); vectorised over candidates."""
    side = pl.col("_net_side")
    subj = side == "subject"

    def pick(field: str) -> pl.Expr:
        return pl.when(subj).then(pl.col(f"subj_{field}")).otherwise(pl.col(f"cp_{field}"))

    base = joined.select(
        side,
        pl.when(subj).then(pl.col("subject_id")).otherwise(pl.col("counterparty_id")).alias("_raw"),
        pick("alias_text").fill_null("").alias("_alias"),
        pick("net_path").list.slice(1).alias("_nodes"),
        pick("net_steps").alias("_arrows"),
        pick("net_role").fill_null("role unknown").alias("_role"),
        pick("net_list_id").alias("_list_id"),
        pick("net_entry_name").alias("_entry"),
        pick("net_network_id").alias("_network"),
        pick("net_basis").alias("_basis"),
    ).with_row_index("_r")
    # " -> C2 <- C3": arrows and the nodes after the start, paired in order (as far as both go).
    n = pl.min_horizontal(pl.col("_nodes").list.len(), pl.col("_arrows").list.len()).fill_null(0)
    hops = (
        base.select("_r", pl.col("_arrows").list.head(n), pl.col("_nodes").list.head(n))
        .explode("_arrows", "_nodes")
        .drop_nulls("_nodes")
        .group_by("_r", maintain_order=True)
        .agg(pl.format(" {} {}", "_arrows", "_nodes").str.join("").alias("_hops"))
    )
    text = (
        base.join(hops, on="_r", how="left")
        .sort("_r")
        .select(
            pl.when(side.is_not_null())
            .then(
                pl.format(
                    "{} {}{}{} = listed member {} '{}' ({}) of {} ({})",
                    side,
                    "_raw",
                    "_alias",
                    pl.col("_hops").fill_null(""),
                    "_list_id",
                    "_entry",
                    "_role",
                    "_network",
                    "_basis",
                )
            )
            .alias("network_path")
        )
    )
    return text.to_series()


def _alias_text(resolved: pl.DataFrame) -> pl.DataFrame:
    """party_id -> " (also ids C2, C3: same phone, name 0.95)" for ids resolved with others."""
    return resolved.filter(pl.col("party_ids").list.len() > 1).select(
        "party_id",
        pl.format(
            " (one person with ids {}: {})",
            pl.col("party_ids").list.set_difference(pl.concat_list("party_id")).list.sort().list.join(", "),
            pl.col("resolution"),
        ).alias("alias_text"),
    )


def _direct_network(matches: pl.DataFrame) -> pl.DataFrame:
    """Hop-0 network links from matches alone (no transfer graph given)."""
    return matches.filter((pl.col("list_kind") == "network") & (pl.col("status") == "match")).select(
        "party_id",
        "network_id",
        pl.col("party_id").alias("member_party_id"),
        "list_id",
        pl.lit(0, pl.Int64).alias("hops"),
        pl.concat_list(pl.col("party_id")).alias("path"),
        pl.lit([], pl.List(pl.String)).alias("steps"),
    )


def attach_links(
    candidates: pl.DataFrame,
    profiles: pl.DataFrame,
    matches: pl.DataFrame,
    network: pl.DataFrame | None = None,
    resolved: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Add LINK_COLUMNS: names, official and network links of subject and counterparty, family-tie hint.

    `matches` is one row per (party, list kind) (a `status` column, when present, separates matches
    from "possible" ones, which are only mentioned); `network` gives graph paths (graph.NETWORK_LINK_SCHEMA;
    without it only direct membership counts); `resolved` maps ids to resolved parties.
    """
    if "status" not in matches.columns:
        matches = matches.with_columns(pl.lit("match").alias("status"))
    resolved = resolved if resolved is not None else pl.DataFrame(schema=RESOLVED_SCHEMA)
    network = network if network is not None else _direct_network(matches)
    names = profiles.select("party_id", "name")
    aliases = _alias_text(resolved)
    is_match = pl.col("status") == "match"
    official = (
        matches.filter((pl.col("list_kind") == "official") & is_match)
        .select("party_id", "list_id", "entry_name", "role", "dataset", "confidence", "basis")
        .join(aliases, on="party_id", how="left")
    )
    possible = (
        matches.filter((pl.col("list_kind") == "official") & ~is_match)
        .select("party_id", "list_id", "entry_name", "role", "dataset", "confidence", "basis")
        .join(aliases, on="party_id", how="left")
    )
    members = matches.filter((pl.col("list_kind") == "network") & is_match).select(
        pl.col("party_id").alias("member_party_id"), "list_id", "entry_name", "role", "confidence", "basis"
    )
    # Members are matched per resolved party; every raw id of it carries the match, so take one row.
    members = members.unique(["member_party_id", "list_id"])
    net = network.select("party_id", "network_id", "member_party_id", "list_id", "hops", "path", "steps").join(
        members, on=["member_party_id", "list_id"], how="left"
    )

    def side(prefix: str, table: pl.DataFrame, on: str) -> pl.DataFrame:
        return table.rename({c: f"{prefix}_{c}" for c in table.columns if c != "party_id"}).rename({"party_id": on})

    joined = (
        candidates.join(side("subject", names, "subject_id"), on="subject_id", how="left")
        .join(side("counterparty", names, "counterparty_id"), on="counterparty_id", how="left")
        .join(side("cp_off", official, "counterparty_id"), on="counterparty_id", how="left")
        .join(side("subj_off", official, "subject_id"), on="subject_id", how="left")
        .join(side("cp_pos", possible, "counterparty_id"), on="counterparty_id", how="left")
        .join(side("subj_pos", possible, "subject_id"), on="subject_id", how="left")
        .join(side("subj_net", net, "subject_id"), on="subject_id", how="left")
        .join(side("cp_net", net, "counterparty_id"), on="counterparty_id", how="left")
        .join(side("subj", aliases, "subject_id"), on="subject_id", how="left")
        .join(side("cp", aliases, "counterparty_id"), on="counterparty_id", how="left")
    )
    subj_h, cp_h = pl.col("subj_net_hops"), pl.col("cp_net_hops")
    use_cp = cp_h.is_not_null() & (subj_h.is_null() | (cp_h < subj_h))
    net_side = (
        pl.when(use_cp).then(pl.lit("counterparty")).when(subj_h.is_not_null()).then(pl.lit("subject")).otherwise(None)
    )
    joined = joined.with_columns(net_side.alias("_net_side"))
    paths = _network_paths(joined)

    def pick(field: str) -> pl.Expr:
        return pl.when(use_cp).then(pl.col(f"cp_net_{field}")).otherwise(pl.col(f"subj_net_{field}"))

    # The receiver's family name is read from its counter name and, when it is a listed official, from
    # the list's name (counter names of officials are often nicknames or typos).
    receiver_names = pl.concat_str(
        pl.col("counterparty_name").fill_null(""), pl.col("cp_off_entry_name").fill_null(""), separator=" "
    )
    shared = (
        _family_tokens(pl.col("subject_name").fill_null(""))
        .list.set_intersection(_family_tokens(receiver_names))
        .list.sort()
        .list.first()
    )
    linked = joined.with_columns(
        *_official_columns(),
        pick("network_id").alias("network_id"),
        paths,
        pick("confidence").alias("network_confidence"),
        pick("hops").alias("network_hops"),
        shared.alias("shared_family_name"),
    )
    return linked.select(*candidates.columns, *LINK_COLUMNS).cast(LINK_COLUMNS)  # type: ignore[arg-type]


def could_be_officials(
    profiles: pl.DataFrame,
    entries: pl.DataFrame,
    settings: MatchSettings | None = None,
    name_counts: pl.DataFrame | None = None,
) -> pl.Series:
    """Party ids of `profiles` that could match the officials list, and those sharing a phone with one.

    A necessary condition, checked exactly and cheaply before any fuzzy matching: a confirmed match
    (confidence >= threshold > FUZZY_NAME_ONLY) needs a phone of the entry, or a name with exactly the
    entry name's tokens (a fuzzy name alone scores at most FUZZY_NAME_ONLY), one that with `name_counts`
    (the matcher's) few parties use (a common name alone scores at most that too). A resolved party pools the
    names and phones of ids sharing its phone, so those ids pass too. With a threshold at or below
    FUZZY_NAME_ONLY every party passes.
    """
    settings = settings or MatchSettings()
    officials = entries.filter(pl.col("list_kind") == "official")
    ids = profiles["party_id"].unique().sort()
    if settings.threshold <= FUZZY_NAME_ONLY:
        return ids
    if officials.height == 0 or profiles.height == 0:
        return ids.clear()

    hits = listed_lookalikes(profiles, officials, name_counts, settings.max_name_share)
    # Ids sharing a phone (by its last 7 digits) with a hit may be resolved into one party with it.
    tails = (
        profiles.select("party_id", pl.col("phones").alias("t"))
        .explode("t")
        .select("party_id", phone_tail(pl.col("t")).alias("t"))
        .drop_nulls()
        .unique()
    )
    near = tails.join(tails.filter(pl.col("party_id").is_in(hits.implode())).select("t"), on="t", how="semi")
    return pl.concat([hits, near["party_id"]]).unique().sort()
