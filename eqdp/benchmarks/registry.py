"""The benchmark registry: what each benchmark owns, declared in one place.

A benchmark module defines its typed options, its run function, the record
section it writes, its README table and its plot, and registers one
``Benchmark``. Module top levels stay light (no torch): the run functions import
the engine when they run, so ``eqdp leaderboard`` and ``eqdp --help`` can read
the registry without loading torch, Opacus, MONAI or escnn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eqdp.registry import Registry

if TYPE_CHECKING:
    from eqdp.config.run import RunConfig
    from eqdp.engine.progress import ProgressCallback
    from eqdp.results.rows import Row

# header, record -> value (None if absent), scientific notation
Column = tuple[str, Callable[[dict], float | None], bool]
# (panel suffix, x, y) of one record; x None marks a reference line (clean, non-private).
Points = list[tuple[str, float | None, float]]


@dataclass(frozen=True)
class PlotSpec:
    """How ``eqdp plot NAME`` draws a benchmark: one panel per dataset (and suffix)."""

    x_label: str
    points: Callable[[dict, str], Points]  # (record, metric) -> points
    log_x: bool = True
    axis: str | None = None  # option plotted on x: lines are rows without it
    reference: str | None = None  # what a dashed line means
    tick_label: Callable[[float], str] = lambda x: f"{x:g}"
    fixed_ticks: tuple[float, ...] | None = None
    metrics: tuple[str, ...] = ("acc", "auc")  # what --metric may plot; the first is the default
    # A figure of its own: (records, out, metric, dataset) -> path; the fields above then
    # only name the metrics.
    draw: Callable[[list[dict], Path, str, str | None], Path] | None = None


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    options: type  # a config_class: the benchmark's typed options
    run: Callable[[RunConfig, ProgressCallback | None], tuple[dict, dict]]
    # Fills in effective option values (data-dependent defaults) and checks the
    # configuration against data, model and source run; raises EqdpError. Heavy imports ok.
    resolve: Callable[[RunConfig], RunConfig] | None = None
    evaluates_trained_model: bool = False  # tests a trained model: --from-run, trained_by
    section: str | None = None  # top-level record field this benchmark writes
    # Options that are measurement axes of one model (attacks, budgets): left out of the
    # row key, so several runs on one checkpoint are one row with more columns.
    axes: tuple[str, ...] = ()
    table: Callable[[list[Row]], str] | None = None  # README block <!-- eqdp:table NAME -->
    # The benchmark's own metrics beyond test AUC/ACC, as columns (header, record -> value,
    # scientific) for the rows at hand: the leaderboard shows them next to AUC/ACC.
    columns: Callable[[list[Row]], list[Column]] | None = None
    plot: PlotSpec | None = None
    # Records of one measurement (same row, seed and evaluated checkpoint), oldest first,
    # merged into one; default: the newest wins.
    merge: Callable[[list[dict]], dict] | None = None
    # Which records a table or plot of this benchmark draws on; default: its own.
    select: Callable[[list[dict]], list[dict]] | None = None
    # Defaults that depend on the run's data, for labels: record -> {option: value}.
    label_defaults: Callable[[dict], dict[str, Any]] | None = None
    metrics: tuple[str, ...] = field(default=("auc", "acc"))


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


def register_benchmark(benchmark: Benchmark) -> Benchmark:
    BENCHMARKS.add(benchmark.name, benchmark)
    return benchmark


def list_benchmarks() -> list[str]:
    return BENCHMARKS.names()


def records_of(benchmark: Benchmark, records: list[dict]) -> list[dict]:
    """The records a table or plot of ``benchmark`` draws on."""
    if benchmark.select is not None:
        return benchmark.select(records)
    return [r for r in records if r["benchmark"] == benchmark.name]
