"""The low-data benchmark: train on a stratified fraction of the training split.

Validation and test use the full splits. A fixed epoch count would give a 1%
subset 1% of the optimiser steps, so epochs are scaled up until the run takes at
least as many steps as the full-data run would, capped at ``MAX_EPOCH_SCALE``
times the requested epochs; the record stores the epochs actually used.

Fraction 1 trains what a ``standard`` run of the same recipe trains, so tables
and plots take standard records as the fraction-1 point where no low-data run
at fraction 1 exists (``with_full_data_references``): a standard record counts
when its configuration, seen as low-data at fraction 1, has the same row key as
the low-data series.

DP on a subset is the DP benchmark's job (``eqdp run dp --fraction``), which
reuses ``subset_run`` so that the accountant sees the subset size.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING

from eqdp.benchmarks.registry import Benchmark, PlotSpec, register_benchmark
from eqdp.config.fields import config_class, option

if TYPE_CHECKING:
    import torch

    from eqdp.benchmarks.common import RunContext
    from eqdp.config.run import RunConfig
    from eqdp.config.train import TrainConfig
    from eqdp.engine import ProgressCallback
    from eqdp.results.rows import Row

MAX_EPOCH_SCALE = 10
EPOCH_RULE = f"epochs scaled so optimiser steps >= the full-data run's, at most x{MAX_EPOCH_SCALE}"


@config_class
class LowDataOptions:
    fraction: float = option(
        help="Training fraction in (0, 1], stratified by class; one run per value.",
        label="fraction={:g}",
        sweep=True,
        gt=0,
        le=1,
    )


def scaled_epochs(epochs: int, batch_size: int, n_full: int, n_subset: int) -> int:
    full_steps = epochs * math.ceil(n_full / batch_size)
    steps_per_epoch = math.ceil(n_subset / batch_size)
    needed = math.ceil(full_steps / steps_per_epoch)
    return max(epochs, min(needed, epochs * MAX_EPOCH_SCALE))


@lru_cache(maxsize=8)
def _train_labels(flag: str, size: int, data_dir: str | None, verify_md5: bool) -> torch.Tensor:
    from eqdp.data.medmnist_data import load_dataset

    return load_dataset(flag, size, data_dir, verify_md5).train.labels


def train_labels(config: RunConfig) -> torch.Tensor:
    """Training labels, cached so resolving a sweep loads each dataset once."""
    from eqdp.data.catalog import resolve_data_dir

    root = resolve_data_dir(config.data_dir)
    directory = os.fspath(root) if root else None
    return _train_labels(config.dataset, config.size, directory, config.verify_md5)


def subset_size(config: RunConfig, fraction: float) -> int:
    """Examples a stratified subset keeps; raises EqdpError when a class would vanish."""
    from eqdp.data.subsets import stratified_subset

    return len(stratified_subset(train_labels(config), fraction, config.seed))


def resolve_low_data(config: RunConfig) -> RunConfig:
    subset_size(config, float(config.options["fraction"]))
    return config


def subset_run(context: RunContext, fraction: float) -> tuple[RunContext, TrainConfig, dict]:
    """The context on the subset, the scaled training config, and the record's ``low_data``."""
    from eqdp.data.subsets import class_counts, stratified_subset

    config, data = context.config, context.data
    index = stratified_subset(data.train.labels, fraction, config.seed)
    subset = replace(data, train=data.train.subset(index))
    epochs = scaled_epochs(
        config.train.epochs, config.train.batch_size, len(data.train), len(index)
    )
    info = {
        "fraction": fraction,
        "n_train": len(index),
        "n_train_full": len(data.train),
        "class_counts": class_counts(subset.train.labels, data.n_classes),
        "class_counts_full": class_counts(data.train.labels, data.n_classes),
        "epochs": epochs,
        "epoch_rule": EPOCH_RULE,
    }
    return replace(context, data=subset), replace(config.train, epochs=epochs), info


def run_low_data(config: RunConfig, on_progress: ProgressCallback | None = None):
    from eqdp.benchmarks.common import build_record, prepare_run
    from eqdp.engine import fit

    fraction = float(config.options["fraction"])
    context, train, info = subset_run(prepare_run(config), fraction)
    result = fit(
        context.model, context.data, train, config.seed, context.device, on_progress=on_progress
    )
    return build_record(context, result, extra={"low_data": info}), result.best_state


def as_full_fraction(standard: dict) -> dict:
    """A view of a standard record as a low-data record at fraction 1."""
    n_train = standard["data"]["n_train"]
    low_data = {"fraction": 1.0, "n_train": n_train, "n_train_full": n_train}
    low_data |= {"from_benchmark": "standard", "source_run": standard["run_id"]}
    config = standard["config"] | {"benchmark": "low-data", "options": {"fraction": 1.0}}
    return standard | {"benchmark": "low-data", "config": config, "low_data": low_data}


def with_full_data_references(records: list[dict]) -> list[dict]:
    """The low-data records, plus standard runs as fraction 1 where no low-data run has it."""
    from eqdp.results.identity import key_material

    def series(record: dict) -> str:
        material = key_material(record["config"])
        return repr({**material, "options": {}})

    low_data = [r for r in records if r["benchmark"] == "low-data"]
    wanted = {series(r) for r in low_data}
    have_full = {series(r) for r in low_data if r["low_data"]["fraction"] == 1.0}
    references = [as_full_fraction(r) for r in records if r["benchmark"] == "standard"]
    return low_data + [r for r in references if series(r) in wanted - have_full]


def low_data_table(rows: list[Row], metric: str = "auc") -> str:
    from eqdp.report.tables import pivot_table

    borrowed = {
        row.material["options"]["fraction"]
        for row in rows
        if any(m.get("low_data", {}).get("from_benchmark") for m in row.members)
    }

    def header(fraction: float) -> str:
        source = " (standard runs)" if fraction in borrowed else ""
        return f"{metric.upper()} @ {fraction:g}{source}"

    return pivot_table(rows, "fraction", lambda r: r["metrics"]["test"][metric], header)


def _points(record: dict, metric: str):
    value = record["metrics"]["test"].get(metric)
    return [] if value is None else [("", record["low_data"]["fraction"], float(value))]


LOW_DATA = register_benchmark(
    Benchmark(
        name="low-data",
        description="train on a stratified fraction of the training split (--fraction), "
        "test on the full split",
        options=LowDataOptions,
        run=run_low_data,
        resolve=resolve_low_data,
        section="low_data",
        table=low_data_table,
        plot=PlotSpec(x_label="training fraction", points=_points, axis="fraction"),
        select=with_full_data_references,
    )
)
