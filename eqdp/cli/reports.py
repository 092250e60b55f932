"""eqdp leaderboard, readme and plot: everything that reads the records."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from eqdp.cli.common import app, console, errors, guarded
from eqdp.cli.options import ResultsDir
from eqdp.data import FLAGS_2D
from eqdp.errors import EqdpError, unknown_choice
from eqdp.results import FORMATS, aggregate, filter_records, load_records
from eqdp.results import leaderboard as board


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
