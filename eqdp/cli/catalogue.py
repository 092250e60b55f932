"""eqdp list and eqdp info: what models, benchmarks, attacks and datasets there are."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from eqdp.cli.common import app, console, guarded
from eqdp.cli.tables import print_fitted
from eqdp.errors import unknown_choice

LIST_WHATS = ("models", "benchmarks", "datasets", "attacks")


@app.command("list", rich_help_panel="Catalogue")
def list_(
    what: Annotated[
        str, typer.Argument(help="models, benchmarks, datasets or attacks.")
    ] = "models",
) -> None:
    """List registered models (params, MACs, group), benchmarks, datasets or attacks."""

    def body() -> None:
        if what not in LIST_WHATS:
            raise unknown_choice("list", what, LIST_WHATS)
        table = _Rows()
        {"models": _models, "benchmarks": _benchmarks, "datasets": _datasets,
         "attacks": _attacks}[what](table)  # fmt: skip
        # The first column is the name to type (a model, dataset, ...): never cut.
        print_fitted(console, f"eqdp {what}", table.header, table.rows,
                     identifiers=table.header[:1], drop_order=("family", "norm"))  # fmt: skip

    guarded(body)


class _Rows:
    """Columns and rows as the listing functions add them, printed by ``print_fitted``."""

    def __init__(self) -> None:
        self.header: list[str] = []
        self.rows: list[list[str]] = []

    def add_column(self, name: str) -> None:
        self.header.append(name)

    def add_row(self, *cells: str) -> None:
        self.rows.append(list(cells))


def _models(table: _Rows) -> None:
    from eqdp.catalogue.models import load_catalogue, stored_counts
    from eqdp.results.leaderboard import human_count

    # Counts come from the committed catalogue (building every model takes half a minute);
    # tests/test_catalogue.py keeps it equal to what building them gives.
    for column in ("model", "family", "group", "params", "MACs (1x28x28)", "description"):
        table.add_column(column)
    catalogue = load_catalogue()
    aliases = {target: alias for alias, target in catalogue["aliases"].items()}
    for name, entry in sorted(catalogue["models"].items()):
        description = entry["description"]
        if name in aliases:
            description = f"(also: {aliases[name]}) {description}"
        counts = stored_counts(name, 28)
        if counts is None:  # a model that needs an option (arch-spec: its spec) to exist
            table.add_row(name, entry["family"], "-", "-", "-", description)
            continue
        table.add_row(
            name,
            entry["family"],
            counts["group"] or "-",
            human_count(counts["params"]),
            human_count(counts["macs"]),
            description,
        )


def _benchmarks(table: _Rows) -> None:
    from eqdp.benchmarks import BENCHMARKS
    from eqdp.config.fields import option_specs

    for column in ("benchmark", "options", "description"):
        table.add_column(column)
    for name in BENCHMARKS.names():
        benchmark = BENCHMARKS.get(name)
        options = ", ".join(spec.name for spec in option_specs(benchmark.options)) or "-"
        table.add_row(name, options, benchmark.description)


def _datasets(table: _Rows) -> None:
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


def _attacks(table: _Rows) -> None:
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
        from eqdp.catalogue.models import (
            COUNTED_SHAPE,
            canonical_name,
            model_entry,
            stored_counts,
        )
        from eqdp.data.catalog import FLAGS_2D, SIZES, dataset_info

        entry = model_entry(model)  # an unknown model fails here, naming the valid ones
        channels, classes = COUNTED_SHAPE
        if dataset is not None:
            if dataset not in FLAGS_2D:
                raise unknown_choice("dataset", dataset, FLAGS_2D)
            channels, classes = (
                dataset_info(dataset)["n_channels"],
                len(dataset_info(dataset)["label"]),
            )
        if size not in SIZES:
            raise unknown_choice("size", size, SIZES)
        counts = stored_counts(model, size) if (channels, classes) == COUNTED_SHAPE else None
        if counts is None:  # not in the catalogue: build the model and count (seconds)
            from eqdp.models import describe_model

            described = describe_model(model, channels, classes, size)
            counts = {"params": described.params, "macs": described.macs,
                      "group": described.group}  # fmt: skip
        table = Table(title=f"{model}" + (f" on {dataset}" if dataset else ""), show_header=False)
        if canonical_name(model) != model:
            table.add_row("name", canonical_name(model))
        table.add_row("family", entry["family"])
        table.add_row("symmetry group", counts["group"] or "none (translations only)")
        table.add_row("parameters", f"{counts['params']:,}")
        table.add_row("MACs / image", f"{counts['macs']:,}")
        table.add_row("input", f"{channels}x{size}x{size}")
        table.add_row("classes", str(classes))
        table.add_row("DP-SGD", entry["dp_refusal"] or "supported")
        options = {name: option["default"] for name, option in entry["options"].items()}
        table.add_row(
            "options (-k KEY=VALUE)",
            ", ".join(f"{k}={v}" for k, v in options.items()) or "none",
        )
        console.print(table)

    guarded(body)
