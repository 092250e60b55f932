"""Scaling benchmark and laws: points end to end on synthetic data, law recovery, degenerate
sweeps, fit files, the README block and the plot."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from eqdp.cli import app
from eqdp.data import make_synthetic_npz
from eqdp.errors import EqdpError
from eqdp.scaling.fit import DegenerateSweep, fit_joint, fit_power_law, pareto_frontier


@pytest.fixture(scope="module")
def scaling_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("scaling-data")
    make_synthetic_npz(directory, "breastmnist", 28, n_per_split=(64, 32, 32), seed=0)
    make_synthetic_npz(directory, "breastmnist", 64, n_per_split=(64, 32, 32), seed=0)
    return directory


def run(data: Path, results: Path, *extra: str):
    return CliRunner().invoke(
        app,
        ["run", "scaling", "--model", "eq-nasnet-b0", "--dataset", "breastmnist",
         "--data-dir", str(data), "--no-verify-md5", "--epochs", "1",
         "--results-dir", str(results), *extra],
    )  # fmt: skip


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("scaling/*/*/*.json"))]


# --- fits -------------------------------------------------------------------------------


def law_sample(alpha: float, seed: int, noise: float = 0.02):
    rng = np.random.default_rng(seed)
    x = np.repeat([5e3, 1e4, 2e4, 4e4, 8e4, 1.6e5], 3)
    y = (0.25 + 30.0 * x**-alpha) * np.exp(rng.normal(0, noise, len(x)))
    return x, y


@pytest.mark.parametrize("alpha", [0.3, 0.6])
def test_power_law_fit_recovers_a_known_exponent_within_its_interval(alpha: float) -> None:
    x, y = law_sample(alpha, seed=int(alpha * 10))
    fit = fit_power_law(x, y, resamples=100)
    low, high = fit.ci95["alpha"]
    assert low <= alpha <= high
    assert abs(fit.alpha - alpha) < 0.2
    assert fit.r2 > 0.9
    assert 0.1 < fit.E < 0.4


def test_fit_is_not_fooled_by_noise_alone() -> None:
    """The interval of a law fitted to pure noise around a constant must not look tight."""
    rng = np.random.default_rng(3)
    x = np.repeat([5e3, 1e4, 2e4, 4e4, 8e4], 3)
    y = 0.5 * np.exp(rng.normal(0, 0.1, len(x)))
    with pytest.raises(DegenerateSweep):
        # Either flat (means within 1%) or an exponent on its bound; never a confident law.
        fit = fit_power_law(x, y, resamples=100)
        low, high = fit.ci95["alpha"]
        if high - low < 0.5:
            pytest.fail(f"noise gave a confident exponent {fit.alpha:.2f} [{low:.2f}, {high:.2f}]")
        raise DegenerateSweep("wide interval, as it should be")


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ([1e3, 1e3, 2e3, 2e3], [0.5, 0.6, 0.4, 0.45], "2 distinct point"),
        ([1e3], [0.5], "1 distinct point"),
        ([1e3, 2e3, 4e3, 8e3], [0.5, 0.5, 0.501, 0.5], "flat across the sweep"),
        ([1e3, 2e3, 4e3], [0.5, -0.1, 0.3], "finite positive"),
    ],
)
def test_degenerate_sweeps_end_in_a_clear_error(x, y, message: str) -> None:
    with pytest.raises(DegenerateSweep, match=message):
        fit_power_law(x, y, what="test sweep")


def test_joint_fit_recovers_both_exponents_on_a_cross() -> None:
    rng = np.random.default_rng(0)
    n = np.repeat([5e3, 1e4, 2e4, 4e4, 8e4] + [2e4] * 4, 3)
    d = np.repeat([600] * 5 + [75, 130, 210, 350], 3)
    y = (0.1 + 20 * n**-0.5 + 4 * d**-0.4) * np.exp(rng.normal(0, 0.01, len(n)))
    fit = fit_joint(n, d, y, resamples=60)
    assert fit.ci95["a"][0] <= 0.5 <= fit.ci95["a"][1]
    assert fit.ci95["b"][0] <= 0.4 <= fit.ci95["b"][1]
    assert set(fit.optimal_exponents) == {"params", "data"}
    with pytest.raises(DegenerateSweep, match="D takes one value"):
        fit_joint(n, np.full_like(d, 600), y)


def test_pareto_frontier_keeps_points_no_cheaper_point_beats() -> None:
    assert pareto_frontier([3, 1, 2, 4], [0.5, 0.9, 0.6, 0.55]).tolist() == [1, 2, 0]


# --- the benchmark ----------------------------------------------------------------------


def test_scaling_points_end_to_end(scaling_data: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    width = run(scaling_data, results, "--axis", "width", "--value", "0.35,0.5", "--seed", "0")
    assert width.exit_code == 0, width.output
    resolution = run(scaling_data, results, "--size", "64", "--axis", "resolution",
                     "--value", "16")  # fmt: skip
    assert resolution.exit_code == 0, resolution.output
    data = run(scaling_data, results, "--axis", "data", "--value", "0.5", "--epsilon", "8")
    assert data.exit_code == 0, data.output
    by_axis = {}
    for record in records(results):
        by_axis.setdefault(record["scaling"]["axis"], []).append(record)
        point = record["scaling"]
        assert point["train_flops"] == 6 * point["macs"] * point["images_seen"] > 0
        assert {"loss", "auc", "acc"} <= set(record["metrics"]["val"])
        assert {"loss", "auc", "acc"} <= set(record["metrics"]["test"])
    widths = sorted(by_axis["width"], key=lambda r: r["scaling"]["value"])
    assert [r["config"]["model_kwargs"]["width_multiplier"] for r in widths] == [0.35, 0.5]
    assert widths[0]["scaling"]["params"] < widths[1]["scaling"]["params"]
    assert widths[0]["key"] != widths[1]["key"]
    (low_res,) = by_axis["resolution"]
    assert low_res["scaling"]["resolution"] == 16 and low_res["scaling"]["source_size"] == 64
    assert low_res["scaling"]["resampling"].startswith("antialiased")
    assert low_res["scaling"]["macs"] < widths[1]["scaling"]["macs"]
    (private,) = by_axis["data"]
    assert private["scaling"]["n_train"] == 32 and private["scaling"]["private"]
    assert private["privacy"]["epsilon"] <= 8.0 and private["privacy"]["n_train"] == 32


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--axis", "resolution", "--value", "32"], "resolution 32 px"),
        (["--axis", "resolution", "--value", "12.5", "--size", "64"], "whole number"),
        (["--axis", "data", "--value", "1.5"], "not in (0, 1]"),
        (["--axis", "width", "--value", "0.5", "-k", "width_multiplier=2"], "contradicts"),
        (["--axis", "height", "--value", "1"], "height"),
        (["--axis", "width", "--value", "0"], "value"),
    ],
)
def test_bad_points_are_one_line_errors(scaling_data, tmp_path, arguments, message) -> None:
    result = run(scaling_data, tmp_path / "results", *arguments)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "results").exists() or not records(tmp_path / "results")


def test_scaling_fit_of_a_two_point_sweep_is_a_clear_error(scaling_data, tmp_path) -> None:
    results = tmp_path / "results"
    made = run(scaling_data, results, "--axis", "width", "--value", "0.35,0.5")
    assert made.exit_code == 0, made.output
    fitted = CliRunner().invoke(app, ["scaling", "fit", "--results-dir", str(results)])
    assert fitted.exit_code == 2, fitted.output
    assert "2 distinct point(s); a law needs at least 3" in fitted.output
    assert not (results / "scaling" / "fits").exists()


def test_width_of_a_model_without_a_multiplier_names_the_scalable_ones(scaling_data, tmp_path):
    result = CliRunner().invoke(app, [
        "run", "scaling", "--model", "cnn", "--dataset", "breastmnist", "--axis", "width",
        "--value", "0.5", "--data-dir", str(scaling_data), "--no-verify-md5",
        "--results-dir", str(tmp_path),
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "no width_multiplier option" in result.output and "eq-nasnet-b0" in result.output


def test_fit_files_readme_block_and_plot_from_records(scaling_data, tmp_path) -> None:
    """Records with a planted law: `eqdp scaling fit` finds it, `show`, README and plot use it."""
    results = tmp_path / "results"
    made = run(scaling_data, results, "--axis", "width", "--value", "0.35", "--seed", "0")
    assert made.exit_code == 0, made.output
    (template,) = records(results)
    plant = results / "scaling" / "breastmnist_28" / "eq-nasnet-b0"
    for path in plant.glob("*.json"):
        path.unlink()
    for value, params in ((0.35, 7e3), (0.5, 1.4e4), (0.71, 2.5e4), (1.0, 4.7e4)):
        for seed in (0, 1, 2):
            record = copy.deepcopy(template)
            record["run_id"] = f"planted-{value}-{seed}"
            record["seed"] = record["config"]["seed"] = seed
            record["config"]["options"]["value"] = value
            record["config"]["model_kwargs"]["width_multiplier"] = value
            record["scaling"].update(value=value, params=params, x=params)
            loss = (0.2 + 40 * params**-0.5) * (1 + 0.01 * (seed - 1))
            record["metrics"]["val"].update(loss=loss, auc=1 - loss / 2)
            (plant / f"planted-{value}-{seed}.json").write_text(json.dumps(record))
    # A rerun of one measurement replaces it: the law sees 12 runs, not 13.
    rerun = json.loads((plant / "planted-0.5-1.json").read_text())
    rerun["run_id"], rerun["created_at"] = "planted-rerun", "2999-01-01T00:00:00+00:00"
    (plant / "planted-rerun.json").write_text(json.dumps(rerun))
    fitted = CliRunner().invoke(app, ["scaling", "fit", "--results-dir", str(results),
                                      "--resamples", "40"])  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    fits = results / "scaling" / "fits"
    law = json.loads((fits / "breastmnist" / "eq-nasnet-b0-width-loss.json").read_text())
    assert {"family", "axis", "exponent", "ci95", "r2", "points"} <= set(law)
    assert law["family"] == "eq-nasnet-b0" and law["axis"] == "width" and law["x"] == "params"
    assert law["ci95"]["exponent"][0] <= 0.5 <= law["ci95"]["exponent"][1]
    assert len(law["points"]) == 12 and all("residual" in p for p in law["points"])
    assert "planted-rerun" in {p["run_id"] for p in law["points"]}
    assert len(law["band"]["low"]) == len(law["band"]["x"]) == len(law["band"]["high"])
    index = json.loads((fits / "index.json").read_text())
    assert "breastmnist/eq-nasnet-b0-width-loss.json" in index["fits"]
    # fit files are not records
    board = CliRunner().invoke(app, ["leaderboard", "--results-dir", str(results)])
    assert board.exit_code == 0 and "skipped" not in board.output.lower()
    shown = CliRunner().invoke(app, ["scaling", "show", "--results-dir", str(results)])
    assert shown.exit_code == 0 and "eq-nasnet-b0 exponent" in shown.output

    from eqdp.report.readme import updated_readme

    text = "# R\n<!-- eqdp:scaling loss -->\nold\n<!-- /eqdp:scaling -->\n"
    new = updated_readme(text, [], results)
    assert "old" not in new and f"{law['exponent']:.2f}" in new

    out = tmp_path / "scaling.png"
    plotted = CliRunner().invoke(app, ["plot", "scaling", "--results-dir", str(results),
                                       "--out", str(out)])  # fmt: skip
    assert plotted.exit_code == 0, plotted.output
    assert out.stat().st_size > 10_000
    width = int.from_bytes(out.read_bytes()[16:20], "big")  # the PNG header's width
    assert width <= 1200, "three panels to a row, readable at a README's width"
    wrong = CliRunner().invoke(app, ["plot", "scaling", "--results-dir", str(results),
                                     "--metric", "acc", "--out", str(out)])  # fmt: skip
    assert wrong.exit_code == 2 and "loss" in wrong.output


def test_scaling_fit_without_records_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["scaling", "fit", "--results-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no scaling records" in result.output
    from eqdp.scaling.laws import write_fits

    (tmp_path / "taken").write_text("a file")
    with pytest.raises(EqdpError, match="is a file"):
        write_fits({}, [], tmp_path / "taken")
    shown = CliRunner().invoke(app, ["scaling", "show", "--results-dir", str(tmp_path)])
    assert shown.exit_code == 2 and "eqdp scaling fit" in shown.output


def test_committed_resolution_suite_sweeps_each_dataset_below_its_own_file() -> None:
    from eqdp.suites.file import load_suite
    from eqdp.suites.plan import expand

    root = Path(__file__).parents[1]
    configs = list(expand(load_suite(root / "benchmarks" / "scaling" / "resolution.toml")))
    points = {(c.dataset, c.size, c.options["value"]) for c in configs}
    assert {v for d, s, v in points if d == "breastmnist"} == {16, 24, 32, 48, 64}
    assert {s for d, s, v in points if d == "breastmnist"} == {64}
    assert {v for d, s, v in points if d == "pneumoniamnist"} == {12, 16, 20, 24, 28}
    assert len(configs) == 2 * 5 * 2 * 3  # datasets x points x families x seeds


def test_twin_initial_weights_do_not_depend_on_the_match_cache() -> None:
    """Matching a twin builds candidate networks; that must not move the seeded RNG stream."""
    import torch

    from eqdp.models import create_model
    from eqdp.models.nasnet import _matched_twin

    def weights() -> torch.Tensor:
        torch.manual_seed(7)
        model = create_model("nasnet-b0", 1, 2, width_multiplier=0.61)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    _matched_twin.cache_clear()
    cold = weights()
    warm = weights()
    assert torch.equal(cold, warm)
