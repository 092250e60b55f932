"""The geometric benchmark (G-MedMNIST): test ACC/AUC under D4, rotations and scalings.

Every transform is applied to the whole test split. Per transform the record
holds ACC, AUC and the invariance error: the mean absolute difference of the
predicted probabilities between transformed and reference images (the original
for D4 and scalings, the masked unrotated image for rotations). Worst-case
accuracy is Engstrom et al.'s worst-of-k: an example counts as correct only if
it is classified correctly under every transform of the set.

Predictions run in fp32 with TF32 off (``Precision("fp32")``), also on a GPU
and whatever the training precision: bf16 autocast or TF32 convolutions round
differently for a rotated input, which would hide the exact D4 invariance of
the equivariant models behind ~1e-3 of numerical noise. Records say so in
``env.precision.eval``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from eqdp.benchmarks.pretrained import resolve_evaluation
from eqdp.benchmarks.registry import Benchmark, Column, PlotSpec, register_benchmark
from eqdp.config.fields import config_class, option

if TYPE_CHECKING:
    from torch import nn

    from eqdp.config.run import RunConfig
    from eqdp.data.medmnist_data import Split
    from eqdp.data.transforms import GeometricTransform
    from eqdp.engine import ProgressCallback
    from eqdp.results.rows import Row


@config_class
class GeometricOptions:
    angle_step: float = option(
        15.0, "Rotations every this many degrees.", label="every{:g}°", gt=0, le=180
    )
    scales: tuple[float, ...] = option((0.9, 1.1), "Scale factors about the centre.")
    from_run: str | None = option(
        None, "Evaluate the checkpoint of this finished run instead of training.", key=False
    )


def geometric_evaluation(
    model: nn.Module,
    split: Split,
    task: str,
    transforms: list[GeometricTransform] | None = None,
    batch_size: int = 512,
) -> dict:
    """Per-transform metrics and the worst-case and invariance summaries of the record."""
    import numpy as np

    from eqdp.data.transforms import geometric_transforms, rotate
    from eqdp.engine import predict_scores
    from eqdp.engine.precision import FP32
    from eqdp.metrics import correct_fraction, evaluate

    transforms = geometric_transforms() if transforms is None else transforms
    labels = split.labels.cpu().numpy()

    def scores_of(images):
        return predict_scores(model, images, task, batch_size, FP32)

    scores = {t.name: scores_of(t(split.images)) for t in transforms}
    references = {"identity": lambda x: x, "rotate-0": lambda x: rotate(x, 0)}
    for name in {t.reference for t in transforms} - set(scores):
        scores[name] = scores_of(references[name](split.images))
    rows, correct = [], {}
    for transform in transforms:
        predicted = scores[transform.name]
        row = {**transform.as_dict(), **evaluate(task, labels, predicted)}
        row["invariance_error"] = float(np.abs(predicted - scores[transform.reference]).mean())
        rows.append(row)
        correct[transform.name] = correct_fraction(task, labels, predicted)

    def worst_of(kind: str | None) -> float | None:
        chosen = [correct[t.name] for t in transforms if kind is None or t.kind == kind]
        return float(np.min(chosen, axis=0).mean()) if chosen else None

    def invariance(kind: str, reducer) -> float | None:
        errors = [
            r["invariance_error"]
            for r in rows
            if r["kind"] == kind and r["name"] not in ("identity", "rotate-0")
        ]
        return float(reducer(errors)) if errors else None

    weakest = min(rows, key=lambda r: r["acc"])
    return {
        "transforms": rows,
        "worst_case_acc": worst_of(None),
        "worst_case_acc_d4": worst_of("d4"),
        "worst_case_acc_rotation": worst_of("rotation"),
        "min_transform_acc": weakest["acc"],
        "min_transform": weakest["name"],
        "mean_invariance_error_d4": invariance("d4", np.mean),
        "max_invariance_error_d4": invariance("d4", np.max),
        "mean_invariance_error_rotation": invariance("rotation", np.mean),
        "mean_invariance_error_scale": invariance("scale", np.mean),
    }


def run_geometric(config: RunConfig, on_progress: ProgressCallback | None = None):
    from eqdp.benchmarks.pretrained import train_or_load
    from eqdp.data.transforms import geometric_transforms
    from eqdp.engine.precision import FP32

    prepared = train_or_load(config, on_progress)
    context = prepared.context
    started = time.perf_counter()
    transforms = geometric_transforms(
        float(config.options["angle_step"]), tuple(config.options["scales"])
    )
    summary = geometric_evaluation(
        context.model,
        context.data.test,
        context.data.task,
        transforms,
        batch_size=config.train.eval_batch_size,
    )
    record = prepared.record({"geometric": summary}, time.perf_counter() - started, FP32)
    return record, prepared.fit.best_state


def geometric_columns(rows: list[Row]) -> list[Column]:
    """Clean ACC, worst-case ACC over D4 / rotations / everything, invariance errors."""

    def summary(name: str):
        return lambda record: record.get("geometric", {}).get(name)

    return [
        ("clean ACC", lambda r: r["metrics"]["test"]["acc"], False),
        ("worst ACC, D4", summary("worst_case_acc_d4"), False),
        ("worst ACC, rotations", summary("worst_case_acc_rotation"), False),
        ("worst ACC, all", summary("worst_case_acc"), False),
        ("max invariance error, D4", summary("max_invariance_error_d4"), True),
        ("mean invariance error, rotations", summary("mean_invariance_error_rotation"), True),
    ]


def geometric_table(rows: list[Row]) -> str:
    from eqdp.report.tables import metric_table

    return metric_table(rows, geometric_columns(rows))


def _points(record: dict, metric: str):
    return [
        ("", t["angle"], float(t[metric]))
        for t in record["geometric"]["transforms"]
        if t["kind"] == "rotation" and t.get(metric) is not None
    ]


GEOMETRIC = register_benchmark(
    Benchmark(
        name="geometric",
        description="train (or load --from-run) then test under D4, rotations every 15° and "
        "scalings",
        options=GeometricOptions,
        run=run_geometric,
        resolve=resolve_evaluation,
        evaluates_trained_model=True,
        section="geometric",
        table=geometric_table,
        columns=geometric_columns,
        plot=PlotSpec(
            x_label="rotation angle (degrees)",
            points=_points,
            log_x=False,
            fixed_ticks=(0, 90, 180, 270, 360),
        ),
    )
)
