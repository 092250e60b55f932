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


def _bar(monkeypatch: pytest.MonkeyPatch):
    import io

    from rich.progress import Progress

    from eqdp.cli import progress

    sink = io.StringIO()
    monkeypatch.setattr(progress, "errors", Console(file=sink, width=200))
    return progress, progress.RunBar(Progress(disable=True), "run", 1), sink


def test_the_first_measured_batch_says_its_speed_and_eta_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from eqdp.engine.progress import TrainingProgress

    _, bar, sink = _bar(monkeypatch)
    bar(TrainingProgress(1, 1, 0, 546, 0.0))
    bar(TrainingProgress(1, 1, 128, 546, 64.0))  # one batch of a heavy model: 2 img/s
    bar.close()
    assert "epoch 1/1: 128/546 images, 2.0 img/s, eta 3 min for training" in sink.getvalue()


def test_a_slow_first_batch_is_not_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from eqdp.engine.progress import TrainingProgress

    progress, bar, sink = _bar(monkeypatch)
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.05)
    bar(TrainingProgress(1, 1, 0, 546, 0.0))
    time.sleep(0.3)
    bar.close()
    assert "still on the first training batch after" in sink.getvalue()


@pytest.mark.parametrize("what", ["models", "datasets", "benchmarks", "attacks"])
def test_lists_at_80_columns_print_every_name_whole(
    monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    from eqdp.catalogue.models import load_catalogue
    from eqdp.cli import common

    monkeypatch.setattr(common.console, "width", 80)
    result = runner.invoke(app, ["list", what])
    assert result.exit_code == 0 and "…" not in result.stdout, result.stdout
    if what == "models":  # before: "e4-p4-resnet…", "efficientnet…"
        assert all(name in result.stdout for name in load_catalogue()["models"])
