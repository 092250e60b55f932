"""Statistics over seeds: cell intervals, paired comparisons and their verdicts.

The method (stated in docs/guide.md, "Statistics"):

- A *cell* (one configuration, one metric) gives mean, sample std and a 95%
  interval for the mean over its seeds.
- A *comparison* of model A with opponent B in one condition (same benchmark,
  dataset, size, protocol and benchmark setting) pairs the seeds both ran:
  d_s = A_s - B_s. Its 95% interval is an interval for the mean of d.
- Both intervals are Student-t intervals, mean ± t(0.975, n-1) · s / sqrt(n).
  With 3-5 seeds a percentile bootstrap is too narrow: its interval never leaves
  the range of the n values (at n = 3 there are only 10 distinct resampled
  means), so it covers the mean far less than 95% of the time. The bootstrap
  interval (10,000 resamples, RNG seed 0, so output is deterministic) is reported
  next to the t-interval for reference, never used for a verdict.
- n <= 2 seeds: no interval ("too few seeds"); a t-interval from two values has
  one degree of freedom and says next to nothing.
- Verdict: ``win`` when the interval of d lies above 0 (below, for a metric where
  lower is better), ``loss`` when it lies on the other side, ``level`` when it
  contains 0, ``too few seeds`` when it is undefined. No correction for the many
  comparisons: a table of k comparisons at 95% has about k/20 false verdicts.

Light: the standard library only, numpy for the bootstrap (imported when used).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
MIN_SEEDS = 3  # fewer: the interval is undefined
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0

WIN, LEVEL, LOSS, TOO_FEW = "win", "level", "loss", "too few seeds"

# t(0.975, df) for df = 1..30 (two-sided 95%); beyond, the Cornish-Fisher expansion.
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
_Z975 = 1.959964


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def t_interval(values: Sequence[float | None]) -> tuple[float, float] | None:
    """95% Student-t interval for the mean; None with fewer than MIN_SEEDS values."""
    xs = finite(values)
    if len(xs) < MIN_SEEDS:
        return None
    mean = statistics.fmean(xs)
    half = t_quantile_975(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return mean - half, mean + half


def bootstrap_interval(
    values: Sequence[float | None],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """95% percentile bootstrap interval for the mean (fixed RNG: deterministic)."""
    xs = finite(values)
    if len(xs) < MIN_SEEDS:
        return None
    import numpy as np

    data = np.asarray(xs)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class CellStats:
    """One configuration's metric over its seeds."""

    n: int
    mean: float
    std: float
    interval: tuple[float, float] | None  # 95% t-interval; None below MIN_SEEDS
    bootstrap: tuple[float, float] | None = None  # for reference; computed on request

    def as_dict(self) -> dict:
        return {
            "n": self.n,
            "mean": self.mean,
            "std": self.std,
            "ci95": list(self.interval) if self.interval else None,
            "ci95_bootstrap": list(self.bootstrap) if self.bootstrap else None,
        }


def cell_stats(values: Sequence[float | None], with_bootstrap: bool = False) -> CellStats:
    xs = finite(values)
    if not xs:
        return CellStats(0, math.nan, math.nan, None)
    std = statistics.stdev(xs) if len(xs) > 1 else 0.0
    boot = bootstrap_interval(xs) if with_bootstrap else None
    return CellStats(len(xs), statistics.fmean(xs), std, t_interval(xs), boot)


@dataclass(frozen=True)
class Comparison:
    """A - B over the seeds both ran, its intervals and the verdict for A."""

    seeds: tuple[int, ...]
    a_mean: float
    b_mean: float
    differences: tuple[float, ...]
    interval: tuple[float, float] | None  # t-interval of the mean difference
    bootstrap: tuple[float, float] | None  # for reference only
    verdict: str

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def mean_difference(self) -> float:
        return statistics.fmean(self.differences) if self.differences else math.nan

    def as_dict(self) -> dict:
        return {
            "seeds": list(self.seeds),
            "a_mean": self.a_mean,
            "b_mean": self.b_mean,
            "differences": list(self.differences),
            "mean_difference": self.mean_difference,
            "ci95": list(self.interval) if self.interval else None,
            "ci95_bootstrap": list(self.bootstrap) if self.bootstrap else None,
            "verdict": self.verdict,
        }


def verdict(interval: tuple[float, float] | None, higher_is_better: bool = True) -> str:
    """win / loss only when the interval of A - B excludes 0; level when it contains it."""
    if interval is None:
        return TOO_FEW
    low, high = interval
    if low > 0:
        return WIN if higher_is_better else LOSS
    if high < 0:
        return LOSS if higher_is_better else WIN
    return LEVEL


def compare(
    a: Mapping[int, float | None],
    b: Mapping[int, float | None],
    higher_is_better: bool = True,
) -> Comparison:
    """Paired comparison of two seed -> value maps over the seeds both have a value for."""
    seeds = tuple(sorted(s for s in a.keys() & b.keys() if finite([a[s]]) and finite([b[s]])))
    differences = tuple(float(a[s]) - float(b[s]) for s in seeds)  # type: ignore[arg-type]
    interval = t_interval(differences)
    return Comparison(
        seeds=seeds,
        a_mean=statistics.fmean(float(a[s]) for s in seeds) if seeds else math.nan,  # type: ignore[arg-type]
        b_mean=statistics.fmean(float(b[s]) for s in seeds) if seeds else math.nan,  # type: ignore[arg-type]
        differences=differences,
        interval=interval,
        bootstrap=bootstrap_interval(differences),
        verdict=verdict(interval, higher_is_better),
    )


def format_interval(interval: tuple[float, float] | None, digits: int = 3) -> str:
    if interval is None:
        return "–"
    low, high = interval
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def format_cell_interval(interval: tuple[float, float] | None, digits: int = 3) -> str:
    if interval is None:
        return "–"
    low, high = interval
    return f"[{low:.{digits}f}, {high:.{digits}f}]"
