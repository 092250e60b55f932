"""eqdp list and eqdp info: what models, benchmarks, attacks and datasets there are."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from eqdp.cli.common import app, console, guarded
from eqdp.errors import EqdpError, unknown_choice

LIST_WHATS = ("models", "benchmarks", "datasets", "attacks")


@app.command("list", rich_help_panel="Catalogue")
def list_(
    what: Annotated[
        str, typer.Argument(help="models, benchmarks, datasets or attacks.")
    ] = "models",
) -> None:
    """List registered models (params, MACs, group), benchmarks, datasets or attacks.

    Models are built to count their parameters and MACs, which loads torch; the
    other lists do not.
    """

    def body() -> None:
        if what not in LIST_WHATS:
            raise unknown_choice("list", what, LIST_WHATS)
        table = Table(title=f"eqdp {what}")
        {"models": _models, "benchmarks": _benchmarks, "datasets": _datasets,
         "attacks": _attacks}[what](table)  # fmt: skip
        console.print(table)

    guarded(body)


def _models(table: Table) -> None:
    from eqdp.models import MODELS, describe_model, list_models
    from eqdp.results.leaderboard import human_count

    for column in ("model", "family", "group", "params", "MACs (1x28x28)", "description"):
        table.add_column(column)
    aliases = {target: alias for alias, target in MODELS.aliases().items()}
    for name in list_models():
        spec = MODELS.get(name)
        description = spec.description
        if name in aliases:
            description = f"(also: {aliases[name]}) {description}"
        try:
            info = describe_model(name)
        except EqdpError:  # a model that needs an option (arch-spec: its spec) to exist
            table.add_row(name, spec.family, "-", "-", "-", description)
            continue
        table.add_row(
            name,
            spec.family,
            info.group or "-",
            human_count(info.params),
            human_count(info.macs),
            description,
        )


def _benchmarks(table: Table) -> None:
    from eqdp.benchmarks import BENCHMARKS
    from eqdp.config.fields import option_specs

    for column in ("benchmark", "options", "description"):
        table.add_column(column)
    for name in BENCHMARKS.names():
        benchmark = BENCHMARKS.get(name)
        options = ", ".join(spec.name for spec in option_specs(benchmark.options)) or "-"
        table.add_row(name, options, benchmark.description)


def _datasets(table: Table) -> None:
    from eqdp.data.catalog import FLAGS_2D, SIZES, dataset_info

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


def _attacks(table: Table) -> None:
    from eqdp.attacks import ATTACKS, DEFAULT_EPS

    for column in ("attack", "norm", "default budgets", "in default set", "description"):
        table.add_column(column)
    names = ATTACKS.names_in_order()
    for name in sorted(names, key=lambda n: (not ATTACKS.get(n).default, names.index(n))):
        attack = ATTACKS.get(name)
        budgets = ", ".join(f"{eps:.3g}" for eps in DEFAULT_EPS[attack.norm])
        table.add_row(name, attack.norm, budgets, "yes" if attack.default else "no",
                      attack.description)  # fmt: skip


@app.command(rich_help_panel="Catalogue")
def info(
    model: Annotated[str, typer.Argument(help="Model name.")],
    dataset: Annotated[
        str | None, typer.Option(help="Size the input and head for this dataset.")
    ] = None,
    size: Annotated[int, typer.Option(help="Image size.")] = 28,
) -> None:
    """Parameters, MACs, symmetry group, input size and options of a model."""

    def body() -> None:
        from eqdp.data.catalog import FLAGS_2D, SIZES, dataset_info
        from eqdp.models import describe_model, model_spec

        spec = model_spec(model)
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
        table.add_row("family", spec.family)
        table.add_row("symmetry group", described.group or "none (translations only)")
        table.add_row("parameters", f"{described.params:,}")
        table.add_row("MACs / image", f"{described.macs:,}")
        table.add_row("input", "x".join(str(d) for d in described.input_shape))
        table.add_row("classes", str(classes))
        table.add_row("DP-SGD", spec.dp_refusal or "supported")
        options = spec.option_defaults()
        table.add_row(
            "options (-k KEY=VALUE)",
            ", ".join(f"{k}={v}" for k, v in options.items()) or "none",
        )
        console.print(table)

    guarded(body)
