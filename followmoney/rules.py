"""Load and validate rules/*.toml: rules are data (read with tomllib), never executed.

Every problem in every rule file is collected and reported at once (file, key, why).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from followmoney.detectors import DETECTORS
from followmoney.errors import RuleError

CODE_RE = re.compile(r"^FM\d{3}$")
FORMAT_SPEC_RE = re.compile(r"^(,?\.\d+f|,d|,\.0f|d)?$")
TOP_KEYS = {
    "code": str,
    "name": str,
    "typology": str,
    "kind": str,
    "severity": float,
    "summary": str,
    "source": str,
    "reason": str,
}
OPTIONAL_KEYS = {"params", "examples", "requires", "groups"}
# Link facts a rule can require of its candidates (checked by pipeline.apply_requirements):
REQUIREMENTS: dict[str, type] = {
    "counterparty_official": bool,  # the counterparty matches the officials list
    "subject_official": bool,  # the subject matches the officials list
    "subject_or_counterparty_network": bool,  # subject or counterparty is a listed network member
    "subject_or_counterparty_listed": bool,  # subject or counterparty is a listed official or network member
    "min_network_members": int,  # at least N of the candidate's member_ids are listed network members
    "payers_one_network": bool,  # a candidate with several member_ids needs two of them in one network
    "alone": bool,  # kept only if no other rule's candidate that could be reported names the subject
}
MEMBER_REQUIREMENTS = ("min_network_members", "payers_one_network")  # need evidence column member_ids
EXAMPLE_KEYS = {"name", "expect", "txns", "officials", "networks", "fx", "phones", "countries", "names"}


@dataclass(frozen=True)
class Example:
    """A small set of transfers a rule must alert on (expect = 'alert') or stay silent on ('none')."""

    name: str
    expect: str
    txns: list[list[Any]]  # [sender, receiver, ts, amount, agent(, currency)]
    officials: list[str] = field(default_factory=list)  # receiver/sender ids that are listed officials
    networks: list[str] = field(default_factory=list)  # listed network members: "ID" (network N-X) or "N-2:ID"
    fx: dict[str, float] = field(default_factory=dict)  # usd_per_unit for currencies other than USD
    phones: dict[str, str] = field(default_factory=dict)  # party id -> phone (sender_phone / profile)
    countries: dict[str, str] = field(default_factory=dict)  # party id -> country (default TH)
    names: dict[str, str] = field(default_factory=dict)  # party id -> name as recorded (default: the id)


@dataclass(frozen=True)
class Rule:
    """One rule: a detector kind with parameters, a severity, a reason template and its examples."""

    code: str
    name: str
    typology: str
    kind: str
    severity: float
    summary: str
    source: str
    reason: str
    params: dict[str, Any]
    requires: dict[str, bool]
    examples: tuple[Example, ...]
    path: Path
    sha256: str
    groups: tuple[str, ...] = ()

    def reason_fields(self) -> list[str]:
        """Names of the fields the reason template uses."""
        return [f for _, f, _, _ in string.Formatter().parse(self.reason) if f]


def _type_ok(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _check_template(label: str, template: str, allowed: set[str], problems: list[str]) -> None:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        problems.append(f"{label}: key 'reason': broken template ({exc})")
        return
    for _, fname, spec, conv in parts:
        if fname is None:
            continue
        if not fname.isidentifier():
            problems.append(f"{label}: key 'reason': field '{{{fname}}}' must be a plain name")
        elif fname not in allowed:
            problems.append(f"{label}: key 'reason': field '{fname}' is not produced by this detector")
        if conv or not FORMAT_SPEC_RE.match(spec or ""):
            problems.append(f"{label}: key 'reason': format '{fname}:{spec}' is not allowed (use .Nf, ,.Nf or ,d)")


def _parse_rule(path: Path, data: dict[str, Any], problems: list[str]) -> Rule | None:
    label = str(path)
    before = len(problems)
    for key, typ in TOP_KEYS.items():
        if key not in data:
            problems.append(f"{label}: key '{key}': missing")
        elif not _type_ok(data[key], typ):
            problems.append(f"{label}: key '{key}': must be {typ.__name__}, found {type(data[key]).__name__}")
    for key in sorted(set(data) - set(TOP_KEYS) - OPTIONAL_KEYS):
        problems.append(f"{label}: key '{key}': unknown key")
    code = data.get("code")
    if isinstance(code, str):
        if not CODE_RE.match(code):
            problems.append(f"{label}: key 'code': '{code}' is not of the form FM123")
        elif path.stem != code:
            problems.append(f"{label}: key 'code': '{code}' differs from the file name")
    severity = data.get("severity")
    if isinstance(severity, int | float) and not 0 <= float(severity) <= 1:
        problems.append(f"{label}: key 'severity': must lie in [0, 1]")
    kind = data.get("kind")
    detector = DETECTORS.get(kind) if isinstance(kind, str) else None
    if isinstance(kind, str) and detector is None:
        problems.append(f"{label}: key 'kind': unknown detector '{kind}' (known: {', '.join(sorted(DETECTORS))})")
    params: dict[str, Any] = {}
    raw_params = data.get("params", {})
    if not isinstance(raw_params, dict):
        problems.append(f"{label}: key 'params': must be a table")
        raw_params = {}
    if detector is not None:
        params = {name: spec.default for name, spec in detector.params.items()}
        params.update(raw_params)
        check_params(label, detector.kind, params, problems)
        if isinstance(data.get("reason"), str):
            _check_template(label, data["reason"], set(detector.fields()), problems)
    requires = data.get("requires", {})
    if not isinstance(requires, dict):
        problems.append(f"{label}: key 'requires': must be a table")
        requires = {}
    for key, value in requires.items():
        if key not in REQUIREMENTS:
            problems.append(f"{label}: key 'requires.{key}': unknown requirement (known: {', '.join(REQUIREMENTS)})")
        elif not _type_ok(value, REQUIREMENTS[key]):
            what = "true or false" if REQUIREMENTS[key] is bool else "a whole number"
            problems.append(f"{label}: key 'requires.{key}': must be {what}")
        elif key in MEMBER_REQUIREMENTS and detector is not None and "member_ids" not in detector.evidence:
            problems.append(f"{label}: key 'requires.{key}': detector '{detector.kind}' gives no member_ids")
    examples = _parse_examples(label, data.get("examples", []), problems)
    groups = data.get("groups", [])
    if not (isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
        problems.append(f"{label}: key 'groups': must be a list of strings")
        groups = []
    if len(problems) > before:
        return None
    return Rule(
        code=data["code"],
        name=data["name"],
        typology=data["typology"],
        kind=data["kind"],
        severity=float(data["severity"]),
        summary=data["summary"],
        source=data["source"],
        reason=data["reason"],
        params=params,
        requires=dict(requires),
        examples=examples,
        path=path,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        groups=tuple(groups),
    )


def check_params(label: str, kind: str, params: dict[str, Any], problems: list[str]) -> None:
    """Append a problem for each unknown, mistyped or out-of-choice parameter of a detector kind."""
    specs = DETECTORS[kind].params
    for name, value in params.items():
        spec = specs.get(name)
        if spec is None:
            problems.append(f"{label}: key 'params.{name}': unknown parameter for '{kind}' (known: {', '.join(specs)})")
            continue
        if not _type_ok(value, spec.type):
            problems.append(f"{label}: key 'params.{name}': must be {spec.type.__name__}, found {type(value).__name__}")
            continue
        if spec.choices:
            values = value if isinstance(value, list) else [value]
            bad = [v for v in values if v not in spec.choices]
            if bad:
                problems.append(f"{label}: key 'params.{name}': {bad} not among {list(spec.choices)}")
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            problems.append(f"{label}: key 'params.{name}': must not be negative")


def _parse_examples(label: str, raw: Any, problems: list[str]) -> tuple[Example, ...]:
    if not isinstance(raw, list):
        problems.append(f"{label}: key 'examples': must be an array of tables [[examples]]")
        return ()
    out = []
    for i, ex in enumerate(raw):
        where = f"{label}: key 'examples[{i}]'"
        if not isinstance(ex, dict):
            problems.append(f"{where}: must be a table")
            continue
        for key in sorted(set(ex) - EXAMPLE_KEYS):
            problems.append(f"{where}.{key}: unknown key")
        if ex.get("expect") not in ("alert", "none"):
            problems.append(f"{where}.expect: must be 'alert' or 'none'")
        txns = ex.get("txns")
        if not (isinstance(txns, list) and txns and all(isinstance(t, list) and len(t) in (5, 6) for t in txns)):
            problems.append(
                f"{where}.txns: must be a non-empty list of [sender, receiver, ts, amount, agent(, currency)]"
            )
            continue
        tables = {}
        for key in ("fx", "phones", "countries", "names"):
            value = ex.get(key, {})
            if not isinstance(value, dict):
                problems.append(f"{where}.{key}: must be a table")
                value = {}
            tables[key] = value
        currencies = {str(t[5]).upper() for t in txns if len(t) == 6} - {"USD"}
        for code in sorted(currencies - {str(k).upper() for k in tables["fx"]}):
            problems.append(f"{where}.fx: no rate for currency {code}")
        out.append(
            Example(
                name=str(ex.get("name", f"example {i}")),
                expect=str(ex.get("expect")),
                txns=txns,
                officials=list(ex.get("officials", [])),
                networks=list(ex.get("networks", [])),
                fx={str(k).upper(): float(v) for k, v in tables["fx"].items()},
                phones={str(k): str(v) for k, v in tables["phones"].items()},
                countries={str(k): str(v) for k, v in tables["countries"].items()},
                names={str(k): str(v) for k, v in tables["names"].items()},
            )
        )
    expects = {e.expect for e in out}
    if out and not {"alert", "none"} <= expects:
        problems.append(f"{label}: key 'examples': needs at least one 'alert' and one 'none' example")
    if not raw:
        problems.append(f"{label}: key 'examples': missing (a planted pattern and a benign look-alike are required)")
    return tuple(out)


def load_rules(
    rules_dir: Path,
    *,
    overrides: dict[str, dict[str, Any]] | None = None,
    select: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> list[Rule]:
    """All rules in `rules_dir` (sorted by code), with user overrides applied and selection filtered."""
    if not rules_dir.is_dir():
        raise RuleError([f"{rules_dir}: rules directory not found"])
    problems: list[str] = []
    rules: list[Rule] = []
    for path in sorted(rules_dir.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: not valid TOML ({exc})")
            continue
        rule = _parse_rule(path, data, problems)
        if rule is not None:
            rules.append(rule)
    codes = [r.code for r in rules]
    for code in sorted({c for c in codes if codes.count(c) > 1}):
        problems.append(f"{rules_dir}: code {code} is used by more than one file")
    by_code = {r.code: r for r in rules}
    for code, changes in (overrides or {}).items():
        rule = by_code.get(code)
        if rule is None:
            problems.append(f"config: key 'rules.{code}': no such rule")
            continue
        if not isinstance(changes, dict):
            problems.append(f"config: key 'rules.{code}': must be a table of parameters")
            continue
        params = {**rule.params, **changes}
        check_params(f"config [rules.{code}]", rule.kind, params, problems)
        by_code[code] = _replace_params(rule, params)
    for pattern in (*select, *exclude):
        if not any(fnmatch.fnmatchcase(c, pattern) for c in by_code):
            problems.append(f"--select/--exclude: '{pattern}' matches no rule code")
    if problems:
        raise RuleError(problems)
    chosen = [
        r
        for code, r in sorted(by_code.items())
        if (not select or any(fnmatch.fnmatchcase(code, p) for p in select))
        and not any(fnmatch.fnmatchcase(code, p) for p in exclude)
    ]
    return chosen


def _replace_params(rule: Rule, params: dict[str, Any]) -> Rule:
    from dataclasses import replace

    return replace(rule, params=params)


def rules_markdown(rules: list[Rule]) -> str:
    """The rule catalogue as a Markdown table (the README's copy is generated from this)."""
    lines = [
        "| code | name | typology | kind | severity | summary | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rules:
        cells = [r.code, f"`{r.name}`", r.typology, f"`{r.kind}`", f"{r.severity:.2f}", r.summary, r.source]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"
