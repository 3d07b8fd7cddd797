"""Read the officials list and the known-networks list, as CSV or as FollowTheMoney entity JSON lines.

Both become one frame of list entries: list_kind, list_id, network_id, name, names (name + aliases),
countries (upper-case ISO2), phones, role, dataset. Each entry keeps its source id so alerts cite it.

Formats: officials in the OpenSanctions `targets.simple.csv` layout (with or without `program_ids`),
networks in the contract's CSV, and either list as FtM entities, one JSON object per line (the
OpenSanctions `entities.ftm.json` export). In FtM, topics mark who is who: `role.pep`, `role.rca`,
`role.judge`, `role.civil`, `role.diplo` and any `gov.*` topic mark officials; `crime.traffick.human`
marks trafficking links, and members are grouped into networks through Membership, Employment,
Directorship, Associate, Family and UnknownLink entities.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import polars as pl

from followmoney import schema as S
from followmoney.errors import InputError
from followmoney.read import csv_problem_line, csv_record_count, first_invalid_utf8

LIST_ENTRY_SCHEMA: dict[str, pl.DataType] = {
    "list_kind": pl.String(),
    "list_id": pl.String(),
    "network_id": pl.String(),
    "name": pl.String(),
    "names": pl.List(pl.String()),
    "countries": pl.List(pl.String()),
    "phones": pl.List(pl.String()),
    "role": pl.String(),
    "dataset": pl.String(),
}


def _broken_csv_line(path: Path) -> tuple[int, str] | None:
    """(line, problem) of the first record with broken quoting or a wrong field count (error path only)."""
    return csv_problem_line(path)


def _record_lines(path: Path) -> list[int]:
    """The 1-based line on which each non-blank data record starts (error path only; records may span lines)."""
    starts = []
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        start = 1
        for index, row in enumerate(reader):
            if index and any(field.strip() for field in row):
                starts.append(start)
            start = reader.line_num + 1
    return starts


def _read_list_csv(path: Path, required: tuple[str, ...], what: str) -> pl.DataFrame:
    """A list CSV as text columns; stops naming the file and line on anything it cannot read whole."""
    label = str(path)
    if not path.is_file():
        raise InputError(f"{what} file not found", file=label)
    if path.stat().st_size == 0:
        raise InputError(f"the {what} file is empty (0 bytes)", file=label)
    bad_utf8 = first_invalid_utf8(path)
    if bad_utf8 is not None:
        raise InputError(
            f"bytes that are not UTF-8 in the {what} list; save it as UTF-8", file=f"{label} line {bad_utf8[0]}"
        )
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8", raise_if_empty=True)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
        found = _broken_csv_line(path)
        if found is not None:
            raise InputError(f"malformed {what} CSV: {found[1]}", file=f"{label} line {found[0]}") from None
        raise InputError(f"unreadable {what} CSV ({' '.join(str(exc).split())[:150]})", file=label) from None
    frame = frame.rename({c: c.lstrip("\ufeff").strip() for c in frame.columns})
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"{what} list lacks required column(s): {', '.join(missing)}", file=label)
    found = _broken_csv_line(path)
    if found is not None:
        raise InputError(f"malformed {what} list: {found[1]}", file=f"{label} line {found[0]}")
    records = csv_record_count(path)
    if records != frame.height:  # a stray quote can make Polars swallow rows without an error
        raise InputError(
            f"ambiguous CSV quoting in the {what} list (a stray '\"'?): {frame.height} rows parsed but the file "
            f"holds {records} records; fix the quoting",
            file=label,
        )
    # Blank lines read as all-null rows: drop them, they are not entries.
    frame = frame.filter(~pl.all_horizontal(pl.all().is_null() | (pl.all().str.strip_chars() == "")))
    blank = frame.with_row_index("_index").filter(
        pl.any_horizontal([pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in required])
    )
    if blank.height:
        line = _record_lines(path)[int(blank["_index"][0])]
        raise InputError(f"{what} list row without {' or '.join(required)}", file=f"{label} line {line}")
    return frame


def _multi(name: str, frame: pl.DataFrame) -> pl.Expr:
    """A `;`-separated column as a list of trimmed, non-empty strings (empty list when absent)."""
    if name not in frame.columns:
        return pl.lit([], pl.List(pl.String())).alias(name)
    return (
        pl.col(name)
        .fill_null("")
        .str.split(";")
        .list.eval(pl.element().str.strip_chars().filter(pl.element() != ""))
        .alias(name)
    )


def _opt(name: str, frame: pl.DataFrame) -> pl.Expr:
    return pl.col(name) if name in frame.columns else pl.lit(None, pl.String)


def load_officials(path: Path) -> pl.DataFrame:
    """Officials (OpenSanctions targets.simple.csv layout, or FtM JSON lines), as list entries."""
    if is_ftm(path):
        return load_ftm_officials(path)
    frame = _read_list_csv(path, S.OFFICIAL_REQUIRED, "officials")
    frame = frame.with_columns(_multi("aliases", frame), _multi("countries", frame), _multi("phones", frame))
    return frame.select(
        pl.lit("official").alias("list_kind"),
        pl.col("id").str.strip_chars().alias("list_id"),
        pl.lit(None, pl.String).alias("network_id"),
        pl.col("name").str.strip_chars().alias("name"),
        pl.concat_list(pl.col("name").str.strip_chars(), "aliases").alias("names"),
        pl.col("countries").list.eval(pl.element().str.to_uppercase()),
        "phones",
        _opt("sanctions", frame).alias("role"),
        _opt("dataset", frame).alias("dataset"),
    ).cast(LIST_ENTRY_SCHEMA)  # type: ignore[arg-type]


def load_networks(path: Path) -> pl.DataFrame:
    """Known trafficking-network members (the contract's CSV, or FtM JSON lines), as list entries."""
    if is_ftm(path):
        return load_ftm_networks(path)
    frame = _read_list_csv(path, S.NETWORK_REQUIRED, "networks")
    frame = frame.with_columns(_multi("aliases", frame), _multi("countries", frame), _multi("phones", frame))
    return frame.select(
        pl.lit("network").alias("list_kind"),
        pl.col("entity_id").str.strip_chars().alias("list_id"),
        pl.col("network_id").str.strip_chars(),
        pl.col("name").str.strip_chars().alias("name"),
        pl.concat_list(pl.col("name").str.strip_chars(), "aliases").alias("names"),
        pl.col("countries").list.eval(pl.element().str.to_uppercase()),
        "phones",
        _opt("role", frame).alias("role"),
        pl.lit(None, pl.String).alias("dataset"),
    ).cast(LIST_ENTRY_SCHEMA)  # type: ignore[arg-type]


def empty_entries() -> pl.DataFrame:
    """A list-entry frame with no rows (no list given)."""
    return pl.DataFrame(schema=LIST_ENTRY_SCHEMA)


# --- FollowTheMoney entity JSON lines ------------------------------------------------------------

OFFICIAL_TOPICS = frozenset(["role.pep", "role.rca", "role.judge", "role.civil", "role.diplo"])
TRAFFICKING_TOPIC = "crime.traffick.human"
_PARTY_SCHEMATA = frozenset(["Person", "LegalEntity", "Organization", "Company", "PublicBody"])
# Relationship schemata: (property of one end, property of the other end, property holding the role).
_LINK_SCHEMATA: dict[str, tuple[str, str, str]] = {
    "Membership": ("member", "organization", "role"),
    "Employment": ("employee", "employer", "role"),
    "Directorship": ("director", "organization", "role"),
    "Associate": ("person", "associate", "relationship"),
    "Family": ("person", "relative", "relationship"),
    "UnknownLink": ("subject", "object", "role"),
}
_COUNTRY_PROPS = ("country", "nationality", "citizenship", "jurisdiction", "mainCountry")
_ALIAS_PROPS = ("alias", "weakAlias", "previousName")


def is_ftm(path: Path) -> bool:
    """True when a list file holds FtM entities as JSON lines (by suffix, else by its first character)."""
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson", ".ftm"):
        return True
    if path.suffix.lower() == ".csv" or not path.is_file():
        return False
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


def read_ftm(path: Path, what: str) -> list[dict[str, Any]]:
    """Every entity of an FtM JSON-lines file; a line that is not a JSON object stops, naming the line."""
    label = str(path)
    if not path.is_file():
        raise InputError(f"{what} file not found", file=label)
    entities: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8-sig") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    entity = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"not a JSON object ({exc.msg})", file=f"{label} line {number}") from None
                if not isinstance(entity, dict) or not isinstance(entity.get("properties", {}), dict):
                    raise InputError("not an FtM entity object", file=f"{label} line {number}")
                if not entity.get("id") or not entity.get("schema"):
                    raise InputError("FtM entity without id or schema", file=f"{label} line {number}")
                entity["_line"] = number
                entities.append(entity)
    except UnicodeDecodeError:
        raise InputError(f"{what} JSON lines file is not UTF-8", file=label) from None
    if not entities:
        raise InputError(f"the {what} file holds no entities", file=label)
    return entities


def _values(entity: dict[str, Any], *props: str) -> list[str]:
    out: list[str] = []
    properties = entity.get("properties") or {}
    for prop in props:
        raw = properties.get(prop) or []
        for value in raw if isinstance(raw, list) else [raw]:
            text = str(value).strip() if value is not None else ""
            if text and text not in out:
                out.append(text)
    return out


def _topics(entity: dict[str, Any]) -> set[str]:
    return set(_values(entity, "topics"))


def _entry(entity: dict[str, Any], kind: str, network_id: str | None, role: str | None) -> dict[str, Any]:
    names = _values(entity, "name") or [str(entity.get("caption") or "").strip()]
    names = [n for n in names if n]
    aliases = [a for a in _values(entity, *_ALIAS_PROPS) if a not in names]
    datasets = entity.get("datasets") or []
    return {
        "list_kind": kind,
        "list_id": str(entity["id"]),
        "network_id": network_id,
        "name": names[0] if names else None,
        "names": names + aliases,
        "countries": sorted({c.upper() for c in _values(entity, *_COUNTRY_PROPS) if len(c) == 2}),
        "phones": _values(entity, "phone"),
        "role": role,
        "dataset": ";".join(str(d) for d in datasets) or None,
    }


def _entries_frame(rows: list[dict[str, Any]], path: Path, what: str) -> pl.DataFrame:
    unnamed = next((r for r in rows if not r["name"]), None)
    if unnamed is not None:
        raise InputError(f"{what} entity {unnamed['list_id']} has no name", file=str(path))
    if not rows:
        return empty_entries()
    return pl.DataFrame(rows, schema=LIST_ENTRY_SCHEMA)


def load_ftm_officials(path: Path) -> pl.DataFrame:
    """Officials from FtM JSON lines: Person/LegalEntity entities with a PEP, RCA, judge or gov.* topic."""
    rows = []
    for entity in read_ftm(path, "officials"):
        if entity["schema"] not in ("Person", "LegalEntity"):
            continue
        topics = _topics(entity)
        official = sorted(t for t in topics if t in OFFICIAL_TOPICS or t.startswith("gov."))
        if not official:
            continue
        role = "; ".join(_values(entity, "position") or official)
        rows.append(_entry(entity, "official", None, role))
    return _entries_frame(rows, path, "officials")


def load_ftm_networks(path: Path) -> pl.DataFrame:
    """Network members from FtM JSON lines: entities tied to `crime.traffick.human`, grouped by their links.

    A network is a connected group of trafficking-tagged entities (and the people linked to a
    trafficking-tagged organisation). Its id is the id of its first organisation (sorted), else of
    its first member; each member's role comes from its link (e.g. Membership.role) or position.
    """
    entities = read_ftm(path, "networks")
    by_id = {str(e["id"]): e for e in entities}
    tagged = {i for i, e in by_id.items() if TRAFFICKING_TOPIC in _topics(e) and e["schema"] in _PARTY_SCHEMATA}
    parent = {i: i for i in tagged}

    def find(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    roles: dict[str, list[str]] = {}
    for entity in entities:
        spec = _LINK_SCHEMATA.get(entity["schema"])
        if spec is None:
            continue
        ends_a, ends_b = _values(entity, spec[0]), _values(entity, spec[1])
        role = _values(entity, spec[2])
        for a in ends_a:
            for b in ends_b:
                if a not in by_id or b not in by_id:
                    continue
                # A link joins a network when either end is tagged; the untagged end becomes a member.
                if a not in tagged and b not in tagged:
                    continue
                for end in (a, b):
                    if end not in parent and by_id[end]["schema"] in _PARTY_SCHEMATA:
                        parent[end] = end
                if a in parent and b in parent:
                    parent[find(a)] = find(b)
                # Membership-like links describe their first end; other links the end not tagged itself.
                if entity["schema"] in ("Membership", "Employment", "Directorship"):
                    member = a
                else:
                    member = b if a in tagged and b not in tagged else a if b in tagged and a not in tagged else ""
                if member:
                    roles.setdefault(member, []).extend(r for r in role if r not in roles.get(member, []))
    groups: dict[str, list[str]] = {}
    for i in sorted(parent):
        groups.setdefault(find(i), []).append(i)
    rows = []
    for members in groups.values():
        orgs = [m for m in members if by_id[m]["schema"] in ("Organization", "Company")]
        network_id = (orgs or members)[0]
        for m in members:
            entity = by_id[m]
            if m in orgs and len(members) > len(orgs):
                continue  # the organisation names the network; its people are the members
            role_text = "; ".join(roles.get(m) or _values(entity, "position")) or None
            rows.append(_entry(entity, "network", network_id, role_text))
    return _entries_frame(rows, path, "networks")
