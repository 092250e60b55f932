"""eqdp run and eqdp suite: configurations in, records out, with progress."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from eqdp.benchmarks import BENCHMARKS, RunConfig, run_benchmark
from eqdp.cli.common import app, console, errors, guarded
from eqdp.cli.options import (
    DataDir,
    Device,
    ResultsDir,
    VerifyMd5,
    dp_option,
    parse_list,
    parse_number,
    robustness_option,
)
from eqdp.data import AUGMENTATIONS
from eqdp.errors import unknown_choice
from eqdp.models import MODELS
from eqdp.results import load_records
from eqdp.train import DEVICES, EpochStats, StageProgress, TrainConfig


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
