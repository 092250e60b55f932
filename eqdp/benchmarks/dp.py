"""The DP-SGD benchmark: one record per (target epsilon, seed).

Options are ``eqdp.privacy.options.DPOptions``. Resolving fills in the delta
and physical batch size the run will use (they depend on the training set's
size, which ``--fraction`` changes) and checks them, so the record's
configuration is what ran; D4 augmentation is switched on when the
augmentation multiplicity asks for several views.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from eqdp.benchmarks.registry import Benchmark, PlotSpec, register_benchmark
from eqdp.config.fields import as_plain_dict, parse_config
from eqdp.privacy.budget import default_delta
from eqdp.privacy.options import DPOptions

if TYPE_CHECKING:
    from eqdp.config.run import RunConfig
    from eqdp.engine import ProgressCallback
    from eqdp.results.rows import Row


def resolve_dp(config: RunConfig) -> RunConfig:
    from eqdp.benchmarks.low_data import subset_size, train_labels
    from eqdp.errors import EqdpError
    from eqdp.models import model_spec

    refusal = model_spec(config.model).dp_refusal
    if refusal:
        raise EqdpError(f"model {config.model!r} cannot be trained under DP-SGD: {refusal}")
    options = parse_config(DPOptions, config.options, "benchmark dp")
    if options.fraction is not None:
        n_train = subset_size(config, options.fraction)
    else:
        n_train = len(train_labels(config))  # the file's, which may differ from medmnist.INFO
    options = options.resolved(n_train, config.train.batch_size)
    train = config.train
    if options.aug_mult > 1 and train.augment == "none":
        train = train.__class__(**{**as_plain_dict(train), "augment": "d4"})
    return config.replace(options=as_plain_dict(options), train=train)


def run_dp(config: RunConfig, on_progress: ProgressCallback | None = None):
    from opacus.validators import ModuleValidator

    from eqdp.benchmarks.common import build_model, build_record, prepare_run
    from eqdp.benchmarks.low_data import subset_run
    from eqdp.engine import fit
    from eqdp.errors import EqdpError
    from eqdp.privacy.dp_sgd import DPSGD

    options = parse_config(DPOptions, config.options, "benchmark dp")
    context, train, extra = prepare_run(config, dp=True), config.train, None
    if options.fraction is not None:
        # DP on a subset: the accountant, delta and sampling rate all see the subset size.
        context, train, low_data = subset_run(context, options.fraction)
        extra = {"low_data": low_data}
    problems = ModuleValidator.validate(context.model, strict=False)
    if problems:
        raise EqdpError(f"model {config.model!r} is not DP-compatible: {problems[0]}")
    input_canaries = None
    if options.audit and options.audit_kind == "input":
        input_canaries = audit_with_input_canaries(context, options.audit)
    strategy = DPSGD(options, lambda: build_model(config, context.data, dp=True), input_canaries)
    result = fit(
        context.model,
        context.data,
        train,
        config.seed,
        context.device,
        strategy=strategy,
        on_progress=on_progress,
    )
    return build_record(context, result, extra=extra), result.best_state


def audit_with_input_canaries(context, count: int):
    """The audit's input canaries, the included ones appended to ``context``'s training
    split (in place: the record's ``data.n_train`` counts what was trained on)."""
    from dataclasses import replace

    from eqdp.privacy.input_canaries import InputCanaries

    data = context.data
    canaries = InputCanaries(
        count, tuple(data.train.images.shape[1:]), data.n_classes, data.task,
        context.config.seed + 3,  # the gradient canaries use seed + 2
    )  # fmt: skip
    context.data = replace(data, train=canaries.extend(data.train))
    return canaries


def _label_defaults(record: dict) -> dict:
    privacy = record.get("privacy") or {}
    n_train = privacy.get("n_train") or record.get("data", {}).get("n_train")
    audit = privacy.get("audit") or {}
    if audit.get("kind") == "input":  # delta's rule counted every canary (DPOptions.resolved)
        n_train = audit["n_train_real"] + audit["canaries"]
    return {"delta": default_delta(n_train)} if n_train else {}


def audit_bound(record: dict) -> float | None:
    """The epsilon lower bound of the record's one-run audit (``dp --audit``), if any."""
    return ((record.get("privacy") or {}).get("audit") or {}).get("epsilon_lower")


def privacy_utility_table(rows: list[Row], metric: str = "auc") -> str:
    """One line per configuration but epsilon, one column per target epsilon.

    Audited rows (``options.audit=N`` in the README marker) show the audit's epsilon
    lower bound instead of the test metric: claimed (the column) against measured.
    """
    from eqdp.report.tables import pivot_table
    from eqdp.results.leaderboard import format_epsilon

    if rows and all(audit_bound(row.newest) is not None for row in rows):
        return pivot_table(
            rows,
            "epsilon",
            audit_bound,
            lambda eps: f"ε = {format_epsilon(eps)}: audit lower bound",
        )
    # Runs with a fixed noise multiplier (no epsilon) are in the leaderboard, not the pivot.
    return pivot_table(
        rows,
        "epsilon",
        lambda r: r["metrics"]["test"][metric],
        lambda eps: f"ε = {format_epsilon(eps)}",
    )


def dp_columns(rows: list[Row]) -> list:
    """The audit's epsilon lower bound beside AUC/ACC when some row was audited."""
    if any(audit_bound(row.newest) is not None for row in rows):
        return [("ε lower bound (audit)", audit_bound, False)]
    return []


def _points(record: dict, metric: str):
    value = record["metrics"]["test"].get(metric)
    epsilon = record["config"].get("options", {}).get("epsilon")
    if value is None or epsilon is None:
        return []
    epsilon = float(epsilon)
    return [("", epsilon if math.isfinite(epsilon) else None, float(value))]


DP = register_benchmark(
    Benchmark(
        name="dp",
        description="DP-SGD (Opacus): Poisson sampling, per-sample clipping, noise calibrated "
        "to a target epsilon; epsilon=inf is the same pipeline without noise or clipping",
        options=DPOptions,
        run=run_dp,
        resolve=resolve_dp,
        section="privacy",
        table=privacy_utility_table,
        columns=dp_columns,
        plot=PlotSpec(
            x_label="privacy budget epsilon",
            points=_points,
            axis="epsilon",
            reference="non-private (epsilon = inf)",
        ),
        label_defaults=_label_defaults,
    )
)
