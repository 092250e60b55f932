"""eqdp list and eqdp info: what models, benchmarks and datasets there are."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from eqdp.benchmarks import BENCHMARKS, list_benchmarks
from eqdp.cli.common import app, console, guarded
from eqdp.data import FLAGS_2D, SIZES, dataset_info
from eqdp.errors import unknown_choice
from eqdp.models import MODELS, describe_model, list_models
from eqdp.results import leaderboard as board

LIST_WHATS = ("models", "benchmarks", "datasets")


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
