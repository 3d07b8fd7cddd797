"""The matcher against a seeded synth world's planted identities: precision and recall >= 0.95, no namesake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from followmoney.synth import generate_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate_world(30_000, 5, out, chunk_rows=1_000_000, bad_fraction=0.0, progress=lambda n: None)
    return out


def test_match_eval_precision_recall_and_namesakes(world: Path, run_cli, tmp_path: Path) -> None:
    result = run_cli("match-eval", world, "--json", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "m.json").read_text())
    assert figures["true_identities"] >= 20 and figures["namesakes"] >= 10
    assert figures["precision"] >= 0.95 and figures["recall"] >= 0.95
    assert figures["namesakes_matched"] == 0
    assert "precision" in result.output and "namesakes matched above threshold 0/" in result.output


def test_match_eval_stricter_threshold_trades_recall(world: Path, run_cli, tmp_path: Path) -> None:
    result = run_cli("match-eval", world, "--threshold", "0.99", "--review-floor", "0.7", "--json", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    strict = json.loads((tmp_path / "m.json").read_text())
    assert strict["precision"] >= 0.95 and strict["recall"] < 0.95  # only phone + near-exact names remain
    bad = run_cli("match-eval", world, "--threshold", "0.5", "--review-floor", "0.7")
    assert bad.exit_code == 2 and "--review-floor" in bad.stderr
