"""The scaling benchmark: one record per point of a width, depth, resolution or data sweep.

A point is ``--axis`` and ``--value``:

- ``width``: the model's ``width_multiplier`` (fields x value), x = parameters;
- ``depth``: the model's ``depth_multiplier`` (blocks x value, rounded up), x = parameters;
- ``resolution``: train and test at ``value`` px, made by antialiased bilinear
  downsampling of the ``--size`` file (never upsampled), x = pixels per image;
- ``data``: a stratified training fraction, with the low-data benchmark's rule
  for epochs (optimiser steps as in the full-data run, at most x10), x = images.

``--epsilon`` trains the point under DP-SGD at that target (the DP benchmark's
pipeline and accountant); without it the point is non-private. Each record
carries what a law is fitted on: params, MACs at the trained resolution,
training FLOPs (3 x MACs x images seen), wall time, and the validation and test
loss, AUC and ACC (``metrics``). ``eqdp scaling fit`` fits the laws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from eqdp.benchmarks.registry import Benchmark, PlotSpec, register_benchmark
from eqdp.config.fields import config_class, option

if TYPE_CHECKING:
    from eqdp.config.run import RunConfig
    from eqdp.engine import ProgressCallback
    from eqdp.results.rows import Row

AXES: tuple[str, ...] = ("width", "depth", "resolution", "data")
# What each axis scales, the x of its law (a field of the record's ``scaling`` section).
AXIS_X: dict[str, str] = {
    "width": "params",
    "depth": "params",
    "resolution": "pixels",
    "data": "n_train",
}
# Axes that set a model option: the multipliers of the Eq-NASNet family, its twin, eq-resnet-d4.
MODEL_OPTIONS: dict[str, str] = {"width": "width_multiplier", "depth": "depth_multiplier"}
MIN_RESOLUTION = 8
RESAMPLING = "antialiased bilinear downsampling (torch interpolate, antialias=True)"
# Training FLOPs per image and MAC: forward (1 MAC = 2 FLOPs) plus a backward of about twice.
FLOPS_PER_MAC_TRAINED = 6


@config_class
class ScalingOptions:
    axis: Literal["width", "depth", "resolution", "data"] = option(
        help="What the sweep scales: width or depth (model options), resolution "
        "(px, downsampled from the --size file) or data (training fraction).",
        label="{}",
    )
    value: float = option(
        help="The point on the axis: width/depth multiplier, resolution in px, or "
        "training fraction in (0, 1]; one run per value.",
        label="at {:g}",
        sweep=True,
        gt=0,
        allow_inf_nan=False,
    )
    epsilon: float | None = option(
        None,
        "Train the point under DP-SGD at this target epsilon (inf: the DP pipeline "
        "without noise); unset: non-private.",
        label="ε={}",
        gt=0,
    )
    max_grad_norm: float = option(
        1.0, "Per-sample clipping bound C under --epsilon.", label="C={:g}", gt=0,
        allow_inf_nan=False,
    )  # fmt: skip


def _options(config: RunConfig) -> ScalingOptions:
    from eqdp.config.fields import parse_config

    return parse_config(ScalingOptions, config.options, "benchmark scaling")


def resolve_scaling(config: RunConfig) -> RunConfig:
    """Checks the point against model and data; width/depth become the model's options."""
    from eqdp.benchmarks.low_data import subset_size
    from eqdp.errors import EqdpError
    from eqdp.models import model_spec

    options = _options(config)
    spec = model_spec(config.model)
    model_kwargs = dict(config.model_kwargs)
    if options.axis in MODEL_OPTIONS:
        name, defaults = MODEL_OPTIONS[options.axis], spec.option_defaults()
        if name not in defaults:
            raise EqdpError(
                f"model {config.model!r} has no {name} option to scale its {options.axis}; "
                f"scalable models: {', '.join(scalable_models(options.axis))}"
            )
        # Resolving has filled in the model's default; any other value was asked for.
        given = model_kwargs.get(name)
        if given is not None and float(given) not in (options.value, defaults[name]):
            raise EqdpError(
                f"-k {name}={given} contradicts --axis {options.axis} "
                f"--value {options.value:g}; give the value once"
            )
        model_kwargs[name] = options.value
    elif options.axis == "resolution":
        if options.value != int(options.value) or not (
            MIN_RESOLUTION <= options.value <= config.size
        ):
            raise EqdpError(
                f"resolution {options.value:g} px: must be a whole number in "
                f"[{MIN_RESOLUTION}, {config.size}] (downsampled from the --size {config.size} "
                "file; give --size 64 for BreastMNIST's larger file)"
            )
    elif options.axis == "data":
        if options.value > 1:
            raise EqdpError(f"data fraction {options.value:g} is not in (0, 1]")
        subset_size(config, options.value)
    if options.epsilon is not None and spec.dp_refusal:
        raise EqdpError(f"model {config.model!r} cannot be trained under DP-SGD: {spec.dp_refusal}")
    return config.replace(model_kwargs=model_kwargs)


def scalable_models(axis: str) -> list[str]:
    from eqdp.models import list_models, model_spec

    option = MODEL_OPTIONS[axis]
    return [name for name in list_models() if option in model_spec(name).option_defaults()]


def run_scaling(config: RunConfig, on_progress: ProgressCallback | None = None):
    from eqdp.benchmarks.common import RunContext, build_record, load_run_data
    from eqdp.benchmarks.low_data import subset_run
    from eqdp.engine import Precision, fit, seed_everything, select_device
    from eqdp.models import describe_model
    from eqdp.search.compound import resized

    options = _options(config)
    private = options.epsilon is not None
    resolution = int(options.value) if options.axis == "resolution" else config.size
    device = select_device(config.device)
    data = load_run_data(config)
    source_size = data.size
    if resolution != data.size:
        data = resized(data, resolution)
    seed_everything(config.seed)
    model = point_model(config, data, resolution, private)
    info = describe_model(config.model, data.n_channels, data.n_classes, resolution, model=model)
    context = RunContext(config, data, model, info, device, Precision(config.train.precision))
    train, extra = config.train, {}
    if options.axis == "data":
        context, train, extra["low_data"] = subset_run(context, options.value)
    strategy = _dp_strategy(options, config, context, train) if private else None
    result = fit(
        context.model, context.data, train, config.seed, context.device,
        strategy=strategy, on_progress=on_progress,
    )  # fmt: skip
    point = {
        "axis": options.axis,
        "value": options.value,
        "x_name": AXIS_X[options.axis],
        "params": info.params,
        "macs": info.macs,
        "resolution": resolution,
        "pixels": resolution * resolution,
        "source_size": source_size,
        "resampling": RESAMPLING if resolution != source_size else None,
        "n_train": len(context.data.train),
        "epochs": train.epochs,
        "images_seen": result.images_seen,
        "train_flops": FLOPS_PER_MAC_TRAINED * info.macs * result.images_seen,
        "wall_seconds": round(result.train_seconds, 3),
        "private": private,
        "epsilon": options.epsilon,
    }
    point["x"] = point[point["x_name"]]
    return build_record(context, result, extra={**extra, "scaling": point}), result.best_state


def point_model(config: RunConfig, data, resolution: int, dp: bool):
    """The run's model built for the point's resolution (config.size is the source file's)."""
    from eqdp.models import create_model

    return create_model(
        config.model, data.n_channels, data.n_classes, dp=dp, image_size=resolution,
        **config.model_kwargs,
    )  # fmt: skip


def _dp_strategy(options: ScalingOptions, config: RunConfig, context, train):
    """The DP benchmark's DP-SGD at the point's target epsilon and the subset's size."""
    from opacus.validators import ModuleValidator

    from eqdp.errors import EqdpError
    from eqdp.privacy.dp_sgd import DPSGD
    from eqdp.privacy.options import DPOptions

    problems = ModuleValidator.validate(context.model, strict=False)
    if problems:
        raise EqdpError(f"model {config.model!r} is not DP-compatible: {problems[0]}")
    dp_options = DPOptions(epsilon=options.epsilon, max_grad_norm=options.max_grad_norm)
    dp_options = dp_options.resolved(len(context.data.train), train.batch_size)
    data, resolution = context.data, context.data.size
    return DPSGD(dp_options, lambda: point_model(config, data, resolution, dp=True))


def scaling_table(rows: list[Row], metric: str = "auc") -> str:
    """Per axis, one line per series (model, dataset, budget), one column per point."""
    from dataclasses import replace

    from eqdp.report.tables import pivot_table

    parts = []
    for axis in AXES:
        # The point's multiplier is the pivot, not part of the line's identity.
        option = MODEL_OPTIONS.get(axis)
        chosen = [
            replace(row, material={**row.material, "model_kwargs": {
                k: v for k, v in row.material["model_kwargs"].items() if k != option}})
            for row in rows if row.material["options"].get("axis") == axis
        ]  # fmt: skip
        if not chosen:
            continue
        table = pivot_table(
            chosen, "value", lambda r: r["metrics"]["test"][metric],
            lambda x, axis=axis: f"{axis} {x:g}",
        )  # fmt: skip
        parts.append(f"**{axis}** (test {metric.upper()})\n\n{table}")
    return "\n".join(parts) or "_No records yet._\n"


def _draw(records: list[dict], out, metric: str, dataset: str | None):
    from eqdp.scaling.plot import draw_scaling

    return draw_scaling(records, out, metric, dataset)


SCALING = register_benchmark(
    Benchmark(
        name="scaling",
        description="one point of a width, depth, resolution or data sweep (--axis, --value), "
        "optionally under DP-SGD (--epsilon); laws: eqdp scaling fit",
        options=ScalingOptions,
        run=run_scaling,
        resolve=resolve_scaling,
        section="scaling",
        table=scaling_table,
        plot=PlotSpec(
            x_label="scaled quantity", points=lambda record, metric: [],
            metrics=("loss", "1-auc"), draw=_draw,
        ),  # fmt: skip
        metrics=("auc", "acc", "loss"),
    )
)
