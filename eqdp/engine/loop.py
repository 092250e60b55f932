"""The training loop: every benchmark trains through ``fit``."""

from __future__ import annotations

import math
import time

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
from eqdp.engine.strategy import TrainingStrategy
from eqdp.engine.task import loss_for, to_model_input


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
        schedule = make_lr_schedule(strategy.optimizer, train)
        augmenter = BatchAugmenter(strategy.effective_augment(train), seed)
        selection = ModelSelection()
        train_seconds, images_seen = 0.0, 0
        planned = train.epochs * n_train
        if on_progress is not None:
            on_progress(TrainingProgress(1, train.epochs, 0, planned, 0.0))
        for epoch in range(1, train.epochs + 1):
            strategy.module.train()
            started = last_report = time.perf_counter()
            total_loss, counted = 0.0, 0
            for index in strategy.batches():
                images, labels = strategy.expand(data.train.images[index], data.train.labels[index])
                images = augmenter(images)
                strategy.optimizer.zero_grad(set_to_none=True)
                with precision.context():
                    loss = loss_for(data.task, strategy.module(to_model_input(images)), labels)
                loss.backward()
                strategy.after_backward()
                strategy.optimizer.step()
                if len(index):  # a Poisson batch may be empty; it still takes its (noisy) step
                    total_loss += loss.item() * len(index)
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
            seconds = time.perf_counter() - started
            train_seconds += seconds
            images_seen += counted
            lr = strategy.optimizer.param_groups[0]["lr"]
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
    return result
