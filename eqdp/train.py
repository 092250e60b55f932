"""One training loop for every benchmark: in-memory batches, best-val-AUC model selection.

Defaults follow the MedMNIST v2 protocol: Adam, lr 1e-3, batch 128, 100 epochs,
lr x0.1 at 50% and 75% of the epochs, cross-entropy (BCE for multi-label).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eqdp.data import BatchAugmenter, MedMNISTData, Split
from eqdp.data.medmnist_data import MULTI_LABEL
from eqdp.errors import EqdpError, unknown_choice
from eqdp.metrics import evaluate

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_milestones: tuple[float, ...] = (0.5, 0.75)
    lr_gamma: float = 0.1
    augment: str = "none"
    eval_batch_size: int = 512

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise EqdpError(f"epochs must be a positive integer, got {self.epochs}")
        if self.batch_size <= 0:
            raise EqdpError(f"batch size must be a positive integer, got {self.batch_size}")
        if not self.lr > 0:
            raise EqdpError(f"learning rate must be > 0, got {self.lr}")


@dataclass
class EpochStats:
    epoch: int
    epochs: int  # this run's total, which low-data may raise above the requested epochs
    train_loss: float
    val_acc: float
    val_auc: float
    lr: float


@dataclass
class FitResult:
    best_epoch: int
    best_state: dict[str, torch.Tensor]
    val: dict[str, float]
    test: dict[str, float]
    train_seconds: float
    images_per_second: float
    history: list[EpochStats] = field(default_factory=list)


@dataclass(frozen=True)
class StageProgress:
    """Progress of the work after training (e.g. attacking the test set): ``done`` of ``total``."""

    stage: str
    done: int
    total: int
    status: str


# Called with an EpochStats after every training epoch, then with StageProgress updates.
ProgressCallback = Callable[[EpochStats | StageProgress], None]


def select_device(name: str = "auto") -> torch.device:
    if name not in DEVICES:
        raise unknown_choice("device", name, DEVICES)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise EqdpError("device 'cuda' requested but no CUDA GPU is visible; use --device cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float in [-1, 1], MedMNIST's Normalize(mean=.5, std=.5)."""
    return images.float().div_(255.0).sub_(0.5).div_(0.5)


def loss_for(task: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if task == MULTI_LABEL:
        return F.binary_cross_entropy_with_logits(logits, labels.float())
    return F.cross_entropy(logits, labels[:, 0])


def scores_from_logits(task: str, logits: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(logits) if task == MULTI_LABEL else torch.softmax(logits, dim=1)


def autocast_for(device: torch.device):
    # bf16 autocast on CUDA needs no loss scaler; CPU runs in float32.
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def predict_scores(model: nn.Module, split: Split, task: str, batch_size: int = 512) -> np.ndarray:
    """Class probabilities ``(N, K)`` for every image of a split, model in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    for start in range(0, len(split), batch_size):
        images = to_model_input(split.images[start : start + batch_size].to(device))
        with autocast_for(device):
            logits = model(images)
        outputs.append(scores_from_logits(task, logits.float()).cpu())
    model.train(was_training)
    if not outputs:
        return np.zeros((0, 0))
    return torch.cat(outputs).numpy()


def evaluate_split(model: nn.Module, split: Split, task: str, batch_size: int = 512):
    scores = predict_scores(model, split, task, batch_size)
    return evaluate(task, split.labels.cpu().numpy(), scores)


def make_lr_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig):
    milestones = sorted({max(1, math.floor(m * config.epochs)) for m in config.lr_milestones})
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=config.lr_gamma)


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
        )


def fit(
    model: nn.Module,
    data: MedMNISTData,
    config: TrainConfig,
    seed: int,
    device: torch.device,
    on_progress: ProgressCallback | None = None,
) -> FitResult:
    """Train, keep the checkpoint with the best validation AUC, test it."""
    seed_everything(seed)
    model.to(device)
    data = data.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
    schedule = make_lr_schedule(optimizer, config)
    augmenter = BatchAugmenter(config.augment, seed)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    n_train = len(data.train)

    selection = ModelSelection()
    train_seconds = 0.0
    for epoch in range(1, config.epochs + 1):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(n_train, generator=generator).to(device)
        total_loss = 0.0
        for start in range(0, n_train, config.batch_size):
            index = order[start : start + config.batch_size]
            images = augmenter(data.train.images[index])
            with autocast_for(device):
                loss = loss_for(data.task, model(to_model_input(images)), data.train.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(index)
        train_seconds += time.perf_counter() - started
        lr = optimizer.param_groups[0]["lr"]
        schedule.step()

        val = evaluate_split(model, data.val, data.task, config.eval_batch_size)
        mean_loss = total_loss / max(n_train, 1)
        stats = EpochStats(epoch, config.epochs, mean_loss, val["acc"], val["auc"], lr)
        selection.observe(stats, val, model)
        if on_progress is not None:
            on_progress(stats)

    assert selection.best_state is not None
    model.load_state_dict(selection.best_state)
    test = evaluate_split(model, data.test, data.task, config.eval_batch_size)
    return selection.result(test, train_seconds, n_train * config.epochs)
