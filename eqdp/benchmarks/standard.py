"""The standard benchmark: full training split, MedMNIST v2 protocol."""

from __future__ import annotations

from eqdp.benchmarks.base import RunConfig, register_benchmark
from eqdp.benchmarks.common import build_record, prepare_run, standard_setting
from eqdp.train import ProgressCallback, fit


@register_benchmark(
    "standard", "train on the full training split, select on val AUC, report test ACC/AUC"
)
def run_standard(
    config: RunConfig, on_progress: ProgressCallback | None = None
) -> tuple[dict, dict]:
    context = prepare_run(config)
    result = fit(
        context.model, context.data, config.train, config.seed, context.device, on_progress
    )
    return build_record(context, result, standard_setting(config)), result.best_state
