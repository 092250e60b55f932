"""eqdp scaling fit / show: power laws fitted on the scaling benchmark's records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eqdp.cli.common import app, console, guarded
from eqdp.cli.options import ResultsDir

scaling_app = typer.Typer(
    help="Scaling laws from the scaling benchmark's records (eqdp run scaling / suites in "
    "benchmarks/scaling/).\n\n"
    "Examples:\n\n"
    "  eqdp scaling fit --results-dir results\n\n"
    "  eqdp scaling show --results-dir results --target 1-auc\n\n"
    "  eqdp plot scaling --results-dir results --dataset breastmnist",
    no_args_is_help=True,
)
app.add_typer(scaling_app, name="scaling", rich_help_panel="Results")

Targets = Annotated[
    str, typer.Option(help="Comma list of quantities to fit: loss (cross-entropy), 1-auc.")
]
Out = Annotated[
    Path | None,
    typer.Option(help="Folder for the fit files \\[default: RESULTS_DIR/scaling/fits]."),
]


@scaling_app.command()
def fit(
    results_dir: ResultsDir = None,
    out: Out = None,
    target: Targets = "loss,1-auc",
    split: Annotated[str, typer.Option(help="val (default) or test.")] = "val",
    resamples: Annotated[
        int, typer.Option(help="Bootstrap resamples for the 95% intervals.", min=0)
    ] = 200,
) -> None:
    """Fit L(x) = E + A x^-alpha per family, axis and budget; L(N, D) and the compute frontier.

    Chinchilla's method 3 (Huber loss on log L, L-BFGS from a grid of starts),
    bootstrap intervals over seeds, R^2 and residuals. One JSON per fit under
    the fits folder, replaced as a whole; index.json names the series that carry
    no law (fewer than 3 points, a flat quantity, an exponent on its bound) and why.
    """

    def body() -> None:
        from eqdp.errors import EqdpError
        from eqdp.results.records import load_records
        from eqdp.results.records import results_dir as records_dir
        from eqdp.scaling.laws import fit_all, fits_folder, write_fits

        base = records_dir(results_dir)
        targets = tuple(t.strip() for t in target.split(",") if t.strip())
        records = load_records(results_dir, on_skip=None)
        with console.status("fitting") as status:
            fits, skipped = fit_all(
                records, targets, split, resamples, on_fit=lambda name: status.update(name)
            )
        if not any(fit["kind"] == "power-law" for fit in fits.values()):
            # Nothing written: a frontier alone is not what was asked for.
            raise EqdpError("no sweep could carry a law: " + "; ".join(
                f"{s['dataset']} {s['series']}: {s['reason']}" for s in skipped))  # fmt: skip
        folder = write_fits(fits, skipped, out or fits_folder(base))
        for item in skipped:
            console.print(f"no law: {item['dataset']} {item['series']} ({item['target']}): "
                          f"{item['reason']}")  # fmt: skip
        console.print(f"wrote {len(fits)} fits to {folder}")

    guarded(body)


@scaling_app.command()
def show(
    results_dir: ResultsDir = None,
    fits: Out = None,
    target: Annotated[str, typer.Option(help="loss or 1-auc.")] = "loss",
) -> None:
    """The fitted exponents of both families side by side (markdown)."""

    def body() -> None:
        import json

        from eqdp.errors import unknown_choice
        from eqdp.results.records import results_dir as records_dir
        from eqdp.scaling.laws import TARGETS, fits_folder, load_fits
        from eqdp.scaling.report import render

        if target not in TARGETS:
            raise unknown_choice("scaling target", target, list(TARGETS))
        folder = fits or fits_folder(records_dir(results_dir))
        loaded = load_fits(folder)  # a clear error when there are none
        index = json.loads((folder / "index.json").read_text())
        console.print(render(loaded, index.get("not_fitted", []), target), markup=False)

    guarded(body)
