"""What eqdp prints: tables that never cut an identifier, help that reads cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from eqdp.cli import app
from eqdp.cli.tables import fitted_table

runner = CliRunner()
RUN_ID = "20261122T091920Z-e4-p4m-resnet18-s2-521f5b"


def _render(table, width: int) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    return console.export_text()


@pytest.mark.parametrize("width", [60, 80, 100])
def test_a_narrow_table_keeps_ids_whole_and_names_what_it_left_out(width: int) -> None:
    header = ["run id", "benchmark", "dataset", "model", "setting", "seed", "key"]
    row = [RUN_ID, "low-data", "pneumoniamnist (28)", "eq-nasnet-b0",
           "fraction 0.1, 2ep, lr 0.003", "2", "39276abcdef0"]  # fmt: skip
    table = fitted_table(
        "runs", header, [row, row], identifiers=("run id", "model"),
        drop_order=("key", "benchmark", "setting"), width=width,
    )  # fmt: skip
    text = _render(table, width)
    assert text.count(RUN_ID) == 2 and text.count("eq-nasnet-b0") == 2
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines())
    if width < 100:
        assert "not shown, the terminal is too narrow: key" in " ".join(text.split())


def test_runs_at_80_columns_prints_whole_run_ids(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eqdp.cli import common

    args = ["run", "standard", "--model", "cnn", "--dataset", "breastmnist", "--epochs", "1",
            "--batch-size", "32", "--device", "cpu", "--no-verify-md5", "--data-dir",
            str(synthetic_dir), "--results-dir", str(tmp_path)]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    (record,) = [p for p in tmp_path.rglob("*.json") if "checkpoints" not in p.parts]
    monkeypatch.setattr(common.console, "width", 80)
    for command in (["runs"], ["leaderboard"]):
        result = runner.invoke(app, [*command, "--results-dir", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert "…" not in result.stdout
        if command == ["runs"]:
            assert record.stem in result.stdout


def test_top_level_help_lists_each_command_as_one_flowing_paragraph() -> None:
    from eqdp.cli.common import app as the_app

    assert all("\n" not in (c.short_help or "") for c in the_app.registered_commands)
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0
    # Before: the docstrings' hard line breaks cut "and whether the | checkpoint is there".
    assert "and whether the checkpoint is there" in result.output, result.output
    assert "within --tolerance, 1 if not" in result.output, result.output
