"""eqdp search run / show: the Eq-NASNet architecture search (see eqdp/search/study.py)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from eqdp.cli.common import app, console, guarded
from eqdp.cli.options import parameters_for, values_from
from eqdp.config.fields import option_specs
from eqdp.errors import EqdpError
from eqdp.search.objective import SearchConfig

search_app = typer.Typer(
    help="Multi-objective architecture search: validation AUC against MACs (Optuna MOTPE).\n\n"
    "Examples:\n\n"
    "  eqdp search run --study runs/search/demo --trials 20 --epochs 2\n\n"
    "  eqdp search run --study runs/search/mine --trials 400 --executor local --workers 2\n\n"
    "  eqdp search show --study results/search/eq-nasnet-28",
    no_args_is_help=True,
)
app.add_typer(search_app, name="search", rich_help_panel="Search")

Study = Annotated[
    Path, typer.Option(help="Study folder: created on first use, resumed afterwards.")
]


SETTINGS_PANEL = "Search settings (stored with the study; a resume must not change them)"


def _run_template(
    study: Study,
    trials: Annotated[int, typer.Option(help="Finished trials the study should hold.")],
    workers: Annotated[int, typer.Option(help="Workers sharing the study.")] = 1,
    executor: Annotated[
        str, typer.Option(help="inline (this process), local (processes) or slurm (jobs).")
    ] = "inline",
    threads: Annotated[int | None, typer.Option(help="Torch threads per worker.")] = None,
    partition: Annotated[str | None, typer.Option(help="Slurm partition.")] = None,
    time_min: Annotated[int | None, typer.Option(help="Time limit per worker, minutes.")] = None,
    gpus: Annotated[int, typer.Option(help="GPUs per Slurm task.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder with MedMNIST .npz files.", envvar="EQDP_DATA_DIR")
    ] = None,
    verify_md5: Annotated[bool, typer.Option(help="Check data files' MD5.")] = True,
) -> None:
    """Where and how the workers run; the search settings come from SearchConfig."""


def run(**given: Any) -> None:
    """Run trials until the study holds --trials finished ones (resumable, shareable).

    Each trial builds an architecture from the search space, proxy-trains it on
    the training split of every search dataset and scores it on the validation
    split; the test split is never read. Trials over --max-mmacs or --max-params
    are pruned before training, and a trial is pruned after a dataset when a
    finished trial with no more MACs beat its mean validation AUC by
    --prune-margin. A killed worker's trial is failed and requeued when the next
    worker starts.
    """

    def body() -> None:
        from eqdp.config.fields import parse_config
        from eqdp.search.runner import run_search

        for flag in ("trials", "workers", "threads"):
            if given[flag] is not None and given[flag] < 1:
                raise EqdpError(f"--{flag} {given[flag]}: must be at least 1")
        settings, _ = values_from(option_specs(SearchConfig), given)
        config = parse_config(SearchConfig, settings, "search")
        data_dir = given["data_dir"]
        run_search(
            given["study"], config, given["trials"], workers=given["workers"],
            executor=given["executor"], threads=given["threads"],
            data_dir=str(data_dir) if data_dir else None, device=given["device"],
            verify_md5=given["verify_md5"], console=console,
            slurm={k: given[k] for k in ("partition", "time_min", "gpus")},
        )  # fmt: skip

    guarded(body)


# The search settings' options are generated from SearchConfig, as `eqdp run`'s are from the
# benchmarks' typed options: one declaration of each default and help text.
run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    list(inspect.signature(_run_template, eval_str=True).parameters.values())
    + parameters_for(option_specs(SearchConfig), SETTINGS_PANEL)
)
search_app.command("run")(run)


@search_app.command("show")
def show(
    study: Study,
    format: Annotated[str, typer.Option(help="table, markdown or json.")] = "table",
    plot: Annotated[
        Path | None, typer.Option(help="Also draw the trials and Pareto front to this image.")
    ] = None,
    export: Annotated[
        Path | None, typer.Option(help="Also write the summary (every trial, the front) as JSON.")
    ] = None,
) -> None:
    """The Pareto front of a study (val AUC vs MACs), with counts of trials by state."""

    def body() -> None:
        from eqdp.search.summary import render, summarize

        summary = summarize(study)
        console.print(render(summary, format), highlight=False, soft_wrap=True)
        if export is not None:
            from eqdp.search.summary import write_summary

            console.print(f"wrote {write_summary(summary, export)}")
        if plot is not None:
            from eqdp.search.summary import plot_front

            console.print(f"wrote {plot_front(summary, plot)}")

    guarded(body)


@search_app.command("pick")
def pick(
    study: Study,
    out: Annotated[Path, typer.Option(help="Where to write the chosen spec (JSON).")],
    name: Annotated[str, typer.Option(help="Name of the chosen spec.")] = "eq-nasnet-b0",
    max_mmacs: Annotated[
        float | None,
        typer.Option(help="MACs cap of the rule [default: EfficientNet-B0's at 28 px]."),
    ] = None,
) -> None:
    """Write B0: the finished trial with the best mean val AUC at <= the MACs cap."""

    def body() -> None:
        from eqdp.models.arch.spec import ArchSpec
        from eqdp.search.summary import choose_b0, summarize

        summary = summarize(study)
        trial = choose_b0(summary, max_mmacs)
        description = (
            f"searched: trial {trial['number']} of {study.name} (best mean val AUC "
            f"{trial['val_auc']:.3f} at <= EfficientNet-B0's MACs)"
        )
        spec = ArchSpec.from_dict({**trial["spec"], "name": name, "description": description})
        console.print(f"trial {trial['number']}: {spec.describe()} -> {spec.save(out)}")

    guarded(body)


@search_app.command("scale")
def scale(
    b0: Annotated[Path, typer.Option(help="The B0 spec file.")],
    out: Annotated[Path, typer.Option(help="Where to write the grid search (JSON).")],
    spec_dir: Annotated[Path, typer.Option(help="Folder for the B1-B3 spec files.")] = Path(
        "eqdp/models/specs"
    ),
    dataset: Annotated[str, typer.Option(help="Dataset with a 64 px file.")] = "breastmnist",
    epochs: Annotated[int, typer.Option(help="Proxy epochs per candidate.")] = 20,
    seeds: Annotated[str, typer.Option(help="Seeds per candidate, comma list.")] = "0,1",
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder with MedMNIST .npz files.", envvar="EQDP_DATA_DIR")
    ] = None,
) -> None:
    """Compound scaling: grid-search (alpha, beta, gamma) under alpha*beta^2*gamma^2 ~ 2 on
    validation, then write B1-B3 (phi = 1, 2, 3)."""

    def body() -> None:
        from eqdp.cli.options import parse_list
        from eqdp.models.arch.spec import ArchSpec
        from eqdp.search.compound import grid_search, save_grid, write_family

        spec = ArchSpec.load(b0)
        seed_list = tuple(parse_list(seeds, "seed", int))

        def show(row: dict) -> None:
            console.print(
                f"alpha {row['alpha']:.2f} beta {row['beta']:.2f} gamma {row['gamma']:.2f} "
                f"({row['resolution']} px, {row['mmacs']:.2f} MMACs): val AUC "
                f"{row['val_auc']:.3f}  [{row['seconds']:.0f} s]",
                highlight=False,
            )

        grid = grid_search(
            spec, dataset, epochs, seed_list, str(data_dir) if data_dir else None, on_result=show
        )
        console.print(f"chosen: {grid['chosen']} -> {save_grid(grid, out)}")
        for path in write_family(spec, grid, spec_dir):
            console.print(f"wrote {path}: {ArchSpec.load(path).describe()}")

    guarded(body)
