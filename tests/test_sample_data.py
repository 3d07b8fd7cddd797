"""The committed sample world is exactly what `followmoney synth --rows 50000 --seed 7` makes."""

from __future__ import annotations

import json
from pathlib import Path

from followmoney.synth import generate_world

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def test_sample_data_is_reproducible(tmp_path: Path) -> None:
    committed = json.loads((SAMPLE / "world.json").read_text())
    generate_world(committed["rows"], committed["seed"], tmp_path)
    fresh = json.loads((tmp_path / "world.json").read_text())
    assert fresh["files"] == committed["files"], "sample_data is stale: run `make sample` and commit it"
    size = sum(p.stat().st_size for p in SAMPLE.iterdir())
    assert size < 5 * 1024 * 1024
