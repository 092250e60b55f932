"""One-run privacy audit: the bound's statistics, and gradient canaries in real DP runs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from eqdp.benchmarks.execute import run_benchmark
from eqdp.config.run import RunConfig
from eqdp.config.train import TrainConfig
from eqdp.privacy.audit import count_correct, epsilon_lower_bound, p_value


def test_perfect_guesses_give_the_binomial_bound() -> None:
    # delta = 0: all 100 right is rejected for every eps with q^100 <= 0.05.
    q = 0.05 ** (1 / 100)
    assert epsilon_lower_bound(1000, 100, 100, 0.0) == pytest.approx(math.log(q / (1 - q)), 1e-6)


def test_chance_level_guesses_reject_nothing() -> None:
    assert epsilon_lower_bound(1000, 100, 50, 1e-5) == 0.0
    assert epsilon_lower_bound(1000, 100, 60, 1e-5) < 0.5


def test_delta_makes_the_bound_smaller() -> None:
    assert epsilon_lower_bound(1000, 100, 95, 1e-3) < epsilon_lower_bound(1000, 100, 95, 0.0)
    assert p_value(1000, 100, 95, 2.0, 1e-3) > p_value(1000, 100, 95, 2.0, 0.0)


def test_guesses_take_the_top_and_bottom_scores() -> None:
    scores = [0.1, 5.0, -3.0, 0.2, 4.0, -2.0]
    included = [True, True, False, False, False, False]
    # top 2: canaries 1 (in, right) and 4 (out, wrong); bottom 2: 2 and 5 (out, right).
    assert count_correct(scores, included, 2, 2) == (4, 3)


def audit_config(synthetic_dir: Path, **options) -> RunConfig:
    return RunConfig(
        benchmark="dp",
        model="cnn",
        dataset="breastmnist",
        train=TrainConfig(epochs=4, batch_size=32),
        device="cpu",
        data_dir=str(synthetic_dir),
        verify_md5=False,
        options={"audit": 1000, **options},
    )


def test_audit_without_noise_finds_the_leak(synthetic_dir: Path, tmp_path: Path) -> None:
    # Clipping but no noise: nothing hides the canaries, so the bound is far above 0.
    record, _ = run_benchmark(audit_config(synthetic_dir, noise_multiplier=0.0), tmp_path)
    audit = record["privacy"]["audit"]
    assert audit["steps"] == record["privacy"]["steps"] == 8
    assert audit["canaries"] == 1000 and len(audit["coins"]) == 1000
    assert audit["guesses"] == 100 and audit["correct"] >= 95
    assert audit["epsilon_lower"] > 2.0


def test_audit_at_a_small_epsilon_stays_below_the_claim(synthetic_dir: Path, tmp_path: Path):
    record, _ = run_benchmark(audit_config(synthetic_dir, epsilon=1.0, delta=1e-3), tmp_path)
    privacy = record["privacy"]
    assert privacy["epsilon"] <= 1.0
    assert privacy["audit"]["epsilon_lower"] <= privacy["epsilon"]


def test_audit_changes_nothing_but_the_canary_coordinates(synthetic_dir: Path, tmp_path: Path):
    plain, _ = run_benchmark(audit_config(synthetic_dir, epsilon=4.0, audit=0), tmp_path / "a")
    audited, _ = run_benchmark(audit_config(synthetic_dir, epsilon=4.0), tmp_path / "b")
    assert "audit" not in plain["privacy"]
    assert plain["privacy"]["noise_multiplier"] == audited["privacy"]["noise_multiplier"]
    assert plain["privacy"]["epsilon"] == audited["privacy"]["epsilon"]


def test_one_canary_is_refused_before_training() -> None:
    from eqdp.config.fields import parse_config
    from eqdp.errors import EqdpError
    from eqdp.privacy.options import DPOptions

    with pytest.raises(EqdpError, match="--audit 1"):
        parse_config(DPOptions, {"epsilon": 1.0, "audit": 1}, "benchmark dp")
