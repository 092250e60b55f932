"""One-run privacy audit: the bound's statistics, and gradient canaries in real DP runs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from eqdp.benchmarks.execute import run_benchmark
from eqdp.config.run import RunConfig
from eqdp.config.train import TrainConfig
from eqdp.privacy.audit import (
    audit_cap,
    cap_table,
    count_correct,
    default_guesses,
    epsilon_lower_bound,
    p_value,
)


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


def reference_p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """Steinke et al.'s reference loop (p_value_DP_audit), term by term."""
    from scipy import stats

    q = 1 / (1 + math.exp(-eps))
    beta = stats.binom.sf(v - 1, r, q)
    alpha, total = 0.0, 0.0
    for i in range(1, v + 1):
        total += stats.binom.pmf(v - i, r, q)
        alpha = max(alpha, total / i)
    return min(1.0, beta + alpha * delta * 2 * m)


@pytest.mark.parametrize(
    ("m", "r", "v", "eps", "delta"),
    [(1000, 100, 100, 3.0, 1e-5), (1000, 200, 180, 1.5, 1e-5), (50, 50, 30, 0.5, 1e-3),
     (20000, 5000, 4990, 6.0, 1e-5), (10, 4, 0, 1.0, 0.0)],
)  # fmt: skip
def test_p_value_is_the_papers(m: int, r: int, v: int, eps: float, delta: float) -> None:
    assert p_value(m, r, v, eps, delta) == pytest.approx(reference_p_value(m, r, v, eps, delta))


def test_the_bound_grows_with_correct_guesses_and_shrinks_with_canaries() -> None:
    bounds = [epsilon_lower_bound(1000, 200, v, 1e-5) for v in range(150, 201, 10)]
    assert bounds == sorted(bounds) and bounds[0] < bounds[-1]
    caps = [audit_cap(m, 1000, 1e-5) for m in (1000, 5000, 20000, 50000)]
    assert caps == sorted(caps, reverse=True)  # the 2 m delta term


def test_cap_table_matches_the_documented_numbers() -> None:
    # The table in eqdp/privacy/audit.py's comment, and the thresholds the suite relies on.
    rows = cap_table((1000, 20000), (100, 200, 1000, 20000))
    assert [round(c, 2) if c is not None else None for c in rows[0]] == [3.47, 4.17, 5.78, None]
    assert [round(c, 2) for c in rows[1]] == [2.85, 3.57, 5.2, 8.2]
    assert audit_cap(1000, 169, 1e-5) < 4 < audit_cap(1000, 170, 1e-5)
    assert audit_cap(12976, 12976, 1e-5) < 8 < audit_cap(12977, 12977, 1e-5)


def test_default_guesses_let_a_leak_exceed_four() -> None:
    assert default_guesses(1000) == 200 and audit_cap(1000, 200, 1e-5) > 4
    assert default_guesses(2) == 2 and default_guesses(7) == 2


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
    assert audit["guesses"] == 200 and audit["correct"] >= 190
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


def test_gradient_audit_records_its_kind_and_guesses(synthetic_dir: Path, tmp_path: Path):
    config = audit_config(synthetic_dir, epsilon=8.0, audit=500, audit_guesses=250)
    record, _ = run_benchmark(config, tmp_path)
    audit = record["privacy"]["audit"]
    assert record["config"]["options"]["audit_kind"] == "gradient"
    assert audit["kind"] == "gradient" and audit["method"].endswith("gradient-canaries")
    assert audit["guesses"] == 250 and audit["canaries"] == 500


def input_audit_config(synthetic_dir: Path, **options) -> RunConfig:
    config = audit_config(synthetic_dir, audit=40, audit_kind="input", **options)
    return config.replace(train=TrainConfig(epochs=2, batch_size=32))


def test_input_canaries_train_as_examples_and_leave_the_accounting_planned(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    record, _ = run_benchmark(input_audit_config(synthetic_dir, epsilon=4.0), tmp_path)
    privacy, audit = record["privacy"], record["privacy"]["audit"]
    assert record["config"]["options"]["audit_kind"] == "input"
    assert audit["kind"] == "input" and audit["method"].endswith("input-canaries")
    assert audit["canaries"] == 40 and len(audit["coins"]) == 40
    assert audit["included"] == audit["coins"].count("1")
    assert audit["guesses"] == 8  # a fifth of 40
    assert 0 <= audit["correct"] <= 8 and 0 <= audit["epsilon_lower"] <= privacy["epsilon"]
    # The included canaries are training examples; the schedule is planned for the
    # coin-independent 64 + 40 // 2 = 84 examples: round(84 / 32) = 3 steps an epoch.
    n_real = 64
    assert audit["n_train_real"] == n_real and audit["planned_n_train"] == 84
    assert privacy["n_train"] == record["data"]["n_train"] == n_real + audit["included"]
    assert privacy["steps"] == 6 and privacy["sample_rate"] == pytest.approx(1 / 3)
    assert privacy["expected_batch_size"] == pytest.approx(28.0)
    assert privacy["epsilon"] <= 4.0
    # The same (sigma, q, steps) whatever the coins: a plain run of 84 examples' schedule.
    from eqdp.privacy.accounting import calibrate_noise

    assert privacy["noise_multiplier"] == pytest.approx(
        calibrate_noise(4.0, privacy["delta"], 1 / 3, 6, "prv")
    )


def test_input_canaries_are_found_when_nothing_hides_them(synthetic_dir: Path, tmp_path: Path):
    # epsilon = inf: no clipping, no noise, and long enough (180 steps) to memorise the
    # included noise images; the 5 lowest and 5 highest scores are then all guessed right
    # (at 90 steps with lr 3e-3 they were not yet: 6 of 10).
    config = input_audit_config(synthetic_dir, epsilon=math.inf, audit_guesses=10)
    config = config.replace(train=TrainConfig(epochs=60, batch_size=32, lr=1e-2))
    record, _ = run_benchmark(config, tmp_path)
    audit = record["privacy"]["audit"]
    assert record["privacy"]["epsilon"] is None
    assert audit["correct"] == 10, audit
    assert audit["epsilon_lower"] == pytest.approx(epsilon_lower_bound(40, 10, 10, 1e-5))


def test_input_canaries_count_towards_delta() -> None:
    from eqdp.privacy.options import DPOptions

    options = DPOptions(epsilon=1.0, audit=2000, audit_kind="input")
    assert options.resolved(9000, 128).delta == pytest.approx(1 / 110_000)
    assert DPOptions(epsilon=1.0, audit=2000).resolved(9000, 128).delta == pytest.approx(1e-5)


def test_one_canary_is_refused_before_training() -> None:
    from eqdp.config.fields import parse_config
    from eqdp.errors import EqdpError
    from eqdp.privacy.options import DPOptions

    with pytest.raises(EqdpError, match="--audit 1"):
        parse_config(DPOptions, {"epsilon": 1.0, "audit": 1}, "benchmark dp")

    with pytest.raises(EqdpError, match="more guesses than the 10"):
        parse_config(DPOptions, {"epsilon": 1.0, "audit": 10, "audit_guesses": 12}, "dp")


def test_the_strong_suite_can_show_more_than_four_with_both_kinds() -> None:
    from eqdp.suites import load_suite
    from eqdp.suites.plan import expand

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    configs = list(expand(load_suite(root / "dp" / "audit-strong.toml")))
    assert len(configs) == 2 * 3 * 2  # datasets x epsilon x kind
    assert {(c.dataset, c.options["audit_kind"]) for c in configs} == {
        (d, k) for d in ("breastmnist", "pneumoniamnist") for k in ("gradient", "input")
    }
    for config in configs:
        m, k = config.options["audit"], config.options["audit_guesses"]
        assert audit_cap(m, k, 1e-5) > 5  # delta = 1e-5 on both (N + m < 10^4)
    campaign = (root / "campaign.toml").read_text()
    assert '"benchmarks/dp/audit-strong.toml"' in campaign


def test_audits_from_before_the_guesses_option_keep_their_guesses_and_their_own_row() -> None:
    """The default guesses went from a tenth to a fifth of the canaries: a committed
    1000-canary audit (100 guesses) must not share a row with a new 200-guess audit."""
    import copy
    import json
    from pathlib import Path

    from eqdp.results.identity import row_key
    from eqdp.results.migrations import migrate_records

    root = Path(__file__).resolve().parents[1] / "results" / "dp"
    raw = next(
        r for r in (json.loads(p.read_text()) for p in root.rglob("*.json"))
        if r["config"]["options"].get("audit") and "audit_guesses" not in r["config"]["options"]
    )  # fmt: skip
    (old,) = migrate_records([raw])
    assert old["config"]["options"]["audit_guesses"] == raw["privacy"]["audit"]["guesses"] == 100
    new_config = copy.deepcopy(raw["config"])
    new_config["options"]["audit_guesses"] = None  # a run today, at the default
    assert row_key(old["config"]) != row_key(new_config)
