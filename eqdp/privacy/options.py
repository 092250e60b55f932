"""The DP-SGD options of a run, typed and validated before any training starts."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from pydantic import model_validator

from eqdp.config.fields import config_class, option
from eqdp.errors import EqdpError
from eqdp.privacy.budget import check_delta, default_delta


@config_class
class DPOptions:
    """``epsilon = inf`` keeps the pipeline (Poisson sampling, physical batches,
    per-sample gradients) but adds no noise and clips nothing: the non-private
    reference for the same hyper-parameters."""

    epsilon: float | None = option(
        None,
        "Target epsilon; inf = the same pipeline without noise or clipping.",
        label="ε={}",
        sweep=True,
        gt=0,
    )
    delta: float | None = option(
        None, "Target delta [default: min(1e-5, 1/(10 N_train))].", label="δ={:g}", gt=0, lt=1
    )
    max_grad_norm: float = option(
        1.0, "Per-sample clipping bound C (flat clipping).", label="C={:g}", gt=0,
        allow_inf_nan=False,
    )  # fmt: skip
    noise_multiplier: float | None = option(
        None, "Fix sigma instead of calibrating it to --epsilon.", label="σ={:g}", ge=0,
        allow_inf_nan=False,
    )  # fmt: skip
    aug_mult: int = option(
        1,
        "Augmentation multiplicity K: average per-sample gradients over K random D4 "
        "views before clipping (implies --augment d4).",
        label="K={}",
        ge=1,
    )
    accountant: Literal["prv", "rdp"] = option("prv", "Privacy accountant: prv or rdp.")
    physical_batch_size: int | None = option(
        None,
        "Examples per forward/backward pass; the logical batch (--batch-size) is "
        "Poisson-sampled [default: min(batch size, 128)].",
        key=False,
        gt=0,
    )
    clipping: Literal["instantiate", "ghost"] = option(
        "ghost",
        "How per-example gradients are clipped (both exact): ghost gets each example's "
        "norm layer by layer (ghost norm or instantiate-and-discard, whichever is cheaper) "
        "and the clipped sum from the same backward pass; instantiate holds every "
        "per-example gradient (Opacus' hooks).",
        key=False,
    )  # ghost: faster and smaller on every model measured (benchmarks/speed/dp_overhead.cpu.txt)
    audit: int = option(
        0,
        "Audit the run with N canaries (one-run audit, Steinke et al. 2023): the "
        "record's privacy.audit holds an epsilon lower bound at 95% confidence; 0 = off.",
        label="audit={}",
        ge=0,
    )
    audit_kind: Literal["gradient", "input"] = option(
        "gradient",
        "Canaries of --audit: gradient (white-box: a gradient of norm C on one parameter, "
        "added to the clipped sum at the run's rate, scored on every noisy step) or input "
        "(black-box: noise images with balanced random labels added to the training set, "
        "scored by the final model's log-odds of their label).",
        label="{}-canaries",
    )
    audit_guesses: int | None = option(
        None,
        "Guesses of --audit: half 'in' on the highest scores, half 'out' on the lowest "
        "[default: a fifth of the canaries]; see `eqdp audit-cap` for what k can show.",
        label="guesses={}",
        ge=2,
    )
    fraction: float | None = option(
        None,
        "Train on a stratified fraction of the training split; delta, sampling rate "
        "and accounting use the subset's size.",
        label="fraction={:g}",
        sweep=True,
        gt=0,
        le=1,
    )

    @model_validator(mode="after")
    def _one_budget(self) -> DPOptions:
        if self.epsilon is not None and self.noise_multiplier is not None:
            raise ValueError(
                f"give either --epsilon ({self.epsilon:g}) or --noise-multiplier "
                f"({self.noise_multiplier:g}), not both"
            )
        if self.epsilon is None and self.noise_multiplier is None:
            raise ValueError(
                "the dp benchmark needs --epsilon (e.g. 1,2,4,8,inf) or --noise-multiplier"
            )
        return self

    @model_validator(mode="after")
    def _enough_canaries(self) -> DPOptions:
        if self.audit == 1:  # checked here, not after a whole training run
            raise ValueError("--audit 1: the audit guesses on at least 2 canaries; use 0 or >= 2")
        if self.audit_guesses is not None and self.audit_guesses > self.audit:
            raise ValueError(
                f"--audit-guesses {self.audit_guesses}: more guesses than the {self.audit} "
                "canaries of --audit"
            )
        if self.audit_kind == "input" and self.fraction is not None:
            # Canaries would count towards the subset's epoch rule and class counts.
            raise ValueError("--audit-kind input and --fraction together are not supported")
        return self

    @property
    def private(self) -> bool:
        return self.noise_multiplier is not None or math.isfinite(self.epsilon or math.inf)

    @property
    def target_epsilon(self) -> float:
        """The budget asked for; inf for the non-private reference and for a fixed sigma."""
        return math.inf if self.epsilon is None else self.epsilon

    def resolved(self, n_train: int, logical_batch_size: int) -> DPOptions:
        """Defaults that depend on the data filled in, and checked against it.

        Input canaries enlarge the training set by up to ``audit`` records: delta's rule
        counts all of them (``eqdp.privacy.input_canaries``)."""
        if self.audit and self.audit_kind == "input":
            n_train += self.audit
        delta = default_delta(n_train) if self.delta is None else check_delta(self.delta, n_train)
        physical = self.physical_batch_size or min(logical_batch_size, 128)
        if physical > logical_batch_size:
            raise EqdpError(
                f"physical batch size {physical} is larger than the logical batch size "
                f"{logical_batch_size} (--batch-size)"
            )
        return dataclasses.replace(self, delta=delta, physical_batch_size=physical)
