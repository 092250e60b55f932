"""Pieces every benchmark shares: data + model set-up, the record, checkpoint saving."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from eqdp.benchmarks.base import RunConfig
from eqdp.data import MedMNISTData, load_dataset
from eqdp.models import ModelInfo, create_model, describe_model
from eqdp.results.environment import environment
from eqdp.results.records import SCHEMA_VERSION, new_run_id, utc_now
from eqdp.train import FitResult, seed_everything, select_device


@dataclass
class RunContext:
    config: RunConfig
    data: MedMNISTData
    model: nn.Module
    info: ModelInfo
    device: torch.device


def prepare_run(config: RunConfig, dp: bool = False) -> RunContext:
    """Everything that can fail on bad input fails here, before any training."""
    device = select_device(config.device)
    data = load_dataset(config.dataset, config.size, config.data_dir, config.verify_md5)
    seed_everything(config.seed)  # the seed covers the initial weights too
    model = create_model(
        config.model,
        data.n_channels,
        data.n_classes,
        dp=dp,
        image_size=config.size,
        **config.model_kwargs,
    )
    info = describe_model(config.model, data.n_channels, data.n_classes, config.size, model=model)
    return RunContext(config, data, model, info, device)


def standard_setting(config: RunConfig) -> str:
    train = config.train
    setting = f"{train.epochs}ep bs{train.batch_size} lr{train.lr:g}"
    return setting if train.augment == "none" else f"{setting} aug={train.augment}"


def build_record(
    context: RunContext,
    fit_result: FitResult,
    setting: str,
    privacy: dict | None = None,
    extra: dict | None = None,
) -> dict:
    config = context.config
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
        "setting": setting,
        "config": config.as_dict(),
        "model_info": {
            "params": context.info.params,
            "macs": context.info.macs,
            "group": context.info.group,
        },
        "data": {
            "task": context.data.task,
            "n_train": len(context.data.train),
            "n_val": len(context.data.val),
            "n_test": len(context.data.test),
        },
        "metrics": {"val": fit_result.val, "test": fit_result.test},
        "best_epoch": fit_result.best_epoch,
        "history": [vars(stats) for stats in fit_result.history],
        "timing": {
            "train_seconds": round(fit_result.train_seconds, 3),
            "images_per_second": round(fit_result.images_per_second, 2),
        },
        "env": environment(context.device),
        "privacy": privacy,
    }
    if extra:
        record.update(extra)
    return record
