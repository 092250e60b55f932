"""eqdp search run / show: the Eq-NASNet architecture search (see eqdp/search/study.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eqdp.cli.common import app, console, guarded

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


@search_app.command("run")
def run(
    study: Study,
    trials: Annotated[int, typer.Option(help="Finished trials the study should hold.", min=1)],
    datasets: Annotated[
        str, typer.Option(help="Search datasets, comma list, cheapest first.")
    ] = "breastmnist,retinamnist,pneumoniamnist",
    size: Annotated[int, typer.Option(help="Image size (a MedMNIST file size).")] = 28,
    epochs: Annotated[int, typer.Option(help="Proxy epochs per dataset.")] = 5,
    max_train: Annotated[
        int, typer.Option(help="Training images per dataset (stratified subset above).")
    ] = 1000,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Training seed of every trial.")] = 0,
    max_mmacs: Annotated[
        float, typer.Option(help="Prune trials above this many million MACs untrained.")
    ] = 16.0,
    min_group_order: Annotated[
        int, typer.Option(help="Smallest group order stages may restrict to (1: down to C1).")
    ] = 4,
    max_params: Annotated[
        int, typer.Option(help="Prune trials above this many params.")
    ] = 1_000_000,
    prune_margin: Annotated[
        float, typer.Option(help="Val-AUC margin of the dominated-trial pruning rule.")
    ] = 0.05,
    workers: Annotated[int, typer.Option(help="Workers sharing the study.", min=1)] = 1,
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
        from eqdp.search.objective import SearchConfig
        from eqdp.search.runner import run_search

        config = parse_config(
            SearchConfig,
            {
                "datasets": tuple(d.strip() for d in datasets.split(",") if d.strip()),
                "size": size,
                "epochs": epochs,
                "max_train": max_train,
                "batch_size": batch_size,
                "lr": lr,
                "seed": seed,
                "max_macs": max_mmacs,
                "max_params": max_params, "min_group_order": min_group_order,
                "prune_margin": prune_margin,
            },  # fmt: skip
            "search",
        )
        run_search(
            study, config, trials, workers=workers, executor=executor, threads=threads,
            data_dir=str(data_dir) if data_dir else None, device=device, verify_md5=verify_md5,
            slurm={"partition": partition, "time_min": time_min, "gpus": gpus},
            console=console,
        )  # fmt: skip

    guarded(body)


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
    spec_dir: Annotated[
        Path, typer.Option(help="Folder for the B1-B3 spec files.")
    ] = Path("eqdp/models/specs"),
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
