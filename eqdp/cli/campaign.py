"""eqdp campaign: fill the committed tables' missing cells within a time budget."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from eqdp.cli.common import app, console, errors, guarded


def default_workers(device: str) -> int:
    """Several runs per GPU: one per ~1.5 GB of free GPU memory, at most one per two
    CPU cores (each worker's host thread launches its kernels), at most 16."""
    cores = os.cpu_count() or 1
    if device != "cuda":
        return max(1, cores // 2)
    import torch

    free, _ = torch.cuda.mem_get_info()
    return max(1, min(16, cores // 2 + 4, int(free / 1.5e9)))


@app.command(rich_help_panel="Run")
def campaign(
    campaign_file: Annotated[
        Path, typer.Option("--file", help="Campaign file: the suites in priority order.")
    ] = Path("benchmarks/campaign.toml"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    workers: Annotated[
        int | None,
        typer.Option(help="Runs at a time \\[default: from free GPU memory and CPU cores]."),
    ] = None,
    threads: Annotated[int, typer.Option(help="Torch threads per worker.")] = 1,
    time_budget: Annotated[
        float | None,
        typer.Option(
            help="Seconds: start no run whose estimate ends after this; the rest stays "
            "pending for the next campaign \\[default: no limit]."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder with MedMNIST .npz files \\[env: EQDP_DATA_DIR].")
    ] = None,
    verify_md5: Annotated[bool, typer.Option(help="Check data files' MD5.")] = True,
    dry_run: Annotated[
        bool, typer.Option(help="Only list the missing runs, their cost and the total.")
    ] = False,
) -> None:
    """Run the committed suites' missing runs in priority order, within a time budget.

    Reads the suites of the campaign file (most decisive first), lists every run that
    has no record yet, ordered by suite and then seed (seeds 0-2 of every cell before
    seeds 3-4), with its cost on this device estimated from the committed records, and
    runs them on WORKERS processes sharing the device (several runs per GPU). It resumes:
    a rerun skips what is recorded. Records land where each suite says (results/).

    [bold]eqdp campaign --dry-run --device cuda[/]   the plan and its GPU minutes
    [bold]python -m eqdp campaign --device cuda --time-budget 480[/]   on a lent GPU
    """
    if time_budget is not None and not time_budget > 0:
        raise typer.BadParameter(f"--time-budget must be > 0 seconds, got {time_budget}")
    if workers is not None and workers < 1:
        raise typer.BadParameter(f"--workers must be >= 1, got {workers}")
    if threads < 1:
        raise typer.BadParameter(f"--threads must be >= 1, got {threads}")
    guarded(lambda: _campaign(campaign_file, device, workers, threads, time_budget, data_dir,
                              verify_md5, dry_run))  # fmt: skip


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables for the workers started inside, and give back the old ones: a
    deadline left behind would make every later suite in this process defer its runs."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _campaign(
    campaign_file: Path,
    device: str,
    workers: int | None,
    threads: int,
    time_budget: float | None,
    data_dir: Path | None,
    verify_md5: bool,
    dry_run: bool,
) -> None:
    import time

    from eqdp.engine.device import planned_device_type
    from eqdp.suites.campaign import (
        COSTS_ENV,
        DEADLINE_ENV,
        campaign_suites,
        plan_campaign,
        write_costs,
    )  # fmt: skip
    from eqdp.suites.file import ExecutorSettings
    from eqdp.suites.plan import describe

    suites = campaign_suites(campaign_file)
    runs = plan_campaign(suites, device, str(data_dir) if data_dir else None,
                         verify_md5=verify_md5)  # fmt: skip
    device_type = planned_device_type(device)
    known = sum(run.seconds for run in runs if run.seconds)
    unmeasured = [run for run in runs if run.seconds is None]
    for index, run in enumerate(runs, 1):
        cost = f"{run.seconds / 60:6.1f} min" if run.seconds else "   unmeasured"
        console.print(f"[{index}/{len(runs)}] {cost}  {describe(run.config)}  ({run.suite})",
                      soft_wrap=True, highlight=False)  # fmt: skip
    console.print(
        f"{len(runs)} missing runs in {len(suites)} suites: {known / 60:.1f} {device_type}-minutes "
        f"estimated one at a time"
        + (f", {len(unmeasured)} unmeasured on {device_type}" if unmeasured else ""),
        highlight=False,
    )
    if dry_run or not runs:
        return
    if device_type == "cuda":
        from eqdp.engine.device import select_device

        select_device("cuda")  # fails clearly without a GPU, before any worker starts
    workers = workers or default_workers(device_type)
    results = Path("results")
    from eqdp.cli.progress import SuiteMonitor
    from eqdp.results.identity import run_key
    from eqdp.suites.executors import execute

    settings = ExecutorSettings(executor="local", workers=workers, threads=threads)
    pending = [run.config for run in runs]
    console.print(f"{workers} workers on {device_type}, {threads} thread(s) each", highlight=False)
    keys = {run_key(config.as_dict()) for config in pending}
    deadline = {}
    if time_budget is not None:  # read by the workers, which inherit this environment
        deadline[DEADLINE_ENV] = str(time.time() + time_budget)
        deadline[COSTS_ENV] = str(write_costs(runs, results / ".campaign").resolve())
    with _environment(deadline), SuiteMonitor(len(pending), keys) as monitor:
        execution = execute(pending, settings, results, monitor=monitor)
    left = len(pending) - len(execution.ran) - len(execution.failed)
    console.print(
        f"{len(execution.ran)} recorded, {len(execution.failed)} failed, "
        f"{left} left for the next campaign (time budget, or run elsewhere)",
        highlight=False,
    )
    if execution.failed:
        for failure in execution.failed:
            errors.print(f"[red]failed[/] {failure}", soft_wrap=True, highlight=False)
        raise typer.Exit(code=1)
