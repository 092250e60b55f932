"""What every benchmark's run shares: data and model set-up, and the record."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from eqdp.config.run import RunConfig
from eqdp.data.medmnist_data import MedMNISTData, load_dataset
from eqdp.engine import FitResult, Precision, ProgressCallback, fit, seed_everything, select_device
from eqdp.models import ModelInfo, create_model, describe_model, model_spec
from eqdp.results.environment import environment
from eqdp.results.identity import label, row_key
from eqdp.results.records import SCHEMA_VERSION, new_run_id, utc_now


@dataclass
class RunContext:
    config: RunConfig
    data: MedMNISTData
    model: nn.Module
    info: ModelInfo
    device: torch.device
    precision: Precision


def load_run_data(config: RunConfig) -> MedMNISTData:
    return load_dataset(config.dataset, config.size, config.data_dir, config.verify_md5)


def prepare_run(config: RunConfig, dp: bool = False) -> RunContext:
    """Data and a freshly initialised model; the seed covers the initial weights."""
    device = select_device(config.device)
    data = load_run_data(config)
    seed_everything(config.seed)
    model = build_model(config, data, dp)
    info = describe_model(config.model, data.n_channels, data.n_classes, config.size, model=model)
    return RunContext(config, data, model, info, device, Precision(config.train.precision))


def train_fresh(
    config: RunConfig, on_progress: ProgressCallback | None = None
) -> tuple[RunContext, FitResult]:
    """A new model trained on the full training split with the run's recipe."""
    context = prepare_run(config)
    result = fit(
        context.model, context.data, config.train, config.seed, context.device,
        on_progress=on_progress,
    )  # fmt: skip
    return context, result


def build_model(config: RunConfig, data: MedMNISTData, dp: bool) -> nn.Module:
    return create_model(
        config.model,
        data.n_channels,
        data.n_classes,
        dp=dp,
        image_size=config.size,
        **config.model_kwargs,
    )


def build_record(
    context: RunContext,
    fit_result: FitResult,
    extra: dict | None = None,
    eval_precision: Precision | None = None,
) -> dict:
    """The record of a finished run (without the checkpoint name, which saving adds)."""
    config = context.config
    precision = {
        "train": config.train.precision,
        "eval": (eval_precision or context.precision).name,
    }
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": new_run_id(config.model, config.seed),
        "created_at": utc_now(),
        "status": "finished",
        "benchmark": config.benchmark,
        "dataset": config.dataset,
        "size": config.size,
        "model": config.model,
        "seed": config.seed,
        "config": config.as_dict(),
        "model_info": {
            "params": context.info.params,
            "macs": context.info.macs,
            "group": context.info.group,
            "defaults": model_spec(config.model).option_defaults(),
        },
        "data": {
            "task": context.data.task,
            "n_train": len(context.data.train),
            "n_val": len(context.data.val),
            "n_test": len(context.data.test),
            **context.data.source,
        },
        "metrics": {"val": fit_result.val, "test": fit_result.test},
        "best_epoch": fit_result.best_epoch,
        "history": [vars(stats) for stats in fit_result.history],
        "timing": {
            "train_seconds": round(fit_result.train_seconds, 3),
            "images_per_second": round(fit_result.images_per_second, 2),
        },
        "env": {**environment(context.device, precision), "engine": fit_result.engine},
        "privacy": fit_result.privacy,
    }
    if extra:
        record.update(extra)
    record["key"] = row_key(record["config"])
    record["label"] = label(record)
    return record
