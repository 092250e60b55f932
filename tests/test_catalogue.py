"""The committed model catalogue (eqdp/catalogue/models.json) is the registry's truth, and
the commands that read it stay light (issue 29 item 7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from eqdp.catalogue.models import build_catalogue, load_catalogue, stored_counts

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "regenerate it: python -m eqdp.catalogue.models"


def test_catalogue_names_options_and_descriptions_match_the_registry() -> None:
    fresh, stored = build_catalogue(with_counts=False), load_catalogue()
    assert fresh["aliases"] == stored["aliases"], REGENERATE
    assert sorted(fresh["models"]) == sorted(stored["models"]), REGENERATE
    for name, entry in fresh["models"].items():
        kept = {k: v for k, v in stored["models"][name].items() if k != "counts"}
        assert {k: v for k, v in entry.items() if k != "counts"} == kept, (name, REGENERATE)


def test_every_model_but_arch_spec_has_counts_at_28_and_64() -> None:
    for name in load_catalogue()["models"]:
        for size in (28, 64):
            counts = stored_counts(name, size)
            assert (counts is None) == (name == "arch-spec"), (name, size)


@pytest.mark.parametrize("name", ["cnn", "eq-cnn", "eq-nasnet-b0", "wrn-16-4"])
@pytest.mark.parametrize("size", [28, 64])
def test_stored_counts_equal_counting_a_built_model(name: str, size: int) -> None:
    from eqdp.models import describe_model

    info = describe_model(name, 1, 2, image_size=size)
    assert stored_counts(name, size) == {"params": info.params, "macs": info.macs,
                                         "group": info.group}, REGENERATE  # fmt: skip


PROBE = (
    "import sys\nfrom eqdp.cli import app\n"
    "try:\n    app(sys.argv[1:], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
    "except Exception as error:\n    print('RAISED', type(error).__name__, error)\n"
    "heavy = [m for m in ('torch', 'escnn', 'opacus', 'monai') if m in sys.modules]\n"
    "print('HEAVY', heavy)\n"
)


@pytest.mark.parametrize(
    "arguments",
    [
        ["list", "models"],
        ["info", "eq-nasnet"],
        ["info", "resnet99"],
        ["run", "standard", "-m", "cnn", "-d", "breastmnist", "-k", "width=abc"],
        ["run", "standard", "-m", "resnet99", "-d", "breastmnist"],
        ["run", "standard", "-m", "cnn", "-d", "breastmnist", "--lr", "0"],
        ["run", "dp", "-m", "cnn", "-d", "breastmnist", "--epsilon", "0"],
        ["run", "standard", "-m", "cnn", "-d", "breastmnist", "--data-dir", "/nonexistent"],
        ["suite", "SUITE", "--dry-run"],
        ["suite", "SUITE", "--results-dir", "/proc/eqdp-results"],
    ],
)
def test_listing_and_bad_input_answer_before_torch_is_imported(
    arguments: list[str], tmp_path: Path
) -> None:
    """Importing torch and the models takes 7-11 s on a busy machine: `list models`,
    `info` with stored counts, and a run's argument errors must not wait for it."""
    if arguments[0] == "run":
        arguments = [*arguments, "--results-dir", str(tmp_path / "r"), "--device", "cpu"]
    if arguments[0] == "suite":  # a suite naming an unknown dataset, or writing under /proc
        dry = "--dry-run" in arguments
        suite = tmp_path / "suite.toml"
        dataset = "catmnist" if dry else "breastmnist"
        suite.write_text(f'benchmark = "standard"\nmodels = ["cnn"]\n[datasets.{dataset}]\n')
        results = str(tmp_path / "r") if dry else "/proc/eqdp-results"
        arguments = ["suite", str(suite), "--results-dir", results, "--no-verify-md5"]
        arguments += ["--dry-run"] if dry else []
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *arguments], capture_output=True, text=True, cwd=ROOT
    )
    assert "HEAVY []" in run.stdout, run.stdout + run.stderr
    assert not (tmp_path / "r").exists()
    if arguments[:2] not in (["list", "models"], ["info", "eq-nasnet"]):
        assert "error:" in run.stderr, run.stdout + run.stderr  # refused, not merely light


def test_a_model_registered_at_run_time_passes_the_catalogue_check() -> None:
    from torch import nn

    from eqdp.catalogue.models import check_model
    from eqdp.errors import EqdpError
    from eqdp.models import MODELS, register_model

    @register_model("tiny-test-model")
    def tiny(in_channels: int, num_classes: int, *, dp: bool = False, image_size: int = 28):
        return nn.Linear(in_channels * image_size**2, num_classes)

    try:
        check_model("tiny-test-model", {})  # the caller's own model: the registry checks it
        with pytest.raises(EqdpError, match="unknown model 'tiny-test-modl'"):
            check_model("tiny-test-modl", {})
    finally:
        MODELS._entries.pop("tiny-test-model")
