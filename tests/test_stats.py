"""Statistics over seeds (eqdp.results.stats): intervals, paired comparisons, verdicts."""

from __future__ import annotations

import math

import pytest

from eqdp.results import stats


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 10, 29, 30, 31, 45, 200])
def test_t_quantile_matches_scipy(df: int) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    assert stats.t_quantile_975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=2e-3)


def test_t_interval_of_a_cell() -> None:
    values = [0.70, 0.72, 0.74]
    low, high = stats.t_interval(values)
    half = 4.3027 * 0.02 / math.sqrt(3)
    assert (low, high) == pytest.approx((0.72 - half, 0.72 + half))
    assert stats.t_interval([0.7, 0.8]) is None  # two seeds: undefined
    assert stats.t_interval([0.7, None, math.nan, 0.8]) is None  # only finite values count


def test_bootstrap_is_deterministic_and_inside_the_range() -> None:
    values = [0.70, 0.71, 0.75, 0.73]
    first, second = stats.bootstrap_interval(values), stats.bootstrap_interval(values)
    assert first == second
    assert min(values) <= first[0] <= first[1] <= max(values)
    # The reason it is not the verdict's interval: it is narrower than the t-interval here.
    t_low, t_high = stats.t_interval(values)
    assert t_low < first[0] and first[1] < t_high


def test_compare_pairs_shared_seeds_only() -> None:
    a = {0: 0.80, 1: 0.82, 2: 0.81, 3: 0.90}
    b = {0: 0.70, 1: 0.71, 2: 0.72, 4: 0.10}
    result = stats.compare(a, b)
    assert result.seeds == (0, 1, 2)
    assert result.differences == pytest.approx((0.10, 0.11, 0.09))
    assert result.verdict == stats.WIN
    assert stats.compare(b, a).verdict == stats.LOSS
    assert result.as_dict()["ci95"][0] > 0


def test_verdict_rules() -> None:
    assert stats.verdict(None) == stats.TOO_FEW
    assert stats.verdict((-0.01, 0.02)) == stats.LEVEL
    assert stats.verdict((0.01, 0.02)) == stats.WIN
    assert stats.verdict((-0.03, -0.01)) == stats.LOSS
    # Lower is better (invariance error): a negative difference is a win.
    assert stats.verdict((-0.03, -0.01), higher_is_better=False) == stats.WIN
    noisy = stats.compare({0: 0.9, 1: 0.7, 2: 0.8}, {0: 0.8, 1: 0.8, 2: 0.8})
    assert noisy.verdict == stats.LEVEL
    two = stats.compare({0: 0.9, 1: 0.9}, {0: 0.1, 1: 0.1})
    assert two.verdict == stats.TOO_FEW and two.interval is None


def test_cell_stats() -> None:
    cell = stats.cell_stats([0.5, 0.6, 0.7], with_bootstrap=True)
    assert (cell.n, cell.mean, cell.std) == (3, pytest.approx(0.6), pytest.approx(0.1))
    assert cell.interval is not None and cell.bootstrap is not None
    assert stats.cell_stats([]).n == 0
    assert stats.cell_stats([0.5]).interval is None
