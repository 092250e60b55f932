"""DP-SGD as a training strategy: Poisson sampling, per-sample clipping, noise, accounting.

Logical batches are drawn by Poisson sampling with rate ``q = 1 / steps_per_epoch``
(``steps_per_epoch = round(N / batch_size)``), so the sampler, the optimizer's
accountant hook and the noise calibration all use the same ``q``. Opacus'
``BatchMemoryManager`` splits each logical batch into physical ones. The noise
is calibrated to the exact number of steps that will run; the record's epsilon
is what the accountant reports for the steps that did run, and the run fails if
the accountant's history disagrees with the plan or the spent epsilon exceeds
the target.

Two exact ways to clip (``DPOptions.clipping``): ``instantiate`` is Opacus' hooks
(every per-example gradient of the physical batch held at once); ``ghost`` is
eqdp's norm-only clipping (``eqdp.privacy.norm_sample``). Both feed the same
Opacus optimizer code for noise, normalisation and accounting.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from opacus import PrivacyEngine
from opacus.optimizers import DPOptimizer
from opacus.utils.batch_memory_manager import BatchMemoryManager
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from torch import nn
from torch.utils.data import DataLoader, Dataset

from eqdp.config.train import TrainConfig
from eqdp.engine.strategy import TrainingStrategy
from eqdp.errors import EqdpError
from eqdp.privacy import grad_sample as _grad_sample  # noqa: F401  (registers grad samplers)
from eqdp.privacy.accounting import calibrate_noise, quiet_numpy, rdp_epsilon, spent_epsilon
from eqdp.privacy.grad_sample.equivariant_conv import skip_batch_filter_gradients
from eqdp.privacy.options import DPOptions

if TYPE_CHECKING:
    from eqdp.privacy.input_canaries import InputCanaries

# "No clipping" for the epsilon=inf reference: no real gradient norm comes near it,
# and unlike inf it keeps Opacus' noise std (multiplier * bound) equal to 0, not NaN.
UNBOUNDED_NORM = 1e12


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


def make_private(
    engine: PrivacyEngine,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data_loader: DataLoader,
    noise_multiplier: float,
    max_grad_norm: float,
    noise_generator: torch.Generator,
    clipping: str = "instantiate",
    views: int = 1,
) -> tuple[nn.Module, DPOptimizer, DataLoader]:
    """``engine.make_private`` without Poisson resampling, in either clipping mode.

    ``ghost`` builds what ``make_private`` builds for Opacus' hooks (an optimizer with
    the same noise, normalisation and generator, the accountant's step hook at rate
    ``1 / len(data_loader)``, the loader unchanged) around ``NormSampleModule``.
    ``views``: rows per example (augmentation multiplicity); with ``instantiate`` the
    caller averages the views' per-sample gradients (``average_over_views``).
    """
    if clipping == "instantiate":
        skip_batch_filter_gradients(model)  # per-sample gradients replace the batch ones
        return engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=data_loader,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            poisson_sampling=False,  # the loader already samples Poisson batches
            noise_generator=noise_generator,
        )
    if clipping != "ghost":
        raise ValueError(f"unknown clipping mode {clipping!r}")
    from eqdp.privacy.norm_sample.module import NormSampleModule
    from eqdp.privacy.norm_sample.optimizer import NormOnlyDPOptimizer

    if engine.secure_mode:  # as make_private: a seeded generator is not secure
        raise ValueError("Passing seed is prohibited in secure mode")
    engine.validate(module=model, optimizer=optimizer, data_loader=data_loader)
    trainable = set(model.parameters())
    if any(p not in trainable for group in optimizer.param_groups for p in group["params"]):
        raise ValueError("Module parameters are different than optimizer Parameters")
    module = NormSampleModule(model, views=views)
    sample_rate = 1 / len(data_loader)  # make_private's, so the accountant sees the same rate
    dp_optimizer = NormOnlyDPOptimizer(
        optimizer,
        module=module,
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        expected_batch_size=int(len(data_loader.dataset) * sample_rate),
        loss_reduction="mean",
        generator=noise_generator,
        secure_mode=False,
    )
    dp_optimizer.attach_step_hook(engine.accountant.get_optimizer_hook_fn(sample_rate=sample_rate))
    return module, dp_optimizer, data_loader


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


class DPSGD(TrainingStrategy):
    """DP-SGD through Opacus. ``options`` must be resolved (``DPOptions.resolved``).

    ``make_eval_model`` builds a fresh copy of the model (the DP variant) that
    evaluation runs on: Opacus' wrapped model cannot be put in eval mode safely.
    ``input_canaries``: the audit's canary examples, already appended to the training
    split the run is given; the schedule is planned for the coin-independent size.
    """

    name = "dp-sgd"

    def __init__(
        self,
        options: DPOptions,
        make_eval_model: Callable[[], nn.Module],
        input_canaries: InputCanaries | None = None,
    ) -> None:
        if options.delta is None or options.physical_batch_size is None:
            raise ValueError("DPSGD needs resolved options (DPOptions.resolved)")
        self.options = options
        self.make_eval_model = make_eval_model
        self.input_canaries = input_canaries
        self._warnings: warnings.catch_warnings | None = None

    def effective_augment(self, train: TrainConfig) -> str:
        # K views of one example are only different views with augmentation on.
        return "d4" if self.options.aug_mult > 1 else train.augment

    def start(
        self, model: nn.Module, n_train: int, train: TrainConfig, seed: int, device: torch.device
    ) -> None:
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        # The first layer's input needs no gradient (full backward hook), and seeded noise
        # is the point of a reproducible benchmark.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")

        options = self.options
        self.model, self.n_train, self.train, self.device = model, n_train, train, device
        self.planned_n_train = n_train
        if self.input_canaries is not None:
            from eqdp.privacy.input_canaries import planned_train_size

            # q, steps and the noisy mean's normaliser must not depend on the coins.
            self.n_real = n_train - self.input_canaries.included_count
            self.planned_n_train = planned_train_size(self.n_real, self.input_canaries.count)
        self.schedule = Schedule.for_run(self.planned_n_train, train.batch_size, train.epochs)
        if options.noise_multiplier is not None:
            noise, clip = options.noise_multiplier, options.max_grad_norm
        elif options.private:
            noise = calibrate_noise(
                options.target_epsilon,
                options.delta,
                self.schedule.sample_rate,
                self.schedule.total_steps,
                options.accountant,
            )
            clip = options.max_grad_norm
        else:
            noise, clip = 0.0, UNBOUNDED_NORM
        self.noise, self.clip = noise, clip

        self.eval_model = self.make_eval_model().to(device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=train.lr, weight_decay=train.weight_decay)
        self.engine = PrivacyEngine(accountant=options.accountant)
        sampler_generator = torch.Generator().manual_seed(seed)
        self.private_model, self.optimizer, self.loader = make_private(
            self.engine,
            model,
            optimizer,
            poisson_loader(
                n_train, self.schedule.sample_rate, self.schedule.steps_per_epoch, sampler_generator
            ),
            noise_multiplier=noise,
            max_grad_norm=clip,
            noise_generator=torch.Generator(device=device).manual_seed(seed + 1),
            clipping=options.clipping,
            views=options.aug_mult,
        )
        # Opacus floors N*q to an int for the mean; keep the exact expected batch size.
        self.optimizer.expected_batch_size = self.planned_n_train * self.schedule.sample_rate
        self.canaries = None
        if options.audit and options.audit_kind == "gradient":
            from eqdp.privacy.audit import GradientCanaries

            # Canaries are records with the examples' sensitivity (the clipping bound; the
            # unclipped epsilon=inf reference gives them that of the private runs).
            self.canaries = GradientCanaries(
                options.audit, options.max_grad_norm, self.schedule.sample_rate, seed + 2
            )
            self.canaries.attach(self.optimizer)

    @property
    def module(self) -> nn.Module:
        return self.private_model

    def batches(self) -> Iterator[torch.Tensor]:
        with BatchMemoryManager(
            data_loader=self.loader,
            max_physical_batch_size=self.options.physical_batch_size,
            optimizer=self.optimizer,
        ) as physical_batches:
            for index in physical_batches:
                yield index.to(self.device)

    def expand(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        views = self.options.aug_mult
        if views == 1:
            return images, labels
        return images.repeat_interleave(views, dim=0), labels.repeat_interleave(views, dim=0)

    def after_backward(self) -> None:
        # Norm-only clipping averages an example's views itself (NormSampleModule).
        if self.options.aug_mult > 1 and self.options.clipping == "instantiate":
            average_over_views(self.optimizer, self.options.aug_mult)

    def evaluation_model(self, state: dict[str, torch.Tensor] | None = None) -> nn.Module:
        self.eval_model.load_state_dict(state if state is not None else self.model.state_dict())
        return self.eval_model

    def finish(self) -> dict:
        """The record's ``privacy`` block, after checking the accountant against the plan."""
        options, schedule, train = self.options, self.schedule, self.train
        history = self.engine.accountant.history
        steps = sum(entry[2] for entry in history)
        rates = {entry[1] for entry in history}
        if steps != schedule.total_steps or rates - {schedule.sample_rate}:
            raise EqdpError(
                f"internal accounting mismatch: ran {steps} steps at rates {sorted(rates)}, "
                f"planned {schedule.total_steps} at {schedule.sample_rate}"
            )
        private = options.private
        epsilon = None
        if private and self.noise == 0:
            epsilon = math.inf  # clipped but not noised (--noise-multiplier 0): no guarantee
        elif private:
            with quiet_numpy():
                epsilon = float(self.engine.accountant.get_epsilon(delta=options.delta))
            recomputed = spent_epsilon(
                options.accountant, self.noise, schedule.sample_rate, steps, options.delta
            )
            if not math.isclose(epsilon, recomputed, rel_tol=1e-9):
                raise EqdpError(f"accountant disagreement: {epsilon} vs {recomputed}")
            if math.isfinite(options.target_epsilon) and epsilon > options.target_epsilon:
                raise EqdpError(
                    f"spent epsilon {epsilon:.4f} exceeds the target {options.target_epsilon}"
                )
        finite_target = math.isfinite(options.target_epsilon)
        audit = self._audit_result()
        return {
            "private": private,
            "epsilon": epsilon,
            "target_epsilon": options.target_epsilon if finite_target else None,
            "delta": options.delta,
            "noise_multiplier": self.noise,
            "max_grad_norm": self.clip if private else None,
            "sample_rate": schedule.sample_rate,
            "steps": steps,
            "epochs": train.epochs,
            "accountant": options.accountant,
            "rdp_epsilon": rdp_epsilon(self.noise, schedule.sample_rate, steps, options.delta)
            if private and self.noise > 0
            else None,
            "logical_batch_size": train.batch_size,
            "expected_batch_size": schedule.sample_rate * self.planned_n_train,
            "physical_batch_size": options.physical_batch_size,
            "aug_mult": options.aug_mult,
            "sampling": "poisson",
            "clipping": "flat",
            "clipping_mode": options.clipping,
            "n_train": self.n_train,
            **({"audit": audit} if audit is not None else {}),
        }

    def _audit_result(self) -> dict | None:
        """The record's ``privacy.audit``, scored on the final weights for input canaries."""
        options = self.options
        if self.canaries is not None:
            return self.canaries.result(options.delta, guesses=options.audit_guesses)
        if self.input_canaries is not None:
            self.input_canaries.score(self.evaluation_model())
            return self.input_canaries.result(
                self.n_real, options.delta, guesses=options.audit_guesses
            )
        return None

    def close(self) -> None:
        """Drop the last step's per-sample gradients and Opacus' hooks.

        The hooks tie the model into reference cycles, so without this the last physical
        batch's per-sample gradients (batch x parameters: 5.7 GB for ResNet-18 at 128)
        outlive the run until Python's cycle collector happens to run, and a process
        running several DP runs grew to 20 GB.
        """
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        private_model = getattr(self, "private_model", None)
        if private_model is not None:
            private_model.remove_hooks()
        if self._warnings is not None:
            self._warnings.__exit__(None, None, None)
            self._warnings = None
