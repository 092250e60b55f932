"""Model selection on validation AUC, and what a finished fit returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from eqdp.engine.progress import EpochStats


@dataclass
class FitResult:
    best_epoch: int
    best_state: dict[str, torch.Tensor]
    val: dict[str, float]
    test: dict[str, float]
    train_seconds: float
    images_per_second: float
    history: list[EpochStats] = field(default_factory=list)
    privacy: dict | None = None  # the DP strategy's accounting, for the record
    images_seen: int = 0  # training examples passed forward and backward (Poisson: sampled)
    engine: dict | None = None  # the step engine that ran and why (eqdp.engine.steps)


class ModelSelection:
    """Keeps the epoch with the best validation AUC (the first on ties; NaN ranks lowest)."""

    def __init__(self) -> None:
        self.best_key = -math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_val: dict[str, float] | None = None
        self.history: list[EpochStats] = []

    def observe(self, stats: EpochStats, val: dict[str, float], model: nn.Module) -> None:
        self.history.append(stats)
        key = -1.0 if math.isnan(val["auc"]) else val["auc"]
        if key > self.best_key:
            self.best_key, self.best_epoch, self.best_val = key, stats.epoch, val
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def result(self, test: dict[str, float], train_seconds: float, images_seen: int) -> FitResult:
        assert self.best_state is not None and self.best_val is not None
        return FitResult(
            best_epoch=self.best_epoch,
            best_state=self.best_state,
            val=self.best_val,
            test=test,
            train_seconds=train_seconds,
            images_per_second=images_seen / max(train_seconds, 1e-9),
            history=self.history,
            images_seen=images_seen,
        )
