"""The training loop: every benchmark trains through ``fit``."""

from __future__ import annotations

import math
import time
import warnings

import torch
from torch import nn

from eqdp.config.train import TrainConfig
from eqdp.data.augment import BatchAugmenter
from eqdp.data.medmnist_data import MedMNISTData
from eqdp.engine.device import seed_everything
from eqdp.engine.precision import Precision
from eqdp.engine.predict import evaluate_split
from eqdp.engine.progress import EpochStats, ProgressCallback, TrainingProgress
from eqdp.engine.selection import FitResult, ModelSelection
from eqdp.engine.steps import EagerSteps, GraphSteps, resolve_engine
from eqdp.engine.strategy import TrainingStrategy


def make_lr_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig):
    milestones = sorted({max(1, math.floor(m * config.epochs)) for m in config.lr_milestones})
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=config.lr_gamma)


def fit(
    model: nn.Module,
    data: MedMNISTData,
    train: TrainConfig,
    seed: int,
    device: torch.device,
    strategy: TrainingStrategy | None = None,
    on_progress: ProgressCallback | None = None,
    evaluate_test: bool = True,
) -> FitResult:
    """Train, keep the checkpoint with the best validation AUC, test it once.

    ``train.precision`` may be ``auto``; the policy used is ``Precision.resolve``'s.
    ``evaluate_test=False`` (architecture search) never reads the test split:
    the result's ``test`` is empty.
    """
    strategy = strategy or TrainingStrategy()
    precision = Precision.resolve(train.precision, device)
    seed_everything(seed)
    model.to(device)
    data = data.to(device)
    n_train = len(data.train)
    strategy.start(model, n_train, train, seed, device)
    try:
        augmenter = BatchAugmenter(strategy.effective_augment(train), seed)
        steps = make_steps(train, strategy, data, precision, augmenter, device)
        schedule = make_lr_schedule(strategy.optimizer, train)  # after make_steps: lr tensors
        selection = ModelSelection()
        train_seconds, images_seen = 0.0, 0
        planned = train.epochs * n_train
        if on_progress is not None:
            on_progress(TrainingProgress(1, train.epochs, 0, planned, 0.0))
        for epoch in range(1, train.epochs + 1):
            strategy.module.train()
            started = last_report = time.perf_counter()
            counted = 0
            for index in strategy.batches():
                steps.step(data.train, index)
                counted += len(index)
                now = time.perf_counter()
                if on_progress is not None and now - last_report >= TrainingProgress.EVERY:
                    last_report = now
                    on_progress(
                        TrainingProgress(
                            epoch, train.epochs, images_seen + counted, planned,
                            train_seconds + now - started,
                        )
                    )  # fmt: skip
            total_loss = steps.take_loss_sum()  # the epoch's one host sync of the loss
            seconds = time.perf_counter() - started
            train_seconds += seconds
            images_seen += counted
            lr = float(strategy.optimizer.param_groups[0]["lr"])
            with warnings.catch_warnings():
                # A replayed graph steps the optimizer without calling optimizer.step(),
                # which the schedule counts; its "step() before optimizer.step()" is void.
                warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*optimizer.step")
                schedule.step()

            evaluated = strategy.evaluation_model()
            val = evaluate_split(evaluated, data.val, data.task, train.eval_batch_size, precision)
            stats = EpochStats(
                epoch, train.epochs, total_loss / max(counted, 1), val["acc"], val["auc"], lr,
                round(seconds, 3),
            )  # fmt: skip
            selection.observe(stats, val, model)
            if on_progress is not None:
                on_progress(stats)

        privacy = strategy.finish()
    finally:
        strategy.close()
    assert selection.best_state is not None
    best = strategy.evaluation_model(selection.best_state)
    test = (
        evaluate_split(best, data.test, data.task, train.eval_batch_size, precision)
        if evaluate_test else {}
    )  # fmt: skip
    result = selection.result(test, train_seconds, images_seen)
    result.privacy = privacy
    result.engine = {"name": steps.name, "reason": steps.reason}
    return result


def make_steps(
    train: TrainConfig,
    strategy: TrainingStrategy,
    data: MedMNISTData,
    precision: Precision,
    augmenter: BatchAugmenter,
    device: torch.device,
) -> EagerSteps | GraphSteps:
    """The run's step engine: a captured CUDA graph where ``resolve_engine`` allows it.

    A capture that fails falls back to the eager engine with a warning (the record
    names the engine that ran); the strategy's optimizer is then made afresh, since
    the failed warm-up may have stepped it.
    """
    engine, reason = resolve_engine(train.engine, device.type, strategy.name)
    if engine == "graph":
        n_train, batch = len(data.train), train.batch_size
        partial = n_train % batch if n_train > batch else 0  # the last batch of an epoch
        sizes = [min(batch, n_train)] + ([partial] if partial else [])
        try:
            steps = GraphSteps(
                strategy.module, strategy.optimizer, data.task, precision, augmenter,
                data.train, sizes,
            )  # fmt: skip
            steps.reason = reason
            return steps
        except Exception as error:  # noqa: BLE001 - any capture failure: run eagerly instead
            if train.engine == "graph":
                raise
            text = str(error).strip()
            first_line = text.splitlines()[0] if text else type(error).__name__
            warnings.warn(f"CUDA graph capture failed ({first_line}); training eagerly",
                          stacklevel=2)  # fmt: skip
            strategy.restart_optimizer()
            reason = f"capture failed: {first_line[:200]}"
    steps = EagerSteps(strategy, data.task, precision, augmenter)
    steps.reason = reason
    return steps
