"""The DP-SGD settings of one run, validated before any training starts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from eqdp.errors import EqdpError
from eqdp.privacy.accounting import check_accountant, check_delta, default_delta

DP_OPTION_KEYS: frozenset[str] = frozenset(
    {
        "epsilon",
        "delta",
        "max_grad_norm",
        "physical_batch_size",
        "noise_multiplier",
        "aug_mult",
        "accountant",
    }
)


@dataclass(frozen=True)
class DPConfig:
    """``target_epsilon = inf`` keeps the pipeline (Poisson sampling, physical batches,
    per-sample gradients) but adds no noise and clips nothing: the non-private reference."""

    target_epsilon: float
    delta: float
    max_grad_norm: float = 1.0
    physical_batch_size: int = 128
    noise_multiplier: float | None = None  # given instead of a target epsilon
    aug_mult: int = 1
    accountant: str = "prv"

    @property
    def private(self) -> bool:
        return math.isfinite(self.target_epsilon) or self.noise_multiplier is not None


def _number(options: dict, key: str, default: float | None) -> float | None:
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise EqdpError(f"{key.replace('_', ' ')} must be a number, got {value!r}")
    return float(value)


def dp_config_from_options(options: dict, n_train: int, logical_batch_size: int) -> DPConfig:
    """Validate the ``dp`` benchmark's options; every message names the bad value."""
    epsilon = _number(options, "epsilon", None)
    noise = _number(options, "noise_multiplier", None)
    if epsilon is not None and noise is not None:
        raise EqdpError(
            f"give either --epsilon ({epsilon:g}) or --noise-multiplier ({noise:g}), not both"
        )
    if epsilon is None and noise is None:
        raise EqdpError("the dp benchmark needs --epsilon (e.g. 1,2,4,8,inf) or --noise-multiplier")
    if epsilon is not None and not epsilon > 0:
        raise EqdpError(f"epsilon must be > 0 (or inf), got {epsilon:g}")
    if noise is not None and not (noise >= 0 and math.isfinite(noise)):
        raise EqdpError(f"noise multiplier must be a finite number >= 0, got {noise:g}")
    delta = _number(options, "delta", None)
    delta = default_delta(n_train) if delta is None else check_delta(delta, n_train)
    clip = _number(options, "max_grad_norm", 1.0)
    if not (clip > 0 and math.isfinite(clip)):
        raise EqdpError(f"max grad norm must be a finite number > 0, got {clip:g}")
    physical = int(options.get("physical_batch_size") or min(logical_batch_size, 128))
    if physical <= 0:
        raise EqdpError(f"physical batch size must be > 0, got {physical}")
    if physical > logical_batch_size:
        raise EqdpError(
            f"physical batch size {physical} is larger than the logical batch size "
            f"{logical_batch_size} (--batch-size)"
        )
    aug_mult = int(options.get("aug_mult", 1))
    if aug_mult < 1:
        raise EqdpError(f"augmentation multiplicity must be >= 1, got {aug_mult}")
    return DPConfig(
        target_epsilon=math.inf if epsilon is None else epsilon,
        delta=delta,
        max_grad_norm=clip,
        physical_batch_size=physical,
        noise_multiplier=noise,
        aug_mult=aug_mult,
        accountant=check_accountant(str(options.get("accountant", "prv"))),
    )
