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
class TrainingProgress:
    """Within training: ``images`` of the ``planned`` training images seen, ``seconds`` of
    training so far. Sent when training starts (images 0: the plan) and then at most every
    ``TrainingProgress.EVERY`` seconds, so a bar has an ETA long before the first epoch ends."""

    epoch: int
    epochs: int
    images: int
    planned: int  # epochs x training examples (Poisson batches: in expectation)
    seconds: float

    EVERY = 0.5

    def eta_seconds(self) -> float | None:
        if self.images <= 0 or self.seconds <= 0:
            return None
        return self.seconds / self.images * max(self.planned - self.images, 0)

    def __str__(self) -> str:
        return f"epoch {self.epoch}/{self.epochs}: {self.images}/{self.planned} images"


@dataclass(frozen=True)
class StageProgress:
    """Progress of the work after training (e.g. attacking the test set): ``done`` of ``total``."""

    stage: str
    done: int
    total: int
    status: str


# Called with TrainingProgress during training, an EpochStats after every training epoch,
# then with StageProgress updates.
ProgressCallback = Callable[[EpochStats | StageProgress | TrainingProgress], None]
