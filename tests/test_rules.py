"""The rule catalogue: every rule's examples, validation of broken files, and the README table."""

from __future__ import annotations

from pathlib import Path

import pytest

from followmoney.config import DEFAULT_RULES_DIR
from followmoney.errors import RuleError
from followmoney.pipeline import run_example
from followmoney.rules import load_rules, rules_markdown

RULES = load_rules(DEFAULT_RULES_DIR)
CASES = [(r, e) for r in RULES for e in r.examples]


@pytest.mark.parametrize(("rule", "example"), CASES, ids=[f"{r.code}:{e.name}" for r, e in CASES])
def test_rule_example(rule, example) -> None:
    n = run_example(rule, example)
    assert (n > 0) == (example.expect == "alert"), f"{rule.code} {example.name}: {n} alert(s)"


def test_every_rule_has_planted_and_benign_example() -> None:
    for rule in RULES:
        assert {e.expect for e in rule.examples} == {"alert", "none"}, rule.code


def test_readme_rule_table_is_generated_from_rule_files() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = readme.split("<!-- rules:start -->\n")[1].split("<!-- rules:end -->")[0]
    assert table == rules_markdown(RULES), "run `followmoney rules doc` and paste it into README.md"


def test_broken_rule_file_reports_every_problem(tmp_path: Path) -> None:
    (tmp_path / "FM901.toml").write_text(
        'code = "FM901"\nname = "x"\ntypology = "structuring"\nkind = "no_such_kind"\nseverity = 2\n'
        'summary = "s"\nsource = "s"\nreason = "{n_txns}"\nbogus = 1\n'
    )
    (tmp_path / "FM902.toml").write_text(
        'code = "FM902"\nname = "x"\ntypology = "structuring"\nkind = "near_threshold_window"\nseverity = 0.5\n'
        'summary = "s"\nsource = "s"\nreason = "{nope} {n_txns.__class__}"\n[params]\nthreshold = "ten"\nwhat = 3\n'
    )
    (tmp_path / "FM903.toml").write_text("code = [")
    with pytest.raises(RuleError) as info:
        load_rules(tmp_path)
    text = str(info.value)
    for needle in (
        "FM901.toml: key 'kind': unknown detector 'no_such_kind'",
        "FM901.toml: key 'severity': must lie in [0, 1]",
        "FM901.toml: key 'bogus': unknown key",
        "FM902.toml: key 'params.threshold': must be float",
        "FM902.toml: key 'params.what': unknown parameter",
        "FM902.toml: key 'reason': field 'nope' is not produced",
        "FM902.toml: key 'reason': field '{n_txns.__class__}' must be a plain name",
        "FM903.toml: not valid TOML",
        "FM902.toml: key 'examples': missing",
    ):
        assert needle in text, (needle, text)


def test_overrides_and_selection() -> None:
    rules = load_rules(
        DEFAULT_RULES_DIR, overrides={"FM101": {"threshold": 5000.0}}, select=("FM10*",), exclude=("FM102", "FM10[34]")
    )
    assert [r.code for r in rules] == ["FM101"]
    assert rules[0].params["threshold"] == 5000.0
    with pytest.raises(RuleError, match=r"params\.min_count"):
        load_rules(DEFAULT_RULES_DIR, overrides={"FM101": {"min_count": "three"}})
    with pytest.raises(RuleError, match="matches no rule"):
        load_rules(DEFAULT_RULES_DIR, select=("FM999",))


def test_rules_commands(run_cli) -> None:
    assert run_cli("rules", "check").exit_code == 0
    listing = run_cli("rules", "list")
    assert listing.exit_code == 0 and "FM120" in listing.stdout


def _command_paths() -> list[list[str]]:
    """Every command and sub-command of the CLI, found from the app itself (new ones are covered too)."""
    import typer.main

    from followmoney.cli import app

    paths: list[list[str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(cmd, "commands", {}).items():  # a group lists its sub-commands
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_every_command_has_help_with_example_and_is_documented(run_cli) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    paths = _command_paths()
    assert ["scan"] in paths and ["rules", "check"] in paths
    for args in paths:
        result = run_cli(*args, "--help")
        assert result.exit_code == 0 and "Example:" in result.stdout, args
        if args:
            assert f"followmoney {' '.join(args)}" in readme or f"`{args[-1]}`" in readme, args
    assert run_cli("--version").stdout.startswith("followmoney ")
