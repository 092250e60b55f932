"""What a run reports while it works, for the CLI's bars and for notebooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class EpochStats:
    epoch: int
    epochs: int  # this run's total, which low-data may raise above the requested epochs
    train_loss: float
    val_acc: float
    val_auc: float
    lr: float
    seconds: float = 0.0  # wall time of this epoch's training passes


@dataclass(frozen=True)
class StageProgress:
    """Progress of the work after training (e.g. attacking the test set): ``done`` of ``total``."""

    stage: str
    done: int
    total: int
    status: str


# Called with an EpochStats after every training epoch, then with StageProgress updates.
ProgressCallback = Callable[[EpochStats | StageProgress], None]
