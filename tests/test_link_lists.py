"""Lists load unchanged from the OpenSanctions layouts: targets.simple.csv (old and new) and FtM JSON lines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from followmoney.errors import InputError
from followmoney.lists import load_networks, load_officials

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["targets.simple.csv", "targets.simple.old.csv"])
def test_targets_simple_csv_with_and_without_program_ids(name: str) -> None:
    entries = load_officials(FIXTURES / name)
    row = entries.filter(entries["list_id"] == "Q7219001").to_dicts()[0]
    assert row["list_kind"] == "official" and row["name"] == "Somchai Srisuk"
    assert row["names"] == ["Somchai Srisuk", "Pol. Col. Somchai Srisuk", "สมชาย ศรีสุข"]
    assert row["countries"] == ["TH"] and row["phones"] == ["+66 89 999 9999"]
    assert row["dataset"].startswith("Every Politician")
    khmer = entries.filter(entries["list_id"] == "Q6612345").to_dicts()[0]
    assert khmer["names"] == ["Sok Chan", "សុខ ចាន់"] and khmer["countries"] == ["KH"]


def test_ftm_officials_selected_by_topic() -> None:
    entries = load_officials(FIXTURES / "entities.ftm.json")
    by_id = {r["list_id"]: r for r in entries.to_dicts()}
    # role.pep + gov.security, role.rca, role.judge; not the Position, Occupancy, Family or trafficking entities.
    assert sorted(by_id) == ["Q6612999", "Q7219001", "Q7219002"]
    assert by_id["Q7219001"]["role"] == "Superintendent, Royal Thai Police"
    assert by_id["Q7219001"]["names"] == ["Somchai Srisuk", "สมชาย ศรีสุข", "Pol. Col. Somchai Srisuk"]
    assert by_id["Q7219001"]["phones"] == ["+66899999999"] and by_id["Q7219001"]["countries"] == ["TH"]
    assert by_id["Q7219001"]["dataset"] == "wd_peps;everypolitician"
    assert by_id["Q7219002"]["role"] == "role.rca"


def test_ftm_networks_grouped_through_links() -> None:
    entries = load_networks(FIXTURES / "entities.ftm.json")
    rows = {r["list_id"]: (r["network_id"], r["role"]) for r in entries.to_dicts()}
    assert rows == {
        "NK-p-12": ("NK-ring-7", "recruiter"),  # member of a tagged organisation (Membership.role)
        "NK-p-13": ("NK-ring-7", "driver"),  # untagged person, member of the tagged organisation
        "NK-p-20": ("NK-p-20", "document forger"),  # tagged person without organisation: own network
        "NK-p-21": ("NK-p-20", "broker"),  # linked to a tagged person by an UnknownLink
    }
    assert set(entries["list_kind"]) == {"network"}


def test_ftm_detected_by_content_without_json_suffix(tmp_path: Path) -> None:
    copy = tmp_path / "pep-export.txt"
    shutil.copy(FIXTURES / "entities.ftm.json", copy)
    assert load_officials(copy).height == 3


def test_ftm_broken_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "entities.ftm.json"
    lines = (FIXTURES / "entities.ftm.json").read_text(encoding="utf-8").splitlines()
    lines.insert(2, '{"id": "x", "schema": "Person", "properties": {"name": ["A"]')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"entities\.ftm\.json line 3"):
        load_officials(path)
