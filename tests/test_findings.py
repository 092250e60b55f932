"""The findings report (eqdp.report.findings*): protocols kept apart, verdicts from stats,
and every generated page (README, docs/) up to date with the committed records."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from eqdp.report.findings import build_tables
from eqdp.report.findings_page import render_report, render_status, render_summary
from eqdp.report.readme import update_pages
from eqdp.results.provenance import load_committed
from eqdp.results.rows import aggregate_rows
from eqdp.results.stats import compare

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return load_committed(ROOT / "results").records


def _standard_breast(records: list[dict], model: str) -> list[dict]:
    """The model's committed 100-epoch BreastMNIST records with its default options and
    no augmentation (the twin's controls, match=params and augment=d4, are rows of their own),
    at seeds 0-2, which every such row has."""
    return [
        r for r in records
        if (r["benchmark"], r["dataset"], r["model"]) == ("standard", "breastmnist", model)
        and r["config"]["train"]["epochs"] == 100
        and r["config"]["train"].get("augment", "none") == "none"
        and r["config"]["model_kwargs"].get("match", "macs") == "macs"
        and r["seed"] in (0, 1, 2)
    ]  # fmt: skip


def test_verdicts_are_the_paired_statistics(records: list[dict]) -> None:
    chosen = _standard_breast(records, "eq-nasnet-b0") + _standard_breast(records, "nasnet-b0")
    assert len(chosen) >= 6, "the committed 100-epoch BreastMNIST records"
    (table,) = build_tables(aggregate_rows(chosen))
    assert table.full and [line.opponent for line in table.lines] == ["nasnet-b0"]
    a = {r["seed"]: r["metrics"]["test"]["auc"] for r in chosen if r["model"] == "eq-nasnet-b0"}
    b = {r["seed"]: r["metrics"]["test"]["auc"] for r in chosen if r["model"] == "nasnet-b0"}
    expected = compare(a, b)
    assert table.lines[0].result.verdict == expected.verdict
    assert table.lines[0].result.interval == pytest.approx(expected.interval)


def test_smoke_budget_never_stands_beside_the_full_protocol(records: list[dict]) -> None:
    full = _standard_breast(records, "eq-nasnet-b0") + _standard_breast(records, "nasnet-b0")
    smoke = copy.deepcopy(full)
    for record in smoke:
        record["config"]["train"]["epochs"] = 10
        record["run_id"] += "-short"
    rows = aggregate_rows(full + smoke)
    tables = build_tables(rows)
    assert sorted(t.full for t in tables) == [False, True]
    for table in tables:
        epochs = {row.material["train"]["epochs"] for row in table.rows}
        assert epochs == ({100} if table.full else {10})
    report = render_report(rows)
    head, _, tail = report.partition("## Smoke budget")
    assert "Epochs 100;" in head and "Epochs 10;" not in head
    assert "Epochs 10;" in tail and "Epochs 100;" not in tail
    summary = render_summary(aggregate_rows(smoke))  # smoke only: nothing to summarise
    assert "standard, BreastMNIST**: no full-protocol eq-nasnet-b0 record yet" in summary


def test_status_matrix_counts_datasets_and_seeds(records: list[dict]) -> None:
    status = render_status(aggregate_rows(_standard_breast(records, "eq-nasnet-b0")))
    line = next(x for x in status.splitlines() if x.startswith("| eq-nasnet-b0 |"))
    # 3 seeds on one of three datasets: partial, and not enough seeds (5) anywhere yet.
    assert line.split(" | ")[1] == "partial 0/3 · smoke missing"


def test_readme_and_docs_pages_are_up_to_date() -> None:
    stale = update_pages(ROOT / "README.md", ROOT / "results", check=True)
    assert stale == [], f"run `uv run eqdp readme` and commit {stale}"
    assert "<!-- eqdp:findings report -->" in (ROOT / "docs" / "findings.md").read_text()


def test_report_findings_command_writes_and_checks(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from eqdp.cli import app

    out = tmp_path / "findings.md"
    results = str(ROOT / "results")
    written = CliRunner().invoke(app, ["report", "findings", "--out", str(out),
                                       "--results-dir", results])  # fmt: skip
    assert written.exit_code == 0, written.output
    assert out.read_text() == (ROOT / "docs" / "findings.md").read_text()
    checked = CliRunner().invoke(app, ["report", "findings", "--out", str(out), "--check",
                                       "--results-dir", results])  # fmt: skip
    assert checked.exit_code == 0, checked.output
    out.write_text(out.read_text().replace("**level**", "**win**"))
    stale = CliRunner().invoke(app, ["report", "findings", "--out", str(out), "--check",
                                     "--results-dir", results])  # fmt: skip
    assert stale.exit_code != 0 and "out of date" in stale.output


def test_controls_are_named_and_paired(records: list[dict]) -> None:
    subject = _standard_breast(records, "eq-nasnet-b0")
    twin = _standard_breast(records, "nasnet-b0")
    augmented, by_params = copy.deepcopy(twin), copy.deepcopy(twin)
    for record in augmented:
        record["config"]["train"]["augment"] = "d4"
        record["run_id"] += "-d4"
    for record in by_params:
        record["config"]["model_kwargs"]["match"] = "params"
        record["run_id"] += "-params"
    (table,) = build_tables(aggregate_rows(subject + twin + augmented + by_params))
    assert table.opponents == ["nasnet-b0", "nasnet-b0 match=params", "nasnet-b0 augment=d4"]
    assert all(line.result.seeds == (0, 1, 2) for line in table.lines)
    report = render_report(aggregate_rows(subject + augmented))
    assert "nasnet-b0 augment=d4 (twin trained with D4 augmentation)" in report
