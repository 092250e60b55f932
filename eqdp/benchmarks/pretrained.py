"""Evaluation benchmarks: train like ``standard``, or load a finished run (``--from-run``).

With ``from_run`` the source record is looked up in ``config.results_dir``
(``--results-dir``; else ``EQDP_RESULTS_DIR``, else ``./runs``), checked
against the configuration, and its checkpoint is loaded into a freshly built,
unwrapped model: no training happens. Resolving copies from the source what
determines the weights (seed, training recipe, model options) and records how
they were trained (``trained_by``), so the row key of an attack on a DP model
differs from that of an attack on a standard one.

Light at import: torch is imported by the functions that need it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eqdp.config.fields import parse_config
from eqdp.config.run import RunConfig, TrainedBy
from eqdp.config.train import TrainConfig
from eqdp.errors import EqdpError

if TYPE_CHECKING:
    from eqdp.benchmarks.common import RunContext
    from eqdp.engine import FitResult, ProgressCallback

OPACUS_PREFIX = "_module."  # GradSampleModule's parameter names carry this prefix
EVALUATION_BENCHMARKS = ("adversarial", "geometric")


def source_record(config: RunConfig, need_checkpoint: bool = True) -> dict | None:
    """The record named by ``options["from_run"]``, checked to fit ``config``; None if unset.

    Resolving a configuration needs only the record (what trained the weights);
    running it needs the checkpoint too.
    """
    from eqdp.results.checkpoints import checkpoint_path
    from eqdp.results.records import find_record

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
    path = checkpoint_path(run_id, config.checkpoint_dir, config.results_dir)
    if need_checkpoint and not path.is_file():
        raise EqdpError(f"run {run_id!r} has no checkpoint at {path}")
    return source


def trained_by(source: dict) -> TrainedBy:
    if source["benchmark"] in EVALUATION_BENCHMARKS:
        origin = source["config"].get("trained_by") or {"benchmark": "standard", "options": {}}
        return TrainedBy(origin["benchmark"], dict(origin.get("options", {})))
    return TrainedBy(source["benchmark"], dict(source["config"].get("options", {})))


def resolve_evaluation(config: RunConfig) -> RunConfig:
    """From a source run: its seed, recipe, model options and training origin."""
    source = source_record(config, need_checkpoint=False)
    if source is None:
        return config.replace(trained_by=TrainedBy("standard", {}))
    train = parse_config(TrainConfig, source["config"]["train"], f"run {source['run_id']} train")
    return config.replace(
        seed=int(source["seed"]),
        train=train,
        model_kwargs=dict(source["config"].get("model_kwargs", {})),
        trained_by=trained_by(source),
    )


def unwrapped_state(state: dict[str, Any]) -> dict[str, Any]:
    """State dict of the plain model, also when it was saved from an Opacus wrapper."""
    return {k.removeprefix(OPACUS_PREFIX): v for k, v in state.items()}


@dataclass
class Prepared:
    """A trained or loaded model, its clean metrics, and what the record needs about it."""

    context: RunContext
    fit: FitResult
    source: dict | None = None
    clean_eval_seconds: float = 0.0  # from-run: time to compute the clean val/test metrics

    def record(self, extra: dict, eval_seconds: float, eval_precision=None) -> dict:
        from eqdp.benchmarks.common import build_record

        source = self.source
        fit = self.fit
        if source is not None:
            fit.privacy = source.get("privacy")
        record = build_record(
            self.context,
            fit,
            extra={"source_run": source["run_id"] if source else None, **extra},
            eval_precision=eval_precision,
        )
        record["timing"]["eval_seconds"] = round(self.clean_eval_seconds + eval_seconds, 3)
        return record


def train_or_load(config: RunConfig, on_progress: ProgressCallback | None = None) -> Prepared:
    from eqdp.benchmarks.common import train_fresh

    source = source_record(config)
    if source is None:
        context, result = train_fresh(config, on_progress)
        context.model.eval()
        return Prepared(context, result)
    return _load(config, source)


def _load(config: RunConfig, source: dict) -> Prepared:
    from eqdp.benchmarks.common import RunContext, build_model, load_run_data
    from eqdp.engine import FitResult, Precision, evaluate_split, select_device
    from eqdp.models import describe_model
    from eqdp.results.checkpoints import load_checkpoint

    device = select_device(config.device)
    data = load_run_data(config)
    # The DP variant (per-sample normalisation) for weights trained under DP.
    model = build_model(config, data, dp=source.get("privacy") is not None)
    state = unwrapped_state(
        load_checkpoint(source["run_id"], config.checkpoint_dir, config.results_dir)
    )
    model.load_state_dict(state)
    model.to(device).eval()
    info = describe_model(config.model, data.n_channels, data.n_classes, config.size, model=model)
    # Evaluate as trained where the device allows it (bf16 needs CUDA), else in fp32.
    precision = Precision(config.train.precision if device.type == "cuda" else "fp32")
    started = time.perf_counter()
    on_device = data.to(device)
    batch = config.train.eval_batch_size
    val = evaluate_split(model, on_device.val, data.task, batch, precision)
    test = evaluate_split(model, on_device.test, data.task, batch, precision)
    result = FitResult(
        best_epoch=int(source["best_epoch"]),
        best_state=state,
        val=val,
        test=test,
        train_seconds=0.0,
        images_per_second=0.0,
    )
    seconds = time.perf_counter() - started
    context = RunContext(config, data, model, info, device, precision)
    return Prepared(context, result, source, seconds)
