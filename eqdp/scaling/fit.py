"""Power-law fits, Chinchilla's method 3: Huber loss in log space, L-BFGS from a grid of starts.

``L(x) = E + A * x**-alpha`` is fitted as ``log L = LSE(e, a - alpha * log x)``
with ``E = exp(e)``, ``A = exp(a)`` (Hoffmann et al. 2022, appendix D.2), on
every observation (one per seed and point), not on means. ``x`` is divided by
its geometric mean while fitting, which keeps the starts meaningful across
axes whose x spans 10^2 (pixels) to 10^5 (parameters); ``A`` is reported for
the raw ``x``. Confidence intervals are a bootstrap over seeds: each
resample draws, at every point, that point's observations with replacement.

The joint law ``L(N, D) = E + A / N**a + B / D**b`` is fitted the same way.
Numpy and scipy only: fits are cheap, and ``eqdp scaling fit`` stays light.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from eqdp.errors import EqdpError

HUBER_DELTA = 1e-3  # Chinchilla's
BOOTSTRAP_RESAMPLES = 200
MIN_POINTS = 3
FLAT_SPREAD = 0.01  # relative spread of the per-point means below which a sweep is flat
ALPHA_BOUNDS = (-2.0, 5.0)  # a negative exponent: the quantity grows along the axis
BOUND_MARGIN = 0.05  # a best exponent this close to a bound is the optimiser hitting a wall


class DegenerateSweep(EqdpError):
    """The sweep cannot support a law: too few points, or a flat quantity."""


def _huber(residual: np.ndarray, delta: float = HUBER_DELTA) -> tuple[np.ndarray, np.ndarray]:
    """Huber values and derivatives of the residuals."""
    small = np.abs(residual) <= delta
    value = np.where(small, 0.5 * residual**2, delta * (np.abs(residual) - 0.5 * delta))
    slope = np.where(small, residual, delta * np.sign(residual))
    return value, slope


def _lse_terms(terms: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """log(sum exp(terms)) and the softmax weights (its derivatives by each term)."""
    stacked = np.stack(terms)
    top = stacked.max(axis=0)
    weights = np.exp(stacked - top)
    total = weights.sum(axis=0)
    return top + np.log(total), list(weights / total)


def check_sweep(x: np.ndarray, y: np.ndarray, what: str) -> None:
    """Raises DegenerateSweep unless ``x`` has >= 3 distinct points and ``y`` moves."""
    if len(x) != len(y) or len(x) == 0:
        raise DegenerateSweep(f"{what}: no observations to fit")
    if not (np.all(np.isfinite(y)) and np.all(y > 0) and np.all(x > 0)):
        raise DegenerateSweep(f"{what}: a law needs finite positive x and quantity")
    distinct = np.unique(x)
    if len(distinct) < MIN_POINTS:
        raise DegenerateSweep(
            f"{what}: {len(distinct)} distinct point(s); a law needs at least {MIN_POINTS}"
        )
    means = np.array([y[x == value].mean() for value in distinct])
    spread = (means.max() - means.min()) / means.mean()
    if spread < FLAT_SPREAD:
        raise DegenerateSweep(
            f"{what}: flat across the sweep (the point means differ by {spread:.2%}, "
            f"under {FLAT_SPREAD:.0%}); no exponent to fit"
        )


@dataclass(frozen=True)
class PowerLawFit:
    """``L(x) = E + A * x**-alpha`` with bootstrap 95% intervals."""

    E: float
    A: float
    alpha: float
    r2: float  # in log space, over every observation
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    x_ref: float = 1.0  # geometric mean of x, the fit's unit
    band: tuple[list[float], list[float]] | None = None  # (low, high) at the asked x

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        return self.E + self.A * np.asarray(x, dtype=float) ** -self.alpha


def _objective_1d(theta: np.ndarray, log_x: np.ndarray, log_y: np.ndarray):
    e, a, alpha = theta
    predicted, (w_e, w_a) = _lse_terms([np.full_like(log_x, e), a - alpha * log_x])
    value, slope = _huber(predicted - log_y)
    gradient = np.array([(slope * w_e).sum(), (slope * w_a).sum(), -(slope * w_a * log_x).sum()])
    return value.sum(), gradient


def _starts_1d(log_y: np.ndarray) -> list[np.ndarray]:
    low = float(log_y.min())
    es = [low + np.log(f) for f in (0.1, 0.5, 0.9)]
    spans = [np.log(f) + low for f in (0.05, 0.3, 1.0, 3.0)]
    alphas = (0.1, 0.3, 0.7, 1.5)
    return [np.array(s) for s in itertools.product(es, spans, alphas)]


def _bootstrap_starts(log_y: np.ndarray) -> list[np.ndarray]:
    low = float(log_y.min())
    return [np.array([low + np.log(0.5), low + np.log(0.5), alpha]) for alpha in (0.1, 0.5, 1.5)]


def _minimise(objective, starts: list[np.ndarray], args: tuple, bounds) -> np.ndarray:
    best, best_value = None, np.inf
    for start in starts:
        result = minimize(objective, start, args=args, jac=True, method="L-BFGS-B", bounds=bounds)
        if result.fun < best_value:
            best, best_value = result.x, result.fun
    assert best is not None
    return best


def _check_inside(exponent: float, what: str) -> None:
    """A best fit on an exponent's bound is no power law (non-monotone or a step)."""
    for bound in ALPHA_BOUNDS:
        if abs(exponent - bound) < BOUND_MARGIN:
            raise DegenerateSweep(
                f"{what}: the best exponent runs to its bound {bound:g}; the quantity does "
                "not follow a power law along this sweep (non-monotone or a step)"
            )


def _r2(predicted_log: np.ndarray, log_y: np.ndarray) -> float:
    total = ((log_y - log_y.mean()) ** 2).sum()
    return float(1 - ((log_y - predicted_log) ** 2).sum() / total) if total > 0 else 0.0


def _resample(groups: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Observation indices: at each point, its observations drawn with replacement."""
    return np.concatenate([rng.choice(group, size=len(group)) for group in groups])


def _groups(keys: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(keys == key) for key in np.unique(keys)]


def fit_power_law(
    x, y, what: str = "sweep", resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
    band_x=None,
) -> PowerLawFit:  # fmt: skip
    """Fit ``y = E + A x^-alpha``; raises DegenerateSweep when the sweep cannot carry a law.

    With ``band_x``, the fit also carries the pointwise 95% band of the curve at those
    x, from the same bootstrap resamples as the intervals.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    check_sweep(x, y, what)
    x_ref = float(np.exp(np.log(x).mean()))
    log_x, log_y = np.log(x / x_ref), np.log(y)
    bounds = [(-30.0, 10.0), (-30.0, 10.0), ALPHA_BOUNDS]
    best = _minimise(_objective_1d, _starts_1d(log_y), (log_x, log_y), bounds)
    _check_inside(best[2], what)  # before the bootstrap: a fit on its bound is no law
    rng = np.random.default_rng(seed)
    groups = _groups(x)
    samples = []
    for _ in range(resamples):
        index = _resample(groups, rng)
        # From the full fit's optimum and a few spread starts: the loss surface has a long
        # valley (small exponent, small E, large A), and a resample started only at the
        # optimum stays in its basin, which made intervals look far tighter than they are.
        starts = [best, *_bootstrap_starts(log_y[index])]
        samples.append(_minimise(_objective_1d, starts, (log_x[index], log_y[index]), bounds))
    samples_arr = np.array(samples).reshape(-1, 3)
    e, a, alpha = best
    predicted = _lse_terms([np.full_like(log_x, e), a - alpha * log_x])[0]

    def interval(values: np.ndarray) -> tuple[float, float]:
        return (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))

    ci = {}
    if resamples:
        ci = {
            "alpha": interval(samples_arr[:, 2]),
            "E": interval(np.exp(samples_arr[:, 0])),
            "A": interval(np.exp(samples_arr[:, 1]) * x_ref ** samples_arr[:, 2]),
        }
    curve_band = None
    if resamples and band_x is not None:
        grid = np.log(np.asarray(band_x, dtype=float) / x_ref)
        curves = np.exp(samples_arr[:, :1]) + np.exp(
            samples_arr[:, 1:2] - samples_arr[:, 2:3] * grid[None, :]
        )
        low, high = np.percentile(curves, [2.5, 97.5], axis=0)
        curve_band = (low.tolist(), high.tolist())
    return PowerLawFit(
        E=float(np.exp(e)), A=float(np.exp(a) * x_ref**alpha), alpha=float(alpha),
        r2=_r2(predicted, log_y), ci95=ci, x_ref=x_ref, band=curve_band,
    )  # fmt: skip


@dataclass(frozen=True)
class JointFit:
    """``L(N, D) = E + A / N**a + B / D**b``; compute-optimal exponents under C ~ N D."""

    E: float
    A: float
    a: float
    B: float
    b: float
    r2: float
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __call__(self, n, d) -> np.ndarray:
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return self.E + self.A * n**-self.a + self.B * d**-self.b

    @property
    def optimal_exponents(self) -> dict[str, float]:
        """N_opt ~ C^(b/(a+b)), D_opt ~ C^(a/(a+b)) (Chinchilla eq. 4) when a, b > 0."""
        total = self.a + self.b
        if self.a <= 0 or self.b <= 0:
            return {}
        return {"params": self.b / total, "data": self.a / total}


def _objective_2d(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_y: np.ndarray):
    e, a_, a, b_, b = theta
    terms = [np.full_like(log_n, e), a_ - a * log_n, b_ - b * log_d]
    predicted, (w_e, w_n, w_d) = _lse_terms(terms)
    value, slope = _huber(predicted - log_y)
    gradient = np.array([
        (slope * w_e).sum(), (slope * w_n).sum(), -(slope * w_n * log_n).sum(),
        (slope * w_d).sum(), -(slope * w_d * log_d).sum(),
    ])  # fmt: skip
    return value.sum(), gradient


def fit_joint(
    n, d, y, what: str = "grid", resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> JointFit:
    """Fit ``L(N, D)`` on observations that vary N at fixed D and D at fixed N (or a grid)."""
    n, d, y = (np.asarray(v, dtype=float) for v in (n, d, y))
    for name, values in (("N", n), ("D", d)):
        if len(np.unique(values)) < 2:
            raise DegenerateSweep(f"{what}: {name} takes one value; a joint law needs both to vary")
    pairs = n * 1e12 + d
    check_sweep(pairs, y, what)
    if len(np.unique(pairs)) < 6:
        raise DegenerateSweep(f"{what}: {len(np.unique(pairs))} (N, D) points; need >= 6")
    n_ref, d_ref = float(np.exp(np.log(n).mean())), float(np.exp(np.log(d).mean()))
    log_n, log_d, log_y = np.log(n / n_ref), np.log(d / d_ref), np.log(y)
    low = float(log_y.min())
    starts = [
        np.array([low + np.log(fe), low + np.log(fa), ea, low + np.log(fb), eb])
        for fe, fa, fb in itertools.product((0.2, 0.7), (0.1, 0.5), (0.1, 0.5))
        for ea, eb in itertools.product((0.2, 0.7), (0.2, 0.7))
    ]
    bounds = [(-30.0, 10.0), (-30.0, 10.0), ALPHA_BOUNDS, (-30.0, 10.0), ALPHA_BOUNDS]
    args = (log_n, log_d, log_y)
    best = _minimise(_objective_2d, starts, args, bounds)
    rng, groups = np.random.default_rng(seed), _groups(pairs)
    samples = []
    for _ in range(resamples):
        index = _resample(groups, rng)
        sample_args = (log_n[index], log_d[index], log_y[index])
        samples.append(_minimise(_objective_2d, [best, *starts[::6]], sample_args, bounds))
    samples_arr = np.array(samples).reshape(-1, 5)
    e, a_, a, b_, b = best
    _check_inside(a, what + " (N exponent)")
    _check_inside(b, what + " (D exponent)")
    predicted = _lse_terms([np.full_like(log_n, e), a_ - a * log_n, b_ - b * log_d])[0]
    ci = {}
    if resamples:
        ci = {
            name: (float(np.percentile(samples_arr[:, i], 2.5)),
                   float(np.percentile(samples_arr[:, i], 97.5)))
            for name, i in (("a", 2), ("b", 4))
        }  # fmt: skip
    return JointFit(
        E=float(np.exp(e)), A=float(np.exp(a_) * n_ref**a), a=float(a),
        B=float(np.exp(b_) * d_ref**b), b=float(b), r2=_r2(predicted, log_y), ci95=ci,
    )  # fmt: skip


def pareto_frontier(cost, y) -> np.ndarray:
    """Indices of the points no cheaper point beats (lowest y so far, by ascending cost)."""
    cost, y = np.asarray(cost, dtype=float), np.asarray(y, dtype=float)
    keep, best = [], np.inf
    for index in np.argsort(cost, kind="stable"):
        if y[index] < best:
            keep.append(int(index))
            best = y[index]
    return np.array(keep, dtype=int)
