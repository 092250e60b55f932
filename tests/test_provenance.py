"""Provenance rules over the committed results/ folder (eqdp.results.provenance)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eqdp.results.provenance import committed, duplicate_runs, is_dirty
from eqdp.results.records import load_records

RESULTS = Path(__file__).resolve().parent.parent / "results"


@pytest.fixture(scope="module")
def committed_records() -> list[dict]:
    return load_records(RESULTS, on_skip=None)


def test_no_run_has_two_records(committed_records: list[dict]) -> None:
    duplicates = duplicate_runs(committed_records)
    named = [[r["_path"] for r in group] for group in duplicates]
    assert not duplicates, f"two records of one run (git rm the later one): {named}"


def test_tuning_records_are_never_results(committed_records: list[dict]) -> None:
    tuning = [json.loads(p.read_text()) for p in (RESULTS / "tuning").rglob("*.json")]
    assert all("/tuning/" not in r["_path"] for r in committed_records)
    tuning_ids = {t.get("run_id") for t in tuning}
    # A result that is a copy of a tuning run (same id, or the same measured history)
    # would let the tuning double as a result.
    assert not [r["_path"] for r in committed_records if r["run_id"] in tuning_ids]
    tuning_histories = {json.dumps(t.get("history"), sort_keys=True) for t in tuning}
    copies = [
        r["_path"]
        for r in committed_records
        if r.get("history") and json.dumps(r["history"], sort_keys=True) in tuning_histories
    ]
    assert not copies, f"results that copy a tuning run: {copies}"


def test_dirty_records_are_left_out_and_counted() -> None:
    where = {"benchmark": "standard", "dataset": "breastmnist", "model": "p4-resnet18"}
    clean = {"env": {"git_dirty": False}, **where}
    unknown = {"env": {}, **where}
    dirty = {"env": {"git_dirty": True}, **where}
    chosen = committed([clean, unknown, dirty])
    assert chosen.records == [clean, unknown] and chosen.dirty == [dirty]
    assert is_dirty(dirty) and not is_dirty(unknown)
    assert "1 record from a dirty checkout" in chosen.note()
    assert "standard breastmnist p4-resnet18 ×1" in chosen.note()
    assert committed([clean]).note() == ""


def test_duplicates_are_found(committed_records: list[dict]) -> None:
    record = committed_records[0]
    later = {**record, "created_at": "2999-01-01T00:00:00+00:00", "run_id": "later"}
    groups = duplicate_runs([record, later])
    assert [[r["run_id"] for r in g] for g in groups] == [[record["run_id"], "later"]]


def test_regenerating_pages_refuses_duplicate_records(tmp_path: Path) -> None:
    import shutil

    from eqdp.errors import EqdpError
    from eqdp.report.readme import update_pages

    source = sorted((RESULTS / "standard" / "breastmnist_28" / "cnn").glob("*.json"))[0]
    folder = tmp_path / "results" / "standard" / "breastmnist_28" / "cnn"
    folder.mkdir(parents=True)
    shutil.copy(source, folder / source.name)
    later = json.loads(source.read_text()) | {"run_id": "later", "created_at": "2999-01-01"}
    (folder / "later.json").write_text(json.dumps(later))
    readme = tmp_path / "README.md"
    readme.write_text("# R\n")
    with pytest.raises(EqdpError, match="two records of one run"):
        update_pages(readme, tmp_path / "results", check=True)


def test_a_dirty_checkout_may_not_write_committed_records(monkeypatch, tmp_path) -> None:
    from eqdp.errors import EqdpError
    from eqdp.results import environment, provenance

    monkeypatch.setattr(environment, "git_dirty", lambda: True)
    with pytest.raises(EqdpError, match="committed records come from committed code"):
        provenance.refuse_dirty_code_for_committed_results(
            {str(provenance.COMMITTED_RESULTS / "tuning")}
        )
    provenance.refuse_dirty_code_for_committed_results({str(tmp_path)})  # elsewhere: allowed
    monkeypatch.setattr(environment, "git_dirty", lambda: False)
    provenance.refuse_dirty_code_for_committed_results({str(provenance.COMMITTED_RESULTS)})
