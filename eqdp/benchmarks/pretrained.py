"""Train-or-load for evaluation benchmarks (adversarial, geometric).

Without ``--from-run`` the model is trained exactly like the standard benchmark.
With ``--from-run RUN_ID`` the source record is looked up in
``config.results_dir`` (the CLI's ``--results-dir``; else ``EQDP_RESULTS_DIR``,
else ``./results``), checked against the configuration, and its checkpoint is
loaded into a freshly built, unwrapped model: no training happens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from eqdp.benchmarks.base import RunConfig
from eqdp.benchmarks.common import RunContext, build_record, prepare_run, standard_setting
from eqdp.data import load_dataset
from eqdp.errors import EqdpError
from eqdp.models import create_model, describe_model
from eqdp.results.checkpoints import checkpoint_path, load_checkpoint
from eqdp.results.records import find_record
from eqdp.train import FitResult, ProgressCallback, TrainConfig, evaluate_split, fit, select_device

OPACUS_PREFIX = "_module."  # GradSampleModule's parameter names carry this prefix


def source_record(config: RunConfig) -> dict | None:
    """The record named by ``options["from_run"]``, checked to fit ``config``; None if unset."""
    run_id = config.options.get("from_run")
    if run_id is None:
        return None
    source = find_record(run_id, config.results_dir)
    if (source["dataset"], source["size"]) != (config.dataset, config.size):
        raise EqdpError(
            f"run {run_id!r} was trained on {source['dataset']} at {source['size']}px, "
            f"not on {config.dataset} at {config.size}px"
        )
    if source["model"] != config.model:
        raise EqdpError(f"run {run_id!r} trained model {source['model']!r}, not {config.model!r}")
    if not checkpoint_path(run_id).is_file():
        raise EqdpError(f"run {run_id!r} has no checkpoint at {checkpoint_path(run_id)}")
    return source


def unwrapped_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """State dict of the plain model, also when it was saved from an Opacus wrapper."""
    return {k.removeprefix(OPACUS_PREFIX): v for k, v in state.items()}


def train_config_of(record: dict) -> TrainConfig:
    values = dict(record["config"]["train"])
    values["lr_milestones"] = tuple(values.get("lr_milestones", ()))
    return TrainConfig(**values)


@dataclass
class Prepared:
    """A trained or loaded model, its clean metrics, and what the record needs about it."""

    context: RunContext
    fit: FitResult
    setting: str
    source: dict | None = None
    clean_eval_seconds: float = 0.0  # from-run: time to compute the clean val/test metrics

    def record(self, extra: dict, eval_seconds: float) -> dict:
        source = self.source
        record = build_record(
            self.context,
            self.fit,
            self.setting,
            privacy=source["privacy"] if source else None,
            extra={"source_run": source["run_id"] if source else None, **extra},
        )
        record["timing"]["eval_seconds"] = round(self.clean_eval_seconds + eval_seconds, 3)
        return record


def train_or_load(config: RunConfig, on_progress: ProgressCallback | None = None) -> Prepared:
    source = source_record(config)
    if source is None:
        context = prepare_run(config)
        result = fit(
            context.model, context.data, config.train, config.seed, context.device, on_progress
        )
        context.model.eval()
        return Prepared(context, result, standard_setting(config))
    return _load(config, source)


def _load(config: RunConfig, source: dict) -> Prepared:
    device = select_device(config.device)
    data = load_dataset(config.dataset, config.size, config.data_dir, config.verify_md5)
    model_kwargs = dict(source["config"].get("model_kwargs", {}))
    # The record describes how these weights came about: the source's seed, recipe, kwargs.
    config = replace(
        config, seed=int(source["seed"]), train=train_config_of(source), model_kwargs=model_kwargs
    )
    model = create_model(
        config.model,
        data.n_channels,
        data.n_classes,
        dp=source["privacy"] is not None,  # DP runs use the per-sample-norm variant
        image_size=config.size,
        **model_kwargs,
    )
    state = unwrapped_state(load_checkpoint(source["run_id"]))
    model.load_state_dict(state)
    model.to(device).eval()
    info = describe_model(config.model, data.n_channels, data.n_classes, config.size, model=model)
    started = time.perf_counter()
    on_device = data.to(device)
    batch = config.train.eval_batch_size
    val = evaluate_split(model, on_device.val, data.task, batch)
    test = evaluate_split(model, on_device.test, data.task, batch)
    result = FitResult(
        best_epoch=int(source["best_epoch"]),
        best_state=state,
        val=val,
        test=test,
        train_seconds=0.0,
        images_per_second=0.0,
    )
    seconds = time.perf_counter() - started
    setting = source["setting"]
    if source["benchmark"] != "standard":
        setting = f"{source['benchmark']} {setting}"
    return Prepared(RunContext(config, data, model, info, device), result, setting, source, seconds)
