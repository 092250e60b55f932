"""Checks that keep committed docs honest: generated tables and cards match their sources."""

from __future__ import annotations

import os
import re
from pathlib import Path

from eqdp.data.medmnist_data import FLAGS_2D, SIZES, expected_md5
from eqdp.report.readme import generated_pages, updated_readme
from eqdp.results import load_records

ROOT = Path(__file__).resolve().parents[1]


def test_readme_and_docs_tables_are_generated_from_committed_records() -> None:
    pages = generated_pages(ROOT / "README.md")
    text = "".join(page.read_text() for page in pages)
    assert "<!-- eqdp:table standard train.epochs=100 -->" in text  # full-protocol tables
    assert "<!-- eqdp:search eq-nasnet-28 -->" in text
    assert "<!-- eqdp:scaling loss -->" in text
    readme = (ROOT / "README.md").read_text()
    assert "<!-- eqdp:findings summary -->" in readme and "<!-- eqdp:status -->" in readme
    records = load_records(ROOT / "results", on_skip=None)
    for page in pages:
        page_text = page.read_text()
        fresh = updated_readme(page_text, records, ROOT / "results")
        assert fresh == page_text, f"run `uv run eqdp readme` and commit {page}"


def test_committed_records_are_all_valid() -> None:
    problems: list[str] = []
    load_records(ROOT / "results", on_skip=lambda path, why: problems.append(f"{path}: {why}"))
    assert problems == []


def test_dataset_card_md5s_match_medmnist_info() -> None:
    card = (ROOT / "datasets" / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\w+ \| \d+) \| \S+ \| ([0-9a-f]{32}) \|$", card, re.M))
    assert len(rows) == len(FLAGS_2D) * len(SIZES)
    for flag in FLAGS_2D:
        for size in SIZES:
            assert rows[f"{flag} | {size}"] == expected_md5(flag, size)


def test_console_script_enters_through_main_which_applies_the_environment() -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["eqdp"] == "eqdp.cli:main"


def test_readme_block_filters_select_on_the_configuration() -> None:
    from eqdp.report.readme import _matches

    record = {"config": {"train": {"epochs": 100}, "model": "cnn"}}
    assert _matches(record, " train.epochs=100 model=cnn")
    assert not _matches(record, " train.epochs!=100")
    assert _matches(record, " train.epochs!=10")
    assert _matches(record, " train.epochs=10,100")
    assert not _matches(record, " train.epochs!=10,100")


def test_pinned_dependencies_cover_what_changes_numbers_without_registry_addresses() -> None:
    from eqdp.results.environment import VERSIONED_PACKAGES, differences_from_pins, pinned_versions

    text = (ROOT / "requirements" / "pinned.txt").read_text()
    assert "://" not in text  # no addresses
    assert not [line for line in text.splitlines() if line.startswith("-")]  # no installer options
    pins = pinned_versions()
    assert {"torch", "numpy", "escnn", "opacus", "scikit-learn", "pytest"} <= set(pins)
    missing = [name for name in VERSIONED_PACKAGES if name not in pins]
    assert missing == [], f"pin {missing}: bash scripts/pin-dependencies.sh"
    if os.environ.get("CI") == "true":  # .ci/run installs exactly the pinned set
        assert differences_from_pins() == {}
