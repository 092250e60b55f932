"""eqdp reproduce RUN_ID: rerun a record's configuration and report what differs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from eqdp.cli.common import app, console, guarded
from eqdp.cli.options import ResultsDir


@app.command(rich_help_panel="Results")
def reproduce(
    run_id: Annotated[str, typer.Argument(help="The run to rerun (see `eqdp runs`).")],
    results_dir: ResultsDir = None,
    out: Annotated[
        Path, typer.Option(help="Where the rerun's record and checkpoint go.")
    ] = Path("runs") / "reproduce",
    tolerance: Annotated[
        float, typer.Option(help="Largest test-metric difference that counts as reproduced.")
    ] = 0.005,
    threads: Annotated[
        int | None, typer.Option(help="Intra-op threads \\[default: the record's].")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda \\[default: the record's device type].")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder with MedMNIST .npz files \\[env: EQDP_DATA_DIR].")
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(help="Where an evaluation record's source checkpoint is \\[env: "
                     "EQDP_CHECKPOINT_DIR; default: checkpoints/ in --results-dir]."),  # fmt: skip
    ] = None,
) -> None:
    """Rerun a finished run's configuration at its thread count and compare: every
    metric (original, rerun, difference), the epoch history, and the versions and
    environment that differ. Exit 0 if the test metrics agree within --tolerance,
    1 if not.

    Example: [bold]eqdp reproduce 20261122T030555Z-cnn-s0-bbe2eb --results-dir results[/]
    """
    outcome: dict = {}

    def body() -> None:
        from eqdp.benchmarks.reproduce import reproduce as rerun
        from eqdp.cli.progress import RunBar, run_progress
        from eqdp.errors import EqdpError
        from eqdp.results.records import find_record
        from eqdp.suites.plan import describe

        if not 0 <= tolerance < 1:
            raise EqdpError(f"--tolerance {tolerance:g} must be in [0, 1)")
        original = find_record(run_id, results_dir)
        label = f"reproduce {run_id}"
        epochs = original["config"]["train"]["epochs"]
        with run_progress() as progress:
            bar = RunBar(progress, label, epochs)
            result = rerun(
                run_id, results_dir, out, threads, device,
                str(data_dir) if data_dir else None,
                str(checkpoint_dir) if checkpoint_dir else None, on_progress=bar,
            )  # fmt: skip
        from eqdp.config.fields import parse_config
        from eqdp.config.run import RunConfig

        config = parse_config(RunConfig, original["config"], "config")
        console.print(
            f"{describe(config)}: original {run_id}, rerun {result.rerun['run_id']} "
            f"at {result.rerun['env']['cpu_threads']} threads on {result.rerun['env']['device']}",
            soft_wrap=True, highlight=False,
        )  # fmt: skip
        table = Table(title="numbers that differ" if not result.bit_identical else None)
        for column in ("number", "original", "rerun", "difference"):
            table.add_column(column)
        shown = [n for n in result.numbers if n[0].startswith("metrics.test.")]
        shown += [n for n in result.differing() if n not in shown][:20]
        for name, was, now in shown:
            delta = "–" if was is None or now is None else f"{now - was:+.4f}"
            table.add_row(name, _number(was), _number(now), delta)
        console.print(table)
        if result.first_history_difference is None:
            console.print("history: identical, epoch by epoch (wall times aside)")
        else:
            epoch = result.first_history_difference
            console.print(f"history: first differs at epoch {epoch}", highlight=False)
        if result.environment:
            changes = ", ".join(f"{name} {was} -> {now}" for name, was, now in result.environment)
            console.print(f"environment: {changes}", soft_wrap=True, highlight=False)
        else:
            console.print("environment: same versions, device, threads and data file")
        name, largest = result.largest_test_difference()
        where = f" ({name})" if name else ""
        if result.bit_identical:
            console.print(f"[green]reproduced[/], bit for bit -> {result.rerun_path}")
        elif result.reproduced(tolerance):
            console.print(
                f"[green]reproduced[/] within {tolerance:g}: largest test difference "
                f"{largest:.4f}{where} -> {result.rerun_path}", soft_wrap=True,
            )  # fmt: skip
        else:
            console.print(
                f"[red]not reproduced[/]: test difference {largest:.4f}{where} is above "
                f"{tolerance:g} -> {result.rerun_path}", soft_wrap=True,
            )  # fmt: skip
            outcome["failed"] = True

    guarded(body)
    if outcome.get("failed"):
        raise typer.Exit(code=1)


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"
