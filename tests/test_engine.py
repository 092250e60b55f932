"""Step engines: selection, the static-buffer body of the captured step, precision policies.

The CUDA graph itself needs a GPU: ``scripts/cuda_check.py`` compares captured and
eager losses there. On CPU, ``GraphSteps(capture=False)`` runs the very body a graph
would record (static buffers, device-side gather, lr tensor, warm-up then restore),
so everything but the capture is checked here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import eqdp
from eqdp.config import TrainConfig
from eqdp.data import load_dataset
from eqdp.data.augment import BatchAugmenter
from eqdp.engine import Precision, fit
from eqdp.engine.loop import make_lr_schedule
from eqdp.engine.precision import resolve_precision
from eqdp.engine.steps import EagerSteps, GraphSteps, resolve_engine
from eqdp.engine.strategy import TrainingStrategy
from eqdp.errors import EqdpError

# Eager Adam takes a Python-float lr, the captured body a tensor lr: the same update in
# a different rounding order, so the losses agree to float32 rounding, not bitwise.
LOSS_TOLERANCE = 1e-5


@pytest.mark.parametrize(
    ("requested", "device", "strategy", "expected"),
    [
        ("auto", "cuda", "standard", "graph"),
        ("auto", "cpu", "standard", "eager"),
        ("auto", "cuda", "dp-sgd", "eager"),
        ("graph", "cuda", "dp-sgd", "eager"),
        ("eager", "cuda", "standard", "eager"),
        ("graph", "cuda", "standard", "graph"),
    ],
)
def test_engine_resolution(requested: str, device: str, strategy: str, expected: str) -> None:
    engine, reason = resolve_engine(requested, device, strategy)
    assert engine == expected and reason


def test_graph_engine_is_refused_without_a_gpu_and_unknown_engines_name_the_choices() -> None:
    with pytest.raises(EqdpError, match="needs a CUDA device"):
        resolve_engine("graph", "cpu", "standard")
    with pytest.raises(EqdpError, match="auto, eager, graph"):
        resolve_engine("fast", "cuda", "standard")


@pytest.mark.parametrize(
    ("requested", "device", "expected"),
    [("auto", "cuda", "tf32"), ("auto", "cpu", "fp32"), ("fp32", "cuda", "fp32"),
     ("tf32", "cuda", "tf32"), ("bf16", "cuda", "bf16")],
)  # fmt: skip
def test_precision_resolution(requested: str, device: str, expected: str) -> None:
    assert resolve_precision(requested, device) == expected


@pytest.mark.parametrize("policy", ["tf32", "bf16"])
def test_gpu_only_precisions_are_refused_on_cpu(policy: str) -> None:
    with pytest.raises(EqdpError, match=f"precision '{policy}' needs a CUDA device"):
        resolve_precision(policy, "cpu")


def _train_steps(synthetic_dir: Path, captured_body: bool, augment: str = "none") -> list[float]:
    """Per-epoch summed losses of 3 epochs of batch 24 (a partial last batch each epoch)."""
    data = load_dataset("breastmnist", 28, synthetic_dir, verify_md5=False)
    train = TrainConfig(epochs=3, batch_size=24, lr=3e-3, augment=augment)
    torch.manual_seed(5)
    model = eqdp.create_model("cnn", 1, 2, width=4)
    strategy = TrainingStrategy()
    strategy.start(model, len(data.train), train, 5, torch.device("cpu"))
    augmenter = BatchAugmenter(augment, 5)
    if captured_body:
        sizes = [24, len(data.train) % 24]
        steps = GraphSteps(model, strategy.optimizer, data.task, Precision("fp32"), augmenter,
                           data.train, sizes, capture=False)  # fmt: skip
    else:
        steps = EagerSteps(strategy, data.task, Precision("fp32"), augmenter)
    schedule = make_lr_schedule(strategy.optimizer, train)
    losses = []
    for _ in range(train.epochs):
        for index in strategy.batches():
            steps.step(data.train, index)
        losses.append(steps.take_loss_sum())
        schedule.step()
    return losses


@pytest.mark.parametrize("augment", ["none", "d4"])
def test_captured_body_takes_the_eager_steps(synthetic_dir: Path, augment: str) -> None:
    """Same batches (partial last one included), same updates, lr milestones reached, and
    the warm-up iterations leave no trace in weights, BatchNorm statistics or Adam."""
    data = load_dataset("breastmnist", 28, synthetic_dir, verify_md5=False)
    assert len(data.train) % 24, "the fixture must leave a partial last batch"
    eager = _train_steps(synthetic_dir, captured_body=False, augment=augment)
    captured = _train_steps(synthetic_dir, captured_body=True, augment=augment)
    assert captured == pytest.approx(eager, rel=LOSS_TOLERANCE)


def test_records_name_the_engine_that_ran(synthetic_dir: Path) -> None:
    data = load_dataset("breastmnist", 28, synthetic_dir, verify_md5=False)
    model = eqdp.create_model("cnn", 1, 2, width=4)
    result = fit(model, data, TrainConfig(epochs=1, batch_size=16), 0, torch.device("cpu"))
    assert result.engine == {"name": "eager", "reason": "cpu: CUDA graphs need a GPU"}
