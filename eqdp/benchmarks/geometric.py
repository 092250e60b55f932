"""The geometric benchmark (G-MedMNIST): test ACC/AUC under D4, rotations and scalings.

Every transform is applied to the whole test split. Per transform the record
holds ACC, AUC and the invariance error: the mean absolute difference of the
predicted probabilities between transformed and reference images (the original
for D4 and scalings, the masked unrotated image for rotations). Worst-case
accuracy is Engstrom et al.'s worst-of-k: an example counts as correct only if
it is classified correctly under every transform of the set.

Predictions run in float32 with TF32 off, also on a GPU: bf16 autocast or TF32
convolutions round differently for a rotated input, which would hide the exact
D4 invariance of the equivariant models behind ~1e-3 of numerical noise.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from eqdp.benchmarks.base import RunConfig, accept_options, register_benchmark
from eqdp.benchmarks.pretrained import source_record, train_or_load
from eqdp.data import Split
from eqdp.data.transforms import GeometricTransform, geometric_transforms, rotate
from eqdp.metrics import correct_fraction, evaluate
from eqdp.train import ProgressCallback, scores_from_logits, to_model_input

OPTIONS: tuple[str, ...] = ("from_run",)


def check_geometric(config: RunConfig) -> None:
    accept_options(config, OPTIONS)
    source_record(config)


@contextmanager
def exact_float32() -> Iterator[None]:
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@torch.no_grad()
def predict_float32(model: nn.Module, images: torch.Tensor, task: str, batch_size: int):
    """Class probabilities ``(N, K)`` as numpy, model in eval mode, no autocast."""
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    with exact_float32():
        for start in range(0, len(images), batch_size):
            logits = model(to_model_input(images[start : start + batch_size].to(device)))
            outputs.append(scores_from_logits(task, logits.float()).cpu())
    return torch.cat(outputs).numpy()


def geometric_evaluation(
    model: nn.Module,
    split: Split,
    task: str,
    transforms: list[GeometricTransform] | None = None,
    batch_size: int = 512,
) -> dict:
    """Per-transform metrics and the worst-case and invariance summaries of the record."""
    transforms = geometric_transforms() if transforms is None else transforms
    labels = split.labels.cpu().numpy()

    def scores_of(images: torch.Tensor) -> np.ndarray:
        return predict_float32(model, images, task, batch_size)

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


@register_benchmark(
    "geometric",
    "train (or load --from-run) then test under D4, rotations every 15° and scalings",
    check=check_geometric,
)
def run_geometric(
    config: RunConfig, on_progress: ProgressCallback | None = None
) -> tuple[dict, dict]:
    prepared = train_or_load(config, on_progress)
    context = prepared.context
    started = time.perf_counter()
    summary = geometric_evaluation(
        context.model,
        context.data.test,
        context.data.task,
        batch_size=config.train.eval_batch_size,
    )
    record = prepared.record({"geometric": summary}, time.perf_counter() - started)
    return record, prepared.fit.best_state
