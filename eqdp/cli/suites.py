"""eqdp suite: every pending configuration of a suite file, on inline, local or Slurm workers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from eqdp.cli.common import app, console, errors, guarded
from eqdp.config.fields import parse_config


@app.command(rich_help_panel="Run")
def suite(
    file: Annotated[
        Path, typer.Argument(help="Suite TOML file, e.g. benchmarks/standard-cpu.toml.")
    ],
    executor: Annotated[
        str | None,
        typer.Option(
            help="local (worker processes here), slurm (array jobs) or inline (this process) "
            "\\[default: the suite's, else local]."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Workers sharing the plan \\[default: local 1; slurm one per run]."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="Torch threads per worker \\[default: cores / workers].")
    ] = None,
    partition: Annotated[str | None, typer.Option(help="Slurm partition.")] = None,
    time_min: Annotated[int | None, typer.Option(help="Time limit per worker, minutes.")] = None,
    gpus: Annotated[int | None, typer.Option(help="GPUs per Slurm task.")] = None,
    cpus: Annotated[int | None, typer.Option(help="CPUs per Slurm task.")] = None,
    mem_gb: Annotated[float | None, typer.Option(help="Memory per Slurm task, GB.")] = None,
    wait: Annotated[
        bool, typer.Option(help="Wait for the workers and show progress (slurm: or return).")
    ] = True,
    dry_run: Annotated[bool, typer.Option(help="Only list what would run.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder with MedMNIST .npz files \\[env: EQDP_DATA_DIR].")
    ] = None,
    results_dir: Annotated[
        Path | None,
        typer.Option(help="Records folder \\[default: the suite's results_dir, else ./runs]."),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None, typer.Option(help="Checkpoints folder \\[default: in the records folder].")
    ] = None,
    verify_md5: Annotated[bool, typer.Option(help="Check data files' MD5.")] = True,
    only_dataset: Annotated[
        str | None, typer.Option("--dataset", help="Run only these datasets (comma list).")
    ] = None,
    only_model: Annotated[
        str | None, typer.Option("--model", help="Run only these models (comma list).")
    ] = None,
    only_seed: Annotated[
        str | None, typer.Option("--seed", help="Run only these seeds (comma list).")
    ] = None,
) -> None:
    """Run every configuration of a suite that has no record yet, on local or Slurm workers.

    Workers claim each configuration with a lock file next to the records, so any
    number of `eqdp suite` drivers and workers share a suite without running a
    configuration twice, and a rerun resumes where the records stop.

    Examples: [bold]eqdp suite benchmarks/standard-cpu.toml --dry-run[/]

    [bold]eqdp suite sweep.toml --workers 2 --threads 1[/]

    [bold]eqdp suite sweep.toml --executor slurm --partition gpu --gpus 1 --time-min 120[/]
    """
    overrides = {
        "executor": executor,
        "workers": workers,
        "threads": threads,
        "partition": partition,
        "time_min": time_min,
        "gpus": gpus,
        "cpus": cpus,
        "mem_gb": mem_gb,
    }

    def body() -> None:
        _suite(
            file,
            overrides,
            wait,
            dry_run,
            device,
            data_dir,
            results_dir,
            checkpoint_dir,
            verify_md5,
            {"dataset": only_dataset, "model": only_model, "seed": only_seed},
        )

    guarded(body)


def _suite(
    file: Path,
    overrides: dict[str, Any],
    wait: bool,
    dry_run: bool,
    device: str,
    data_dir: Path | None,
    results_dir: Path | None,
    checkpoint_dir: Path | None,
    verify_md5: bool,
    filters: dict[str, str | None],
) -> None:
    import dataclasses

    from eqdp.results.identity import run_key
    from eqdp.suites import load_suite, plan_suite
    from eqdp.suites.executors import execute
    from eqdp.suites.file import ExecutorSettings
    from eqdp.suites.plan import describe

    suite_file = load_suite(file)
    settings = dataclasses.asdict(suite_file.executor)
    settings |= {k: v for k, v in overrides.items() if v is not None}
    settings = parse_config(ExecutorSettings, settings, "executor")
    if settings.executor == "slurm" and settings.gpus and device == "auto":
        device = "cuda"  # GPU jobs: plan for the device they will have, not this machine's
    plan = plan_suite(
        suite_file,
        data_dir=str(data_dir) if data_dir else None,
        device=device,
        results_dir=str(results_dir) if results_dir else None,
        checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None,
        verify_md5=verify_md5,
        filters=filters,
    )
    results = plan.results_dirs[0] if plan.configs else Path(".")
    console.print(
        f"{file}: {len(plan.configs)} runs, {len(plan.finished)} already recorded, "
        f"{len(plan.pending)} to run -> {results}",
        highlight=False,
    )
    if dry_run or not plan.pending:
        for index, config in enumerate(plan.pending, 1):
            console.print(f"[{index}/{len(plan.pending)}] {describe(config)}", soft_wrap=True)
        return
    if settings.executor == "inline":
        execution = _inline(plan.pending, settings)
    else:
        from eqdp.cli.progress import SuiteMonitor

        keys = {run_key(config.as_dict()) for config in plan.pending}
        try:
            with SuiteMonitor(len(plan.pending), keys) as monitor:
                execution = execute(plan.pending, settings, results, wait=wait, monitor=monitor)
        except KeyboardInterrupt:  # the workers are cancelled and their claims given back
            errors.print(
                f"interrupted: workers stopped, claims given back; `eqdp suite {file}` "
                "resumes with what is not recorded",
                highlight=False, soft_wrap=True,
            )  # fmt: skip
            raise typer.Exit(code=130) from None
    if execution.job_ids:
        console.print(
            f"{execution.executor}: {execution.workers} worker(s), job(s) "
            f"{', '.join(execution.job_ids)}; logs in {results}/.submitit",
            highlight=False,
        )
    if not execution.waited:
        console.print("not waiting: `eqdp suite` again shows what is recorded and resumes")
        return
    elsewhere = len(plan.pending) - len(execution.ran) - len(execution.failed)
    console.print(
        f"{len(execution.ran)} recorded, {len(execution.failed)} failed, {elsewhere} run by "
        "another driver or worker",
        highlight=False,
    )
    if execution.failed:
        for failure in execution.failed:
            errors.print(f"[red]failed[/] {failure}", soft_wrap=True, highlight=False)
        raise typer.Exit(code=1)


def _inline(pending: list, settings: Any):
    from eqdp.cli.progress import RunBar, done_line, run_progress
    from eqdp.suites.executors import execute
    from eqdp.suites.plan import describe

    state: dict[str, Any] = {}

    def observer(config, update) -> None:
        if update is None:
            state["progress"] = run_progress().__enter__()
            state["bar"] = RunBar(state["progress"], describe(config), config.train.epochs)
        elif isinstance(update, tuple):
            state["bar"].close()
            state.pop("progress").__exit__(None, None, None)
            done_line(describe(config), *update)
        else:
            state["bar"](update)

    try:
        return execute(pending, settings, Path("."), observer=observer)
    finally:
        if state.get("progress") is not None:
            state["bar"].close()
            state["progress"].__exit__(None, None, None)
