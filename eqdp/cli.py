"""The ``eqdp`` command line: a thin Typer layer over the Python API."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eqdp.benchmarks import BENCHMARKS, RunConfig, list_benchmarks, run_benchmark
from eqdp.cli_options import (
    DataDir,
    Device,
    ResultsDir,
    VerifyMd5,
    dp_option,
    parse_list,
    parse_number,
    robustness_option,
)
from eqdp.data import AUGMENTATIONS, FLAGS_2D, SIZES, dataset_info
from eqdp.errors import EqdpError, unknown_choice
from eqdp.models import MODELS, describe_model, list_models
from eqdp.results import FORMATS, aggregate, filter_records, load_records
from eqdp.results import leaderboard as board
from eqdp.runtime import apply_environment
from eqdp.train import DEVICES, EpochStats, StageProgress, TrainConfig

app = typer.Typer(
    name="eqdp",
    help="Benchmarks for equivariant CNNs on MedMNIST: standard, DP-SGD, low-data, robustness.\n\n"
    "Examples:\n\n"
    "  eqdp run standard --model eq-nasnet --dataset breastmnist --epochs 10\n\n"
    "  eqdp leaderboard --benchmark standard --dataset breastmnist\n\n"
    "  eqdp list models",
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Piped output (files, CI logs) gets wide tables instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(width=_WIDTH)
errors = Console(stderr=True, width=_WIDTH)

LIST_WHATS = ("models", "benchmarks", "datasets")


def fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def guarded(function: Callable[[], None]) -> None:
    """Run a command body; EqdpError becomes a one-line error and exit code 2."""
    try:
        function()
    except EqdpError as error:
        raise fail(str(error)) from None


@app.command()
def run(
    benchmark: Annotated[str, typer.Argument(help="Benchmark: see `eqdp list benchmarks`.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model: see `eqdp list models`.")],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="MedMNIST flag.")],
    size: Annotated[int, typer.Option(help="Image size: 28, 64, 128 or 224.")] = 28,
    epochs: Annotated[int, typer.Option(help="Training epochs (MedMNIST v2: 100).")] = 100,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    seed: Annotated[str, typer.Option(help="Seed or comma list: one record per seed.")] = "0",
    augment: Annotated[str, typer.Option(help="Training augmentation: none or d4.")] = "none",
    device: Device = "auto",
    data_dir: DataDir = None,
    results_dir: ResultsDir = None,
    verify_md5: VerifyMd5 = True,
    epsilon: Annotated[
        str | None,
        dp_option(
            "Target epsilon(s), comma list; 'inf' = same pipeline, no noise or "
            "clipping. One record per (epsilon, seed)."
        ),
    ] = None,
    delta: Annotated[
        float | None,
        dp_option("Target delta \\[default: min(1e-5, 1/(10 N_train))]."),
    ] = None,
    max_grad_norm: Annotated[
        float | None,
        dp_option("Per-sample clipping bound C \\[default: 1.0]."),
    ] = None,
    physical_batch_size: Annotated[
        int | None,
        dp_option(
            "Examples per forward/backward pass; the logical batch (--batch-size) "
            "is Poisson-sampled \\[default: min(batch size, 128)]."
        ),
    ] = None,
    noise_multiplier: Annotated[
        float | None,
        dp_option("Fix sigma instead of calibrating it to --epsilon."),
    ] = None,
    aug_mult: Annotated[
        int | None,
        dp_option(
            "Augmentation multiplicity K: average per-sample gradients over K "
            "random D4 views before clipping \\[default: 1]."
        ),
    ] = None,
    accountant: Annotated[
        str | None,
        dp_option("Privacy accountant: prv or rdp \\[default: prv]."),
    ] = None,
    fraction: Annotated[
        str | None,
        robustness_option(
            "Training fraction(s) in (0, 1], comma list; one record per (fraction, seed)."
        ),
    ] = None,
    attack: Annotated[
        str | None,
        robustness_option(
            "Attacks, comma list: fgsm, pgd-linf, pgd-l2, autoattack (APGD + Square via ART; "
            "slow) \\[default: fgsm, pgd-linf, pgd-l2]."
        ),
    ] = None,
    eps: Annotated[
        str | None,
        robustness_option(
            "Attack budgets in [0,1] pixel space, comma list; fractions like 8/255 allowed."
        ),
    ] = None,
    from_run: Annotated[
        str | None,
        robustness_option("Evaluate the checkpoint of this finished run instead of training."),
    ] = None,
) -> None:
    """Train and evaluate one model on one dataset; write one result record per run.

    Examples:

    [bold]eqdp run standard -m eq-nasnet -d breastmnist --epochs 10 --seed 0,1,2[/]

    [bold]eqdp run dp -m eq-nasnet -d pneumoniamnist --epsilon 1,2,4,8 --batch-size 512[/]
    """

    def body() -> None:
        BENCHMARKS.get(benchmark)
        MODELS.get(model)
        if augment not in AUGMENTATIONS:
            raise unknown_choice("augmentation", augment, AUGMENTATIONS)
        if device not in DEVICES:
            raise unknown_choice("device", device, DEVICES)
        seeds = parse_list(seed, "seed", int)
        train = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, augment=augment)
        fixed = {
            "delta": delta,
            "max_grad_norm": max_grad_norm,
            "physical_batch_size": physical_batch_size,
            "noise_multiplier": noise_multiplier,
            "aug_mult": aug_mult,
            "accountant": accountant,
            "attacks": parse_list(attack, "attack", str) if attack else None,
            "attack_eps": parse_list(eps, "attack eps", parse_number) if eps else None,
            "from_run": from_run,
        }
        sweeps = {
            "epsilon": parse_list(epsilon, "epsilon", parse_number) if epsilon else [None],
            "fraction": parse_list(fraction, "fraction", parse_number) if fraction else [None],
        }
        configs = []
        for target_epsilon, train_fraction, s in itertools.product(
            sweeps["epsilon"], sweeps["fraction"], seeds
        ):
            options = {"epsilon": target_epsilon, "fraction": train_fraction, **fixed}
            configs.append(
                RunConfig(
                    benchmark=benchmark,
                    model=model,
                    dataset=dataset,
                    size=size,
                    seed=s,
                    train=train,
                    device=device,
                    data_dir=str(data_dir) if data_dir else None,
                    verify_md5=verify_md5,
                    options={k: v for k, v in options.items() if v is not None},
                    results_dir=str(results_dir) if results_dir else None,
                )
            )
        # Validate every configuration before the first run starts: a bad value in
        # a sweep must not leave the earlier runs' records behind.
        for config in configs:
            BENCHMARKS.get(benchmark).check(config)
        for config in configs:
            _run_with_progress(config, results_dir)

    guarded(body)


def _run_with_progress(config: RunConfig, results_dir: Path | None) -> None:
    label = f"{config.benchmark} {config.model} {config.dataset} seed {config.seed}"
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, disable=not errors.is_terminal) as progress:
        task = progress.add_task(label, total=config.train.epochs, status="loading")

        def on_progress(update: EpochStats | StageProgress) -> None:
            if isinstance(update, StageProgress):
                status = update.status
                progress.update(
                    task,
                    completed=update.done,
                    total=update.total,
                    status=status,
                    description=f"{label} {update.stage}",
                )
                line = f"{label}: {update.stage} {update.done}/{update.total} {status}"
            else:
                status = f"loss {update.train_loss:.4f}  val AUC {update.val_auc:.3f}"
                progress.update(task, advance=1, total=update.epochs, status=status)
                line = f"{label}: epoch {update.epoch}/{update.epochs} {status}"
            if not errors.is_terminal:
                errors.print(line, soft_wrap=True)

        record, path = run_benchmark(config, results_dir, on_progress)
    test = record["metrics"]["test"]
    console.print(
        f"[green]done[/] {label}: test AUC {test['auc']:.3f} ACC {test['acc']:.3f} "
        f"(best epoch {record['best_epoch']}) -> {path}",
        soft_wrap=True,
    )


@app.command()
def suite(
    file: Annotated[
        Path, typer.Argument(help="Suite TOML file, e.g. benchmarks/standard-cpu.toml.")
    ],
    device: Device = "auto",
    data_dir: DataDir = None,
    results_dir: ResultsDir = None,
    dry_run: Annotated[bool, typer.Option(help="Only list what would run.")] = False,
    verify_md5: VerifyMd5 = True,
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
    """Run every configuration of a declarative suite; runs already recorded are skipped.

    --dataset/--model/--seed split a suite into parts that separate processes can run.

    Example: [bold]eqdp suite benchmarks/standard-cpu.toml --dry-run[/]
    """

    def body() -> None:
        from eqdp.benchmarks.suite import is_finished, load_suite, only_those, suite_configs

        suite_file = load_suite(file)
        data = str(data_dir) if data_dir else None
        configs = list(suite_configs(suite_file, data, device, results_dir, verify_md5))
        filters = {"dataset": only_dataset, "model": only_model, "seed": only_seed}
        for field, wanted in filters.items():
            if wanted:
                configs = only_those(configs, field, wanted)
        done = load_records(results_dir, on_skip=None)
        pending = [c for c in configs if not is_finished(c, done)]
        # As in `run`: a bad configuration must fail before the first run writes anything.
        for config in pending:
            BENCHMARKS.get(config.benchmark).check(config)
        console.print(
            f"{file}: {len(configs)} runs, {len(configs) - len(pending)} already recorded"
        )
        for index, config in enumerate(pending, 1):
            extra = " ".join(f"{k}={v}" for k, v in config.options.items())
            console.print(
                f"[{index}/{len(pending)}] {config.model} {config.dataset} seed {config.seed}"
                + (f" {extra}" if extra else ""),
                soft_wrap=True,
            )
            if not dry_run:
                _run_with_progress(config, results_dir)

    guarded(body)


@app.command("list")
def list_(
    what: Annotated[str, typer.Argument(help="models, benchmarks or datasets.")] = "models",
) -> None:
    """List registered models (params, MACs, group), benchmarks or datasets."""

    def body() -> None:
        if what not in LIST_WHATS:
            raise unknown_choice("list", what, LIST_WHATS)
        table = Table(title=f"eqdp {what}")
        if what == "models":
            for column in ("model", "family", "group", "params", "MACs (1x28x28)", "description"):
                table.add_column(column)
            for name in list_models():
                spec, info = MODELS.get(name), describe_model(name)
                table.add_row(
                    name,
                    spec.family,
                    info.group or "-",
                    board.human_count(info.params),
                    board.human_count(info.macs),
                    spec.description,
                )
        elif what == "benchmarks":
            table.add_column("benchmark")
            table.add_column("description")
            for name in list_benchmarks():
                table.add_row(name, BENCHMARKS.get(name).description)
        else:
            for column in ("dataset", "task", "channels", "classes", "train/val/test", "sizes"):
                table.add_column(column)
            for flag in FLAGS_2D:
                info = dataset_info(flag)
                counts = info["n_samples"]
                table.add_row(
                    flag,
                    info["task"],
                    str(info["n_channels"]),
                    str(len(info["label"])),
                    f"{counts['train']}/{counts['val']}/{counts['test']}",
                    ",".join(str(s) for s in SIZES),
                )
        console.print(table)

    guarded(body)


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="Model name.")],
    dataset: Annotated[
        str | None, typer.Option(help="Size the input and head for this dataset.")
    ] = None,
    size: Annotated[int, typer.Option(help="Image size.")] = 28,
) -> None:
    """Parameters, MACs, symmetry group and input size of a model."""

    def body() -> None:
        MODELS.get(model)
        channels, classes = 1, 2
        if dataset is not None:
            if dataset not in FLAGS_2D:
                raise unknown_choice("dataset", dataset, FLAGS_2D)
            channels, classes = (
                dataset_info(dataset)["n_channels"],
                len(dataset_info(dataset)["label"]),
            )
        if size not in SIZES:
            raise unknown_choice("size", size, SIZES)
        described = describe_model(model, channels, classes, size)
        table = Table(title=f"{model}" + (f" on {dataset}" if dataset else ""), show_header=False)
        table.add_row("family", MODELS.get(model).family)
        table.add_row("symmetry group", described.group or "none (translations only)")
        table.add_row("parameters", f"{described.params:,}")
        table.add_row("MACs / image", f"{described.macs:,}")
        table.add_row("input", "x".join(str(d) for d in described.input_shape))
        table.add_row("classes", str(classes))
        table.add_row("DP-SGD", MODELS.get(model).dp_refusal or "supported")
        console.print(table)

    guarded(body)


@app.command()
def leaderboard(
    benchmark: Annotated[str | None, typer.Option(help="Only this benchmark.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    size: Annotated[int | None, typer.Option(help="Only this image size.")] = None,
    results_dir: ResultsDir = None,
    format: Annotated[str, typer.Option(help="table, markdown, csv or json.")] = "table",
) -> None:
    """Mean ± std over seeds of test AUC/ACC per (benchmark, dataset, model, setting)."""

    def body() -> None:
        if format not in FORMATS:
            raise unknown_choice("format", format, FORMATS)

        def report_skip(path: Path, reason: str) -> None:
            errors.print(f"[yellow]skipping[/] {path}: {reason}", highlight=False)

        records = load_records(results_dir, on_skip=report_skip)
        chosen = filter_records(
            records, benchmark=benchmark, dataset=dataset, model=model, size=size
        )
        rows = aggregate(chosen)
        if format == "markdown":
            sys.stdout.write(board.to_markdown(rows))
        elif format == "csv":
            sys.stdout.write(board.to_csv(rows))
        elif format == "json":
            sys.stdout.write(board.to_json(rows))
        else:
            table = Table(title=f"eqdp leaderboard ({len(chosen)} records)")
            header, cells = board.display_table(rows)
            for column in header:
                table.add_column(column)
            for line in cells:
                table.add_row(*line)
            console.print(table)

    guarded(body)


@app.command()
def readme(
    file: Annotated[Path, typer.Argument(help="Markdown file with eqdp:table blocks.")] = Path(
        "README.md"
    ),
    results_dir: ResultsDir = None,
    check: Annotated[bool, typer.Option(help="Fail if the tables are out of date.")] = False,
) -> None:
    """Regenerate the result tables in README.md from the records in results/."""

    def body() -> None:
        from eqdp.report.readme import update_readme

        if not file.is_file():
            raise EqdpError(f"{file} is not a file")
        fresh = update_readme(file, results_dir, check=check)
        if check and not fresh:
            raise EqdpError(f"result tables in {file} are out of date; run `eqdp readme {file}`")
        console.print(f"{file}: result tables {'up to date' if fresh else 'regenerated'}")

    guarded(body)


@app.command()
def plot(
    kind: Annotated[str, typer.Argument(help="low-data, adversarial, geometric or dp.")],
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output file (.png, .svg or .pdf) \\[default: KIND.png].")
    ] = None,
    metric: Annotated[str, typer.Option(help="acc or auc.")] = "acc",
    results_dir: ResultsDir = None,
) -> None:
    """Plot test ACC/AUC vs fraction, attack eps, rotation angle or epsilon from the records.

    Example: [bold]eqdp plot low-data --dataset breastmnist --out low-data.svg[/]
    """

    def body() -> None:
        from eqdp.report.plots import PLOT_KINDS, plot_records

        if kind not in PLOT_KINDS:
            raise unknown_choice("plot", kind, PLOT_KINDS)
        if dataset is not None and dataset not in FLAGS_2D:
            raise unknown_choice("dataset", dataset, FLAGS_2D)
        target = out or Path(f"{kind}{'-' + dataset if dataset else ''}.png")
        records = load_records(results_dir, on_skip=None)
        path = plot_records(kind, records, target, metric=metric, dataset=dataset)
        console.print(f"wrote {path}")

    guarded(body)


def main() -> None:
    apply_environment()  # EQDP_KEEP_FREED_MEMORY: see eqdp/runtime.py
    app()


if __name__ == "__main__":
    main()
