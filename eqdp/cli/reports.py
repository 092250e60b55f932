"""eqdp leaderboard, readme and plot: everything that reads the records (no torch)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from eqdp.cli.common import app, console, errors, guarded
from eqdp.cli.options import ResultsDir
from eqdp.cli.tables import print_fitted
from eqdp.errors import EqdpError, unknown_choice

# What a narrow terminal leaves out first: ids, models and scores stay.
LEADERBOARD_DROP_ORDER = ("img/s", "train s", "MACs", "params", "benchmark", "seeds", "key")
RUNS_HEADER = ("run id", "benchmark", "dataset", "model", "setting", "seed", "test AUC", "key",
               "checkpoint")  # fmt: skip
RUNS_DROP_ORDER = ("key", "benchmark", "checkpoint", "setting", "dataset")


@app.command(rich_help_panel="Results")
def leaderboard(
    benchmark: Annotated[str | None, typer.Option(help="Only this benchmark.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    size: Annotated[int | None, typer.Option(help="Only this image size.")] = None,
    key: Annotated[
        str | None, typer.Option(help="Only the configuration whose row key starts with this.")
    ] = None,
    results_dir: ResultsDir = None,
    format: Annotated[
        str, typer.Option(help="table, markdown, csv, json, latex (booktabs) or html.")
    ] = "table",
    show_key: Annotated[bool, typer.Option(help="Add the row key column.")] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            help="Leave out (and name) files that are not valid records instead of failing."
        ),
    ] = False,
) -> None:
    """Mean ± std over seeds of test AUC/ACC, one line per configuration.

    A line is one configuration: the records whose whole configuration but the
    seed is the same (its row key, --show-key). The setting column is what
    differs from the benchmark's defaults. With one benchmark, its own metrics
    are columns too: robust ACC per attack and eps (adversarial), worst-case ACC
    and invariance error (geometric). A single seed shows ± n/a.

    Example: [bold]eqdp leaderboard --results-dir results --benchmark dp --dataset breastmnist[/]
    """

    def body() -> None:
        from eqdp.benchmarks import BENCHMARKS
        from eqdp.data.catalog import FLAGS_2D
        from eqdp.results import leaderboard as board
        from eqdp.results.records import load_records
        from eqdp.results.records import results_dir as resolve_results

        if format not in board.FORMATS:
            raise unknown_choice("format", format, board.FORMATS)
        if benchmark is not None:
            BENCHMARKS.get(benchmark)
        if dataset is not None and dataset not in FLAGS_2D:
            raise unknown_choice("dataset", dataset, FLAGS_2D)

        invalid: list[tuple[Path, str]] = []

        def report_skip(path: Path, reason: str) -> None:
            invalid.append((path, reason))
            if skip_invalid:
                errors.print(f"[yellow]skipping[/] {path}: {reason}", highlight=False)

        base = resolve_results(results_dir)
        if not base.exists():
            raise EqdpError(f"results folder {base} does not exist (no runs yet?)")
        records = load_records(base, on_skip=report_skip)
        if invalid and not skip_invalid:
            path, reason = invalid[0]
            more = f" (and {len(invalid) - 1} more)" if len(invalid) > 1 else ""
            raise EqdpError(
                f"record {path} is invalid: {reason}{more}; fix or move it, or pass "
                "--skip-invalid to leave such files out"
            )
        chosen = board.filter_records(
            records, benchmark=benchmark, dataset=dataset, model=model, size=size
        )
        rows = board.aggregate(chosen)
        if key is not None:
            rows = [row for row in rows if row.key.startswith(key)]
        if format == "markdown":
            sys.stdout.write(board.to_markdown(rows, show_key))
        elif format == "csv":
            sys.stdout.write(board.to_csv(rows))
        elif format == "json":
            sys.stdout.write(board.to_json(rows))
        elif format == "latex":
            sys.stdout.write(board.to_latex(rows, show_key))
        elif format == "html":  # the results site's leaderboard page, standalone
            from eqdp.report.site import leaderboard_html

            sys.stdout.write(leaderboard_html(chosen, rows, show_key))
        else:
            header, cells = board.display_table(rows, show_key)
            print_fitted(
                console, f"eqdp leaderboard: {base} ({len(chosen)} records)", header, cells,
                identifiers=("model", "key"), drop_order=LEADERBOARD_DROP_ORDER,
            )  # fmt: skip

    guarded(body)


report_app = typer.Typer(help="Publishable reports built from the records.", no_args_is_help=True)
app.add_typer(report_app, name="report", rich_help_panel="Results")


@report_app.command("site")
def report_site(
    out: Annotated[Path, typer.Argument(help="Folder to write (new, empty or an earlier site).")],
    results_dir: Annotated[
        Path | None, typer.Option(help="Records folder \\[default: the committed ./results].")
    ] = None,
    findings: Annotated[
        Path, typer.Option(help="Findings report (markdown) to render, when it exists.")
    ] = Path("docs/findings.md"),
    figures: Annotated[
        bool, typer.Option(help="Draw each benchmark's figure (scaling takes a minute).")
    ] = True,
) -> None:
    """A static results site: an index, one sortable leaderboard per benchmark and dataset
    (protocol, seeds, devices, 95% intervals), a page per run, the figures and the findings.

    Example: [bold]eqdp report site site/ && python -m http.server -d site[/]
    """

    def body() -> None:
        from eqdp.report.site import build_site
        from eqdp.results.records import load_records

        base = results_dir or Path("results")
        if not base.is_dir():
            raise EqdpError(f"results folder {base} does not exist (no runs yet?)")
        records = load_records(base, on_skip=None)
        site = build_site(
            records, out, findings=findings, figures=figures,
            on_step=lambda message: errors.print(message, highlight=False),
        )  # fmt: skip
        console.print(
            f"wrote {out / 'index.html'}: {len(site.tables)} leaderboards, {site.runs} runs, "
            f"{len(site.figures)} figures, findings {'included' if site.findings else 'absent'}"
        )

    guarded(body)


@report_app.command("findings")
def report_findings(
    out: Annotated[Path, typer.Option(help="The page to write.")] = Path("docs/findings.md"),
    results_dir: Annotated[
        Path | None, typer.Option(help="Records folder \\[default: the committed ./results].")
    ] = None,
    check: Annotated[bool, typer.Option(help="Fail if the page is out of date.")] = False,
) -> None:
    """Write docs/findings.md: eq-nasnet-b0 vs each opponent, with verdicts.

    Per benchmark, dataset and protocol: paired differences over seeds, 95% intervals
    and win / level / loss verdicts (docs/guide.md, Statistics). Full-protocol records
    are compared; smoke budgets get a section of their own.

    Example: [bold]eqdp report findings && eqdp readme[/]
    """

    def body() -> None:
        from eqdp.report.findings_page import page_template
        from eqdp.report.readme import COMMITTED_RESULTS, updated_readme
        from eqdp.results.records import load_records

        text = out.read_text() if out.is_file() else page_template()
        base = results_dir or Path(COMMITTED_RESULTS)
        new_text = updated_readme(text, load_records(base, on_skip=None), base)
        if check:
            if new_text != text:
                raise EqdpError(f"{out} is out of date; run `eqdp report findings --out {out}`")
            console.print(f"{out}: up to date")
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(new_text)
        console.print(f"wrote {out}")

    guarded(body)


@app.command(rich_help_panel="Results")
def readme(
    file: Annotated[Path, typer.Argument(help="Markdown file with eqdp:table blocks.")] = Path(
        "README.md"
    ),
    results_dir: Annotated[
        Path | None, typer.Option(help="Records folder \\[default: the committed ./results].")
    ] = None,
    check: Annotated[bool, typer.Option(help="Fail if the tables are out of date.")] = False,
) -> None:
    """Regenerate the generated blocks (tables, findings, status) of README.md and of every
    page under the docs/ folder beside it, from the committed records in results/."""

    def body() -> None:
        from eqdp.report.readme import update_pages

        if not file.is_file():
            raise EqdpError(f"{file} is not a file")
        stale = update_pages(file, results_dir, check=check)
        names = ", ".join(str(page) for page in stale)
        if check and stale:
            raise EqdpError(f"generated blocks out of date in {names}; run `eqdp readme {file}`")
        console.print(f"{file} and docs/: {'regenerated ' + names if stale else 'up to date'}")

    guarded(body)


@app.command(rich_help_panel="Results")
def plot(
    kind: Annotated[str, typer.Argument(help="low-data, adversarial, geometric, dp or scaling.")],
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output file (.png, .svg or .pdf) \\[default: KIND.png].")
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(help="acc or auc \\[default: acc]; scaling: loss or 1-auc \\[default: loss]."),
    ] = None,
    results_dir: ResultsDir = None,
) -> None:
    """Plot test ACC/AUC vs fraction, attack eps, rotation angle or epsilon from the records;
    scaling: log-log validation loss (or 1-AUC) per axis with fitted laws, 95% bands and the
    compute frontier.

    Example: [bold]eqdp plot low-data --results-dir results --out low-data.svg[/]
    """

    def body() -> None:
        from eqdp.data.catalog import FLAGS_2D
        from eqdp.report.plots import plot_kinds, plot_records
        from eqdp.results.records import load_records

        if kind not in plot_kinds():
            raise unknown_choice("plot", kind, plot_kinds())
        if dataset is not None and dataset not in FLAGS_2D:
            raise unknown_choice("dataset", dataset, FLAGS_2D)
        target = out or Path(f"{kind}{'-' + dataset if dataset else ''}.png")
        records = load_records(results_dir, on_skip=None)
        path = plot_records(kind, records, target, metric=metric, dataset=dataset)
        console.print(f"wrote {path}")

    guarded(body)


@app.command(rich_help_panel="Results")
def runs(
    benchmark: Annotated[str | None, typer.Option(help="Only this benchmark.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    seed: Annotated[int | None, typer.Option(help="Only this seed.")] = None,
    key: Annotated[
        str | None, typer.Option(help="Only the configuration whose row key starts with this.")
    ] = None,
    with_checkpoint: Annotated[
        bool, typer.Option(help="Only runs whose checkpoint is there (usable with --from-run).")
    ] = False,
    results_dir: ResultsDir = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            help="Checkpoints folder \\[env: EQDP_CHECKPOINT_DIR; default: "
            "checkpoints/ in the records folder]."
        ),  # fmt: skip
    ] = None,
    format: Annotated[str, typer.Option(help="table or json.")] = "table",
) -> None:
    """Finished runs, newest first: run id, configuration, test AUC, and whether the
    checkpoint is there, so a run id can go to --from-run or `eqdp reproduce`.

    Example: [bold]eqdp runs --results-dir results --benchmark standard --model cnn[/]
    """

    def body() -> None:
        import json

        from eqdp.benchmarks import BENCHMARKS
        from eqdp.data.catalog import FLAGS_2D
        from eqdp.results.checkpoints import checkpoint_path
        from eqdp.results.identity import run_key
        from eqdp.results.leaderboard import filter_records
        from eqdp.results.records import load_records
        from eqdp.results.records import results_dir as resolve_results

        if format not in ("table", "json"):
            raise unknown_choice("format", format, ("table", "json"))
        if benchmark is not None:
            BENCHMARKS.get(benchmark)
        if dataset is not None and dataset not in FLAGS_2D:
            raise unknown_choice("dataset", dataset, FLAGS_2D)
        base = resolve_results(results_dir)
        if not base.exists():
            raise EqdpError(f"results folder {base} does not exist (no runs yet?)")
        records = filter_records(
            load_records(base, on_skip=None),
            benchmark=benchmark, dataset=dataset, model=model, seed=seed,
        )  # fmt: skip
        listed = []
        for record in sorted(records, key=lambda r: (r["created_at"], r["run_id"]), reverse=True):
            row_key = record.get("key") or run_key(record["config"])[:12]
            if key is not None and not row_key.startswith(key):
                continue
            path = checkpoint_path(record["run_id"], checkpoint_dir, base)
            has_checkpoint = bool(record.get("checkpoint")) and path.is_file()
            if with_checkpoint and not has_checkpoint:
                continue
            listed.append((record, row_key, path if has_checkpoint else None))
        if format == "json":
            payload = [
                {
                    "run_id": r["run_id"],
                    "benchmark": r["benchmark"],
                    "dataset": r["dataset"],
                    "size": r["size"],
                    "model": r["model"],
                    "seed": r["seed"],
                    "setting": r.get("label"),
                    "key": k,
                    "created_at": r["created_at"],
                    "test_auc": r["metrics"]["test"].get("auc"),
                    "checkpoint": str(p) if p else None,
                    "record": r["_path"],
                }  # fmt: skip
                for r, k, p in listed
            ]
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
            return
        cells = []
        for record, row_key, path in listed:
            auc = record["metrics"]["test"].get("auc")
            cells.append([
                record["run_id"], record["benchmark"], f"{record['dataset']} ({record['size']})",
                record["model"], record.get("label") or "", str(record["seed"]),
                "–" if auc is None else f"{auc:.3f}", row_key, "yes" if path else "no",
            ])  # fmt: skip
        print_fitted(
            console, f"eqdp runs: {base} ({len(listed)} of {len(records)} finished runs)",
            RUNS_HEADER, cells, identifiers=("run id", "model"), drop_order=RUNS_DROP_ORDER,
        )  # fmt: skip

    guarded(body)
