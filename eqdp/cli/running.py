"""eqdp run BENCHMARK and eqdp suite: configurations in, records out, with progress.

``eqdp run`` has one subcommand per registered benchmark, whose options are
generated from the benchmark's typed options and the training recipe, so
``eqdp run dp --help`` documents exactly what the DP benchmark takes.
"""

from __future__ import annotations

import inspect
import itertools
from pathlib import Path
from typing import Annotated, Any

import typer

from eqdp.benchmarks import BENCHMARKS
from eqdp.benchmarks.registry import Benchmark
from eqdp.cli.common import app, console, errors, fail, guarded
from eqdp.cli.options import (
    TRAIN_PANEL,
    WHERE_PANEL,
    cli_value,
    parameters_for,
    parse_model_args,
    values_from,
)
from eqdp.config.fields import option_specs, parse_config
from eqdp.config.train import TrainConfig
from eqdp.errors import EqdpError

run_app = typer.Typer(
    name="run",
    help="Train and evaluate one model on one dataset; one record per (seed, swept value).\n\n"
    "Examples:\n\n"
    "  eqdp run standard -m eq-nasnet -d breastmnist --epochs 10 --seed 0,1,2\n\n"
    "  eqdp run dp -m eq-nasnet -d pneumoniamnist --epsilon 1,8,inf --epochs 5 "
    "--batch-size 256\n\n"
    "Records go to ./runs (--results-dir, EQDP_RESULTS_DIR), never to the committed "
    "./results unless asked.",
    rich_markup_mode="rich",
    no_args_is_help=True,
)
app.add_typer(run_app, name="run", rich_help_panel="Run")

TRAIN_PREFIX = "train__"
OPTION_PREFIX = "option__"


def _common_parameters() -> list[inspect.Parameter]:
    def keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
        )

    where = {"rich_help_panel": WHERE_PANEL}
    return [
        keyword(
            "model",
            str,
            typer.Option(..., "--model", "-m", help="Model: see `eqdp list models`."),
        ),
        keyword("dataset", str, typer.Option(..., "--dataset", "-d", help="MedMNIST 2D flag.")),
        keyword(
            "model_arg",
            list[str] | None,
            typer.Option(
                None,
                "--model-arg",
                "-k",
                help="Model option KEY=VALUE, repeatable (e.g. -k width_multiplier=2); "
                "`eqdp info MODEL` lists them.",
                metavar="KEY=VALUE",
            ),
        ),
        keyword("size", str, typer.Option("28", help="Image size: 28, 64, 128 or 224.")),
        keyword("seed", str, typer.Option("0", help="Seed or comma list: one record per seed.")),
        keyword("device", str, typer.Option("auto", help="auto, cpu or cuda.", **where)),
        keyword(
            "data_dir",
            Path | None,
            typer.Option(
                None, help="Folder with MedMNIST .npz files \\[env: EQDP_DATA_DIR].", **where
            ),
        ),
        keyword(
            "results_dir",
            Path | None,
            typer.Option(
                None,
                help="Records folder \\[env: EQDP_RESULTS_DIR; default ./runs].",
                **where,
            ),
        ),
        keyword(
            "checkpoint_dir",
            Path | None,
            typer.Option(
                None,
                help="Checkpoints folder \\[env: EQDP_CHECKPOINT_DIR; default: checkpoints/ "
                "in the records folder].",
                **where,
            ),
        ),
        keyword(
            "verify_md5",
            bool,
            typer.Option(True, help="Check the data file's MD5 against medmnist.INFO.", **where),
        ),
    ]


def _register(benchmark: Benchmark) -> None:
    option_list = option_specs(benchmark.options)
    parameters = _common_parameters()
    parameters += parameters_for(option_specs(TrainConfig), TRAIN_PANEL, TRAIN_PREFIX)
    parameters += parameters_for(option_list, f"{benchmark.name} options", OPTION_PREFIX)

    def command(**given: Any) -> None:
        guarded(lambda: _run(benchmark, given))

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__name__ = f"run_{benchmark.name.replace('-', '_')}"
    command.__doc__ = f"{benchmark.description[0].upper()}{benchmark.description[1:]}."
    run_app.command(benchmark.name)(command)


def configurations(benchmark: Benchmark, given: dict[str, Any]) -> list:
    """Every configuration the command line asks for: seeds x swept option values."""
    from eqdp.cli.options import parse_list
    from eqdp.config.run import RunConfig

    train_fixed, train_swept = values_from(option_specs(TrainConfig), given, TRAIN_PREFIX)
    option_fixed, option_swept = values_from(option_specs(benchmark.options), given, OPTION_PREFIX)
    seeds = parse_list(given["seed"], "seed", int)
    if len(set(seeds)) != len(seeds):
        raise EqdpError(f"--seed {given['seed']!r} repeats a seed")
    train = parse_config(TrainConfig, train_fixed, "training option")
    swept = {**{("options", k): v for k, v in option_swept.items()}}
    swept |= {("train", k): v for k, v in train_swept.items()}
    configs = []
    for combination in itertools.product(*swept.values(), seeds):
        *values, seed = combination
        options = dict(option_fixed)
        train_values = {}
        for (section, name), value in zip(swept, values, strict=True):
            (options if section == "options" else train_values)[name] = value
        configs.append(
            parse_config(
                RunConfig,
                {
                    "benchmark": benchmark.name,
                    "model": given["model"],
                    "dataset": given["dataset"],
                    "size": cli_value(given["size"]),
                    "seed": seed,
                    "train": parse_config(
                        TrainConfig,
                        {**train_fixed, **train_values} if train_values else train_fixed,
                        "training option",
                    )
                    if train_values
                    else train,
                    "device": given["device"],
                    "data_dir": str(given["data_dir"]) if given["data_dir"] else None,
                    "verify_md5": given["verify_md5"],
                    "model_kwargs": parse_model_args(given["model_arg"]),
                    "options": options,
                    "results_dir": str(given["results_dir"]) if given["results_dir"] else None,
                    "checkpoint_dir": str(given["checkpoint_dir"])
                    if given["checkpoint_dir"]
                    else None,
                },
                "",
            )
        )
    return configs


def _run(benchmark: Benchmark, given: dict[str, Any]) -> None:
    from eqdp.benchmarks.execute import check_ready, resolve_config, run_benchmark
    from eqdp.cli.progress import RunBar, done_line, run_progress
    from eqdp.results.identity import run_key
    from eqdp.results.records import results_dir
    from eqdp.suites.claims import holder, try_claim
    from eqdp.suites.plan import describe

    # Every configuration is resolved (checked) before the first one runs: a bad value in
    # a sweep must not leave the earlier runs' records behind.
    configs = [resolve_config(config) for config in configurations(benchmark, given)]
    keys = [run_key(config.as_dict()) for config in configs]
    if len(set(keys)) < len(keys):
        raise EqdpError(
            "two of the requested runs are the same configuration (with --from-run the seed "
            "is the source run's: give one --seed)"
        )
    for config in configs:
        check_ready(config)
    for config, key in zip(configs, keys, strict=True):
        results = results_dir(config.results_dir)
        label = describe(config)
        claim = try_claim(results, key, label)
        if claim is None:
            info = holder(results / ".claims" / f"{key}.claim") or {}
            raise EqdpError(
                f"{label} is being run right now by pid {info.get('pid')} on {info.get('host')} "
                f"(claim {results}/.claims/{key}.claim)"
            )
        with claim, run_progress() as progress:
            bar = RunBar(progress, label, config.train.epochs)
            record, path = run_benchmark(config, on_progress=bar)
        done_line(label, record, path)


for _name in BENCHMARKS.names_in_order():
    _register(BENCHMARKS.get(_name))


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
        with SuiteMonitor(len(plan.pending), keys) as monitor:
            execution = execute(plan.pending, settings, results, wait=wait, monitor=monitor)
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
            state.pop("progress").__exit__(None, None, None)
            done_line(describe(config), *update)
        else:
            state["bar"](update)

    try:
        return execute(pending, settings, Path("."), observer=observer)
    finally:
        if state.get("progress") is not None:
            state["progress"].__exit__(None, None, None)


__all__ = ["configurations", "fail", "run_app", "suite"]
