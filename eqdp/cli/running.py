"""eqdp run BENCHMARK: configurations in, records out, with progress.

``eqdp run`` has one subcommand per registered benchmark, whose options are
generated from the benchmark's typed options and the training recipe, so
``eqdp run dp --help`` documents exactly what the DP benchmark takes.
"""

from __future__ import annotations

import inspect
import itertools
from pathlib import Path
from typing import Any

import typer

from eqdp.benchmarks import BENCHMARKS
from eqdp.benchmarks.registry import Benchmark
from eqdp.cli.common import app, errors, guarded
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
    from eqdp.benchmarks.precheck import precheck

    # Bad input is told before the seconds that importing torch and the models take.
    requested = configurations(benchmark, given)
    for config in requested:
        precheck(config)

    from eqdp.benchmarks.execute import check_ready, resolve_config, run_benchmark
    from eqdp.cli.progress import RunBar, done_line, run_progress
    from eqdp.engine.device import select_device
    from eqdp.results.identity import run_key
    from eqdp.results.records import results_dir
    from eqdp.suites.claims import holder, try_claim
    from eqdp.suites.plan import describe

    # Every configuration is resolved (checked) before the first one runs: a bad value in
    # a sweep must not leave the earlier runs' records behind.
    configs = [resolve_config(config) for config in requested]
    keys = [run_key(config.as_dict()) for config in configs]
    if len(set(keys)) < len(keys):
        raise EqdpError(
            "two of the requested runs are the same configuration (with --from-run the seed "
            "is the source run's: give one --seed)"
        )
    for config in configs:
        check_ready(config)
        select_device(config.device)  # runs here: the device must be here too
    for config, key in zip(configs, keys, strict=True):
        results = results_dir(config.results_dir)
        label = describe(config)
        new_folder = not results.exists()
        claim = try_claim(results, key, label)
        if claim is None:
            info = holder(results / ".claims" / f"{key}.claim") or {}
            raise EqdpError(
                f"{label} is being run right now by pid {info.get('pid')} on {info.get('host')} "
                f"(claim {results}/.claims/{key}.claim)"
            )
        try:
            with claim, run_progress() as progress:
                bar = RunBar(progress, label, config.train.epochs)
                try:
                    record, path = run_benchmark(config, on_progress=bar)
                finally:
                    bar.close()
        except BaseException as error:
            if new_folder:  # a failed or interrupted first run leaves no empty folder behind
                _remove_empty_tree(results)
            if isinstance(error, KeyboardInterrupt):
                errors.print(f"interrupted: {label} stopped, no record written", highlight=False)
                raise typer.Exit(code=130) from None
            raise
        done_line(label, record, path)


def _remove_empty_tree(folder: Path) -> None:
    """Remove ``folder`` and the folders under it, if no file is anywhere in it."""
    if not folder.is_dir() or any(p.is_file() for p in folder.rglob("*")):
        return
    for sub in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        sub.rmdir()
    folder.rmdir()


for _name in BENCHMARKS.names_in_order():
    _register(BENCHMARKS.get(_name))


__all__ = ["configurations", "run_app"]
