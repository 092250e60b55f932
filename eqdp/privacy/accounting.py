"""Privacy accounting: noise calibration and spent epsilon through Opacus' accountants,
plus an independent RDP computation used to cross-check them."""

from __future__ import annotations

import math

import numpy as np
from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier
from scipy.special import logsumexp

from eqdp.errors import EqdpError
from eqdp.privacy.budget import ACCOUNTANTS, check_accountant, check_delta, default_delta

__all__ = [
    "ACCOUNTANTS",
    "calibrate_noise",
    "check_accountant",
    "check_delta",
    "default_delta",
    "rdp_epsilon",
    "spent_epsilon",
]


def calibrate_noise(
    target_epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str
) -> float:
    """Smallest noise multiplier (to Opacus' tolerance) whose epsilon stays <= the target."""
    try:
        with quiet_numpy():
            return float(
                get_noise_multiplier(
                    target_epsilon=target_epsilon,
                    target_delta=delta,
                    sample_rate=sample_rate,
                    steps=steps,
                    accountant=accountant,
                )
            )
    except ValueError as error:
        raise EqdpError(
            f"no noise multiplier reaches epsilon={target_epsilon:g} at delta={delta:g} "
            f"with sample rate {sample_rate:.4g} over {steps} steps ({error})"
        ) from error


def spent_epsilon(
    accountant: str, noise_multiplier: float, sample_rate: float, steps: int, delta: float
) -> float:
    """Epsilon of ``steps`` Poisson-subsampled Gaussian steps, from Opacus' accountant."""
    if steps == 0:
        return 0.0
    tracker = create_accountant(mechanism=check_accountant(accountant))
    tracker.history = [(noise_multiplier, sample_rate, steps)]
    with quiet_numpy():
        return float(tracker.get_epsilon(delta=delta))


def quiet_numpy() -> np.errstate:
    """Opacus' PRV accountant evaluates both branches of an ``np.where`` and logs a zero
    (``prvs.py``: ``np.log(np.where(t > log(1 - q), ..., 1))``); the branch it keeps is
    finite, so numpy's divide-by-zero warning on the discarded one is noise, not a fault."""
    return np.errstate(divide="ignore", invalid="ignore")


# Orders searched by rdp_epsilon: fine steps below 11 (where small budgets find their
# optimum), integers above.
RDP_ORDERS: tuple[float, ...] = tuple(1 + x / 10 for x in range(1, 100)) + tuple(range(11, 257))


def subsampled_gaussian_log_moment(
    noise_multiplier: float, sample_rate: float, orders: np.ndarray, grid_points: int = 20001
) -> np.ndarray:
    """``log E_{z~N(0,s^2)}[((1-q) + q exp((2z-1)/(2 s^2)))^a]`` for each order ``a``.

    Integrated numerically on a grid (in log space) rather than by the series
    expansions accountants use, so that it is an independent check of them.
    """
    sigma2 = noise_multiplier**2
    top = float(np.max(orders))
    z = np.linspace(-40 * noise_multiplier, top + 40 * noise_multiplier, grid_points)
    log_density = -(z**2) / (2 * sigma2) - 0.5 * math.log(2 * math.pi * sigma2)
    # log((1-q) + q e^x) computed stably for large x
    x = (2 * z - 1) / (2 * sigma2)
    log_ratio = np.logaddexp(math.log1p(-sample_rate), math.log(sample_rate) + x)
    integrand = log_density[None, :] + orders[:, None] * log_ratio[None, :]
    return logsumexp(integrand, axis=1) + math.log(z[1] - z[0])


def rdp_epsilon(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    orders: tuple[float, ...] = RDP_ORDERS,
) -> float:
    """(epsilon, delta) of ``steps`` Poisson-subsampled Gaussian steps via RDP.

    RDP of one step is ``log A_a / (a - 1)`` (Mironov et al. 2019), composed
    linearly, converted with Balle et al. (2020)'s bound, minimised over orders.
    """
    if noise_multiplier <= 0:
        return math.inf
    alphas = np.asarray(orders, dtype=float)
    if sample_rate == 1.0:
        per_step = alphas / (2 * noise_multiplier**2)
    else:
        log_moments = subsampled_gaussian_log_moment(noise_multiplier, sample_rate, alphas)
        per_step = log_moments / (alphas - 1)
    rdp = steps * per_step
    epsilons = rdp + np.log1p(-1 / alphas) - (math.log(delta) + np.log(alphas)) / (alphas - 1)
    return float(max(np.min(epsilons), 0.0))
