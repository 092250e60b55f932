"""The low-data benchmark: train on a stratified fraction of the training split.

Validation and test use the full splits. A fixed epoch count would give a 1%
subset 1% of the optimiser steps, so epochs are scaled up until the run takes at
least as many steps as the full-data run would, capped at ``MAX_EPOCH_SCALE``
times the requested epochs; the record stores the epochs actually used.

DP on a subset is the DP benchmark's job (``eqdp run dp --fraction``): it can
reuse ``subset_run`` so that the accountant sees the subset size.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from functools import lru_cache

import torch

from eqdp.benchmarks.base import RunConfig, accept_options, register_benchmark
from eqdp.benchmarks.common import RunContext, build_record, prepare_run, standard_setting
from eqdp.data import load_dataset
from eqdp.data.medmnist_data import resolve_data_dir
from eqdp.data.subsets import check_fraction, class_counts, stratified_subset
from eqdp.errors import EqdpError
from eqdp.train import ProgressCallback, TrainConfig, fit

MAX_EPOCH_SCALE = 10
EPOCH_RULE = f"epochs scaled so optimiser steps >= the full-data run's, at most x{MAX_EPOCH_SCALE}"


def scaled_epochs(epochs: int, batch_size: int, n_full: int, n_subset: int) -> int:
    full_steps = epochs * math.ceil(n_full / batch_size)
    steps_per_epoch = math.ceil(n_subset / batch_size)
    needed = math.ceil(full_steps / steps_per_epoch)
    return max(epochs, min(needed, epochs * MAX_EPOCH_SCALE))


@lru_cache(maxsize=8)
def _train_labels(flag: str, size: int, data_dir: str | None, verify_md5: bool) -> torch.Tensor:
    return load_dataset(flag, size, data_dir, verify_md5).train.labels


def train_labels(config: RunConfig) -> torch.Tensor:
    """Training labels, cached so checking a sweep loads each dataset once."""
    root = resolve_data_dir(config.data_dir)
    directory = os.fspath(root) if root else None
    return _train_labels(config.dataset, config.size, directory, config.verify_md5)


def check_low_data(config: RunConfig) -> None:
    if "epsilon" in config.options:
        raise EqdpError(
            "low-data trains without DP; for DP on a subset use `eqdp run dp --fraction ...`"
        )
    accept_options(config, ("fraction",))
    if "fraction" not in config.options:
        raise EqdpError("benchmark 'low-data' needs --fraction, e.g. --fraction 0.01,0.1,1")
    fraction = check_fraction(float(config.options["fraction"]))
    stratified_subset(train_labels(config), fraction, config.seed)


def subset_run(context: RunContext, fraction: float) -> tuple[RunContext, TrainConfig, dict]:
    """The context on the subset, the scaled training config, and the record's ``low_data``."""
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


@register_benchmark(
    "low-data",
    "train on a stratified fraction of the training split (--fraction), test on the full split",
    check=check_low_data,
)
def run_low_data(
    config: RunConfig, on_progress: ProgressCallback | None = None
) -> tuple[dict, dict]:
    fraction = float(config.options["fraction"])
    context, train, info = subset_run(prepare_run(config), fraction)
    result = fit(context.model, context.data, train, config.seed, context.device, on_progress)
    setting = f"fraction={fraction:g} {standard_setting(config)}"
    return build_record(context, result, setting, extra={"low_data": info}), result.best_state
