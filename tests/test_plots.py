from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from eqdp.cli import app
from eqdp.results import write_record
from tests.test_records import make_record

runner = CliRunner()


def synthetic_records(root: Path) -> None:
    """Two models x two seeds of every plotted benchmark, written without training."""
    for model in ("cnn", "eq-resnet-d4"):
        for seed in (0, 1):
            common = {"model": model, "seed": seed}
            shift = 0.05 * (model == "eq-resnet-d4") + 0.02 * seed  # distinct lines, visible bands
            # fraction 1.0 comes from a standard run of the same recipe
            write_record(make_record(benchmark="standard", **common, auc=0.85), root)
            for fraction in (0.1, 0.5):
                low = make_record(
                    benchmark="low-data", **common, auc=0.6 + fraction / 4,
                    options={"fraction": fraction},
                )  # fmt: skip
                low["metrics"]["test"]["acc"] = 0.6 + fraction / 4 + shift
                low.update(run_id=f"low-{model}-{seed}-{fraction}", low_data={"fraction": fraction})
                write_record(low, root)
            adversarial = make_record(
                benchmark="adversarial", **common, options={"attacks": ["fgsm", "pgd-linf"]}
            )
            adversarial["adversarial"] = {
                "clean": {"acc": 0.8, "auc": 0.9},
                "attacks": ["fgsm", "pgd-linf"],
                "results": [
                    {"attack": a, "eps": e, "acc": 0.8 - 20 * e + shift, "auc": 0.9 - 10 * e}
                    for a in ("fgsm", "pgd-linf")
                    for e in (1 / 255, 4 / 255, 8 / 255)
                ],
            }
            write_record(adversarial, root)
            geometric = make_record(benchmark="geometric", **common, options={})
            geometric["geometric"] = {
                "transforms": [
                    {
                        "name": f"r{a}",
                        "kind": "rotation",
                        "angle": a,
                        "acc": 0.7 + shift,
                        "auc": 0.8,
                    }
                    for a in range(0, 360, 45)
                ]
            }
            write_record(geometric, root)
            for epsilon in (1.0, 8.0, float("inf")):
                dp = make_record(
                    benchmark="dp", **common, privacy={"epsilon": epsilon},
                    options={"epsilon": epsilon, "delta": 1e-5},
                )  # fmt: skip
                dp.update(run_id=f"dp-{model}-{seed}-{epsilon}")
                dp["metrics"]["test"]["acc"] = 0.8 - 0.2 / epsilon + shift
                write_record(dp, root)


@pytest.mark.parametrize("kind", ["low-data", "adversarial", "geometric", "dp"])
def test_plot_writes_png_and_svg(tmp_path: Path, kind: str) -> None:
    synthetic_records(tmp_path / "results")
    for suffix in (".png", ".svg"):
        out = tmp_path / "figures" / f"{kind}{suffix}"
        args = ["plot", kind, "--results-dir", str(tmp_path / "results"), "--out", str(out)]
        result = runner.invoke(app, [*args, "--dataset", "breastmnist", "--metric", "auc"])
        assert result.exit_code == 0, result.output
        head = out.read_bytes()[:400]
        assert head.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in head


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plot", "robustness"], "unknown plot 'robustness'"),
        (["plot", "scaling"], "no scaling records"),
        (["plot", "standard"], "unknown plot 'standard'"),
        (["plot", "low-data", "--metric", "f1"], "unknown metric 'f1'"),
        (["plot", "low-data", "--out", "figure.jpg"], "must end in one of .png, .svg, .pdf"),
        (["plot", "low-data", "--dataset", "pathmnist"], "no low-data records on pathmnist"),
        (["plot", "low-data", "--dataset", "catmnist"], "unknown dataset 'catmnist'"),
    ],
)
def test_plot_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    synthetic_records(tmp_path / "results")
    result = runner.invoke(
        app, [*args, "--results-dir", str(tmp_path / "results")], catch_exceptions=False
    )
    assert result.exit_code == 2 and message in result.output
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.jpg"))
