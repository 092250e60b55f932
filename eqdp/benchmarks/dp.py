"""The DP-SGD benchmark: one record per (target epsilon, seed)."""

from __future__ import annotations

import math

from opacus.validators import ModuleValidator

from eqdp.benchmarks.base import RunConfig, register_benchmark
from eqdp.benchmarks.common import build_record, prepare_run, standard_setting
from eqdp.benchmarks.low_data import subset_run, train_labels
from eqdp.data import dataset_info
from eqdp.data.subsets import check_fraction, stratified_subset
from eqdp.errors import EqdpError
from eqdp.models import create_model, model_spec
from eqdp.privacy import DP_OPTION_KEYS, dp_config_from_options, fit_private
from eqdp.train import ProgressCallback


def check_dp(config: RunConfig) -> None:
    unknown = set(config.options) - DP_OPTION_KEYS - {"fraction"}
    if unknown:
        raise EqdpError(f"benchmark 'dp' takes no option(s) {sorted(unknown)}")
    refusal = model_spec(config.model).dp_refusal
    if refusal:
        raise EqdpError(f"model {config.model!r} cannot be trained under DP-SGD: {refusal}")
    if "fraction" in config.options:
        fraction = check_fraction(float(config.options["fraction"]))
        n_train = len(stratified_subset(train_labels(config), fraction, config.seed))
    else:
        n_train = int(dataset_info(config.dataset)["n_samples"]["train"])
    dp_config_from_options(config.options, n_train, config.train.batch_size)


def dp_setting(config: RunConfig, epsilon: float | None, noise: float | None) -> str:
    budget = f"sigma={noise:g}" if noise is not None else f"eps={epsilon:g}"
    if "fraction" in config.options:
        budget += f" fraction={float(config.options['fraction']):g}"
    return f"{budget} {standard_setting(config)}"


@register_benchmark(
    "dp",
    "DP-SGD (Opacus): Poisson sampling, per-sample clipping, noise calibrated to a target "
    "epsilon; epsilon=inf is the same pipeline without noise or clipping",
    check=check_dp,
)
def run_dp(config: RunConfig, on_progress: ProgressCallback | None = None) -> tuple[dict, dict]:
    context, train, extra = prepare_run(config, dp=True), config.train, None
    if "fraction" in config.options:
        # DP on a subset: the accountant, delta and sampling rate all see the subset size.
        context, train, low_data = subset_run(context, float(config.options["fraction"]))
        extra = {"low_data": low_data}
    dp = dp_config_from_options(config.options, len(context.data.train), train.batch_size)
    problems = ModuleValidator.validate(context.model, strict=False)
    if problems:
        raise EqdpError(f"model {config.model!r} is not DP-compatible: {problems[0]}")

    def make_eval_model():
        return create_model(
            config.model,
            context.data.n_channels,
            context.data.n_classes,
            dp=True,
            image_size=config.size,
            **config.model_kwargs,
        )

    result, privacy = fit_private(
        context.model,
        make_eval_model,
        context.data,
        train,
        dp,
        config.seed,
        context.device,
        on_progress,
    )
    target = dp.target_epsilon if math.isfinite(dp.target_epsilon) else math.inf
    setting = dp_setting(config, target, config.options.get("noise_multiplier"))
    record = build_record(context, result, setting, privacy=privacy, extra=extra)
    return record, result.best_state
