"""DP-SGD training with Opacus: Poisson sampling, physical batches, calibrated noise.

Logical batches are drawn by Poisson sampling with rate ``q = 1 / steps_per_epoch``
(``steps_per_epoch = round(N / batch_size)``), so the sampler, the optimizer's
accountant hook and the noise calibration all use the same ``q``. Opacus'
``BatchMemoryManager`` splits each logical batch into physical ones. The noise
is calibrated to the exact number of steps that will run; the record's epsilon
is what the accountant reports for the steps that did run.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import torch
from opacus import GradSampleModule, PrivacyEngine
from opacus.optimizers import DPOptimizer
from opacus.utils.batch_memory_manager import BatchMemoryManager
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from torch import nn
from torch.utils.data import DataLoader, Dataset

from eqdp.data import BatchAugmenter, MedMNISTData
from eqdp.errors import EqdpError
from eqdp.privacy.accounting import calibrate_noise, rdp_epsilon, spent_epsilon
from eqdp.privacy.config import DPConfig
from eqdp.privacy.grad_sample.equivariant_conv import skip_batch_filter_gradients
from eqdp.train import (
    EpochStats,
    FitResult,
    ModelSelection,
    ProgressCallback,
    TrainConfig,
    autocast_for,
    evaluate_split,
    loss_for,
    make_lr_schedule,
    seed_everything,
    to_model_input,
)

# "No clipping" for the epsilon=inf reference: no real gradient norm comes near it,
# and unlike inf it keeps Opacus' noise std (multiplier * bound) equal to 0, not NaN.
UNBOUNDED_NORM = 1e12

P = ParamSpec("P")
R = TypeVar("R")


class _Indices(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return index


def _collate_indices(batch: list[int]) -> torch.Tensor:
    return torch.tensor(batch, dtype=torch.long)  # empty batches stay valid


def poisson_loader(
    n: int, sample_rate: float, steps: int, generator: torch.Generator
) -> DataLoader:
    """Logical batches of example indices, each example included with probability q."""
    sampler = UniformWithReplacementSampler(
        num_samples=n, sample_rate=sample_rate, generator=generator, steps=steps
    )
    return DataLoader(_Indices(n), batch_sampler=sampler, collate_fn=_collate_indices)


@dataclass(frozen=True)
class Schedule:
    steps_per_epoch: int
    sample_rate: float
    total_steps: int

    @classmethod
    def for_run(cls, n_train: int, batch_size: int, epochs: int) -> Schedule:
        steps = max(1, round(n_train / batch_size))
        return cls(steps, 1.0 / steps, steps * epochs)


def average_over_views(optimizer: DPOptimizer, views: int) -> None:
    """Augmentation multiplicity: mean per-sample gradient over each example's K views,
    before clipping, so the sensitivity is still that of one example (De et al. 2022)."""
    for parameter in optimizer.params:
        sample = parameter.grad_sample
        if sample is None:
            continue
        grouped = sample.reshape(sample.shape[0] // views, views, *sample.shape[1:])
        parameter.grad_sample = grouped.mean(dim=1)


@contextlib.contextmanager
def _releasing_per_sample_state(
    private_model: GradSampleModule, optimizer: DPOptimizer
) -> Iterator[None]:
    """Drop the last step's per-sample gradients and Opacus' hooks when training ends.

    The hooks tie the model into reference cycles, so without this the last physical
    batch's per-sample gradients (batch x parameters: 5.7 GB for ResNet-18 at 128)
    outlive the run until Python's cycle collector happens to run, and a process
    running several DP runs grew to 20 GB.
    """
    try:
        yield
    finally:
        optimizer.zero_grad(set_to_none=True)
        private_model.remove_hooks()


def _without_expected_warnings(function: Callable[P, R]) -> Callable[P, R]:
    """Silence two warnings DP training raises on purpose, once per step."""

    @functools.wraps(function)
    def quiet(*args: P.args, **kwargs: P.kwargs) -> R:
        with warnings.catch_warnings():
            # The first layer's input needs no gradient (full backward hook), and seeded
            # noise is the point of a reproducible benchmark.
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            warnings.filterwarnings("ignore", message="Secure RNG turned off")
            return function(*args, **kwargs)

    return quiet


@_without_expected_warnings
def fit_private(
    model: nn.Module,
    make_eval_model: Callable[[], nn.Module],
    data: MedMNISTData,
    train: TrainConfig,
    dp: DPConfig,
    seed: int,
    device: torch.device,
    on_progress: ProgressCallback | None = None,
) -> tuple[FitResult, dict]:
    """Train under DP-SGD; return the fit result and the record's ``privacy`` block."""
    seed_everything(seed)
    n_train = len(data.train)
    schedule = Schedule.for_run(n_train, train.batch_size, train.epochs)
    if dp.noise_multiplier is not None:
        noise, clip = dp.noise_multiplier, dp.max_grad_norm
    elif math.isfinite(dp.target_epsilon):
        noise = calibrate_noise(
            dp.target_epsilon, dp.delta, schedule.sample_rate, schedule.total_steps, dp.accountant
        )
        clip = dp.max_grad_norm
    else:
        noise, clip = 0.0, UNBOUNDED_NORM

    model.to(device)
    skip_batch_filter_gradients(model)  # per-sample gradients replace the batch ones
    data = data.to(device)
    eval_model = make_eval_model().to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=train.lr, weight_decay=train.weight_decay)
    engine = PrivacyEngine(accountant=dp.accountant)
    sampler_generator = torch.Generator().manual_seed(seed)
    private_model, dp_optimizer, loader = engine.make_private(
        module=model,
        optimizer=optimizer,
        data_loader=poisson_loader(
            n_train, schedule.sample_rate, schedule.steps_per_epoch, sampler_generator
        ),
        noise_multiplier=noise,
        max_grad_norm=clip,
        poisson_sampling=False,  # the loader above already samples Poisson batches
        noise_generator=torch.Generator(device=device).manual_seed(seed + 1),
    )
    # Opacus floors N*q to an int for the mean; keep the exact expected batch size.
    dp_optimizer.expected_batch_size = n_train * schedule.sample_rate
    lr_schedule = make_lr_schedule(dp_optimizer, train)
    augmenter = BatchAugmenter("d4" if dp.aug_mult > 1 else train.augment, seed)

    selection = ModelSelection()
    train_seconds, examples_seen = 0.0, 0
    with _releasing_per_sample_state(private_model, dp_optimizer):
        for epoch in range(1, train.epochs + 1):
            private_model.train()
            started = time.perf_counter()
            total_loss, counted = 0.0, 0
            with BatchMemoryManager(
                data_loader=loader,
                max_physical_batch_size=dp.physical_batch_size,
                optimizer=dp_optimizer,
            ) as physical_batches:
                for index in physical_batches:
                    index = index.to(device)
                    images, labels = data.train.images[index], data.train.labels[index]
                    if dp.aug_mult > 1:
                        images = images.repeat_interleave(dp.aug_mult, dim=0)
                        labels = labels.repeat_interleave(dp.aug_mult, dim=0)
                    images = augmenter(images)
                    dp_optimizer.zero_grad(set_to_none=True)
                    with autocast_for(device):
                        loss = loss_for(data.task, private_model(to_model_input(images)), labels)
                    loss.backward()
                    if dp.aug_mult > 1:
                        average_over_views(dp_optimizer, dp.aug_mult)
                    dp_optimizer.step()
                    if len(index):
                        total_loss += loss.item() * len(index)
                        counted += len(index)
            train_seconds += time.perf_counter() - started
            examples_seen += counted
            lr = dp_optimizer.param_groups[0]["lr"]
            lr_schedule.step()

            eval_model.load_state_dict(model.state_dict())
            val = evaluate_split(eval_model, data.val, data.task, train.eval_batch_size)
            mean_loss = total_loss / max(counted, 1)
            stats = EpochStats(epoch, train.epochs, mean_loss, val["acc"], val["auc"], lr)
            selection.observe(stats, val, model)
            if on_progress is not None:
                on_progress(stats)

    assert selection.best_state is not None
    eval_model.load_state_dict(selection.best_state)
    test = evaluate_split(eval_model, data.test, data.task, train.eval_batch_size)
    privacy = _privacy_block(engine, dp, noise, clip, schedule, train, n_train)
    return selection.result(test, train_seconds, examples_seen), privacy


def _privacy_block(
    engine: PrivacyEngine,
    dp: DPConfig,
    noise: float,
    clip: float,
    schedule: Schedule,
    train: TrainConfig,
    n_train: int,
) -> dict:
    steps = sum(entry[2] for entry in engine.accountant.history)
    rates = {entry[1] for entry in engine.accountant.history}
    if steps != schedule.total_steps or rates - {schedule.sample_rate}:
        raise EqdpError(
            f"internal accounting mismatch: ran {steps} steps at rates {sorted(rates)}, "
            f"planned {schedule.total_steps} at {schedule.sample_rate}"
        )
    private = dp.private
    epsilon = None
    if private:
        epsilon = float(engine.accountant.get_epsilon(delta=dp.delta))
        recomputed = spent_epsilon(dp.accountant, noise, schedule.sample_rate, steps, dp.delta)
        if not math.isclose(epsilon, recomputed, rel_tol=1e-9):
            raise EqdpError(f"accountant disagreement: {epsilon} vs {recomputed}")
        if math.isfinite(dp.target_epsilon) and epsilon > dp.target_epsilon:
            raise EqdpError(f"spent epsilon {epsilon:.4f} exceeds the target {dp.target_epsilon}")
    return {
        "private": private,
        "epsilon": epsilon,
        "target_epsilon": dp.target_epsilon if math.isfinite(dp.target_epsilon) else None,
        "delta": dp.delta,
        "noise_multiplier": noise,
        "max_grad_norm": clip if private else None,
        "sample_rate": schedule.sample_rate,
        "steps": steps,
        "epochs": train.epochs,
        "accountant": dp.accountant,
        "rdp_epsilon": rdp_epsilon(noise, schedule.sample_rate, steps, dp.delta)
        if private and noise > 0
        else None,
        "logical_batch_size": train.batch_size,
        "expected_batch_size": schedule.sample_rate * n_train,
        "physical_batch_size": dp.physical_batch_size,
        "aug_mult": dp.aug_mult,
        "sampling": "poisson",
        "clipping": "flat",
        "n_train": n_train,
    }
