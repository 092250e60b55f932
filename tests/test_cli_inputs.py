"""A newcomer's mistakes: each ends in one `error:` line naming the bad value, exit code 2,
and nothing written (issues 28 item 4 and 29)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from eqdp.cli import app
from tests.test_cli import run_args

runner = CliRunner()


def assert_clean_error(result, message: str, results: Path) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert message in " ".join(result.output.split()), result.output
    assert not results.exists(), "a failed run left its results folder behind"


@pytest.mark.parametrize(
    ("model", "option", "message"),
    [
        ("cnn", "width=abc", "option width='abc' is not valid: width takes an integer > 0"),
        ("cnn", "width=0", "option width=0 is not valid: width takes an integer > 0"),
        ("cnn", "width=-4", "option width=-4 is not valid"),
        ("cnn", "width=2.5", "option width=2.5 is not valid"),
        ("eq-nasnet", "width_multiplier=abc", "width_multiplier takes a number > 0"),
        ("eq-nasnet", "width_multiplier=-1", "option width_multiplier=-1 is not valid"),
        ("eq-nasnet", "dropout=1", "dropout takes a number in [0, 1)"),
        ("eq-cnn", "widths=[8,0]", "widths takes a list of integers > 0"),
        ("cnn", "depth=3", "model 'cnn' has no option(s) ['depth']; its options: width"),
    ],
)
def test_a_bad_model_option_is_named_before_building(
    synthetic_dir: Path, tmp_path: Path, model: str, option: str, message: str
) -> None:
    results = tmp_path / "r"
    args = run_args(synthetic_dir, results, "-k", option)
    args[args.index("--model") + 1] = model
    assert_clean_error(runner.invoke(app, args), message, results)


def test_every_model_default_passes_its_own_option_checks() -> None:
    from eqdp.models import MODELS

    for name in MODELS.names():
        spec = MODELS.get(name)
        spec.check_options({k: v for k, v in spec.option_defaults().items() if v is not None})


def test_create_model_checks_option_values_too() -> None:
    from eqdp.errors import EqdpError
    from eqdp.models import create_model

    with pytest.raises(EqdpError, match="width takes an integer > 0"):
        create_model("cnn", 1, 2, width=2.5)


SMALL_SUITE = (
    'benchmark = "standard"\nmodels = ["cnn"]\nseeds = [0]\n[datasets.breastmnist]\nepochs = 1\n'
)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("command", ["run", "suite"])
def test_a_results_folder_under_proc_is_one_line_not_a_traceback(
    synthetic_dir: Path, tmp_path: Path, command: str
) -> None:
    if command == "run":
        args = run_args(synthetic_dir, Path("/proc/eqdp-results"))
    else:
        suite = tmp_path / "suite.toml"
        suite.write_text(SMALL_SUITE)
        args = ["suite", str(suite), "--results-dir", "/proc/eqdp-results", "--data-dir",
                str(synthetic_dir), "--no-verify-md5", "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert_clean_error(result, "results folder /proc/eqdp-results cannot be created in /proc",
                       Path("/proc/eqdp-results"))  # fmt: skip


def test_lr_milestones_outside_the_epochs_are_refused(synthetic_dir: Path, tmp_path: Path) -> None:
    results = tmp_path / "r"
    result = runner.invoke(app, run_args(synthetic_dir, results, "--lr-milestones", "0.5,1.5"))
    assert_clean_error(result, "strictly between 0 and 1 (e.g. 0.5,0.75); got 1.5", results)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--min-group-order", "3"], "no group of the search space has order 3; valid: 1, 2, 4"),
        (["--threads", "0"], "--threads 0: must be at least 1"),
        (["--trials", "0"], "--trials 0: must be at least 1"),
        (["--workers", "-1"], "--workers -1: must be at least 1"),
    ],
)
def test_search_settings_that_would_be_silently_wrong_are_refused(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    study = tmp_path / "study"
    trials = [] if "--trials" in extra else ["--trials", "1"]
    args = ["search", "run", "--study", str(study), *trials, *extra]
    assert_clean_error(runner.invoke(app, args), message, study)


def test_search_group_orders_are_those_of_the_chains() -> None:
    from eqdp.models.equivariant.basis import group_order
    from eqdp.search.objective import SEARCH_GROUP_ORDERS
    from eqdp.search.space import CHAINS

    orders = {group_order(g) for chain in CHAINS.values() for g in chain}
    assert tuple(sorted(orders)) == SEARCH_GROUP_ORDERS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "standard", "-m", "cnn", "-d", "breastmnist", "--threads", "2"],
         "error: No such option: --threads (see `eqdp run standard --help`)"),
        (["run", "standard", "-m", "cnn"], "error: Missing option '--dataset' / '-d'"),
        (["info"], "error: Missing argument 'model'"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line_not_a_box(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert "╭" not in result.output and "Usage:" not in result.output
    assert_clean_error(result, message, tmp_path / "nothing")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--seed", "abc"), "seed 'abc' is not a valid value: give an integer, or a comma list"),
        (("--data-dir", "FILE"), "is a file, not a folder; point --data-dir"),
        (("--attack", "nope"), "unknown attack 'nope'; valid choices: autoattack, fgsm"),
        (("--eps", "-1"), "attack eps must be finite and >= 0, got -1"),
        (("--device", "cuda"), "device 'cuda' requested but no CUDA GPU is visible"),
    ],
)
def test_wording_of_seed_data_dir_attack_and_device_errors(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    change: tuple[str, str], message: str,
) -> None:  # fmt: skip
    from eqdp.benchmarks import precheck

    monkeypatch.setattr(precheck, "gpu_certainly_absent", lambda: True)
    results = tmp_path / "r"
    flag, value = change
    if value == "FILE":
        value = str(tmp_path / "a-file")
        Path(value).write_text("x")
    args = run_args(synthetic_dir, results)
    if flag in ("--attack", "--eps"):
        args[1] = "adversarial"
        args += ["--from-run", "none"] + (["--attack", "fgsm"] if flag == "--eps" else [])
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    assert_clean_error(runner.invoke(app, args), message, results)


def test_a_failed_first_run_leaves_no_empty_results_folder(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eqdp.benchmarks import execute
    from eqdp.errors import EqdpError

    def failing(config, on_progress):  # fails after the claim made the folder
        raise EqdpError("cannot read the data file: truncated")

    monkeypatch.setattr(execute, "run_benchmark", failing)
    results = tmp_path / "r"
    result = runner.invoke(app, run_args(synthetic_dir, results))
    assert result.exit_code == 2 and "truncated" in result.output
    assert not results.exists()


def test_a_truncated_npz_is_named_before_loading(tmp_path: Path, synthetic_dir: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    whole = (synthetic_dir / "breastmnist.npz").read_bytes()
    (data / "breastmnist.npz").write_bytes(whole[: len(whole) // 2])
    results = tmp_path / "r"
    result = runner.invoke(app, run_args(data, results))
    assert_clean_error(result, "breastmnist.npz is not a complete .npz file (truncated", results)
    assert "loading data" not in result.output


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "cannot read suite file"),
        ("", "lacks the key 'benchmark'"),
        ("this is [not toml", "cannot read suite file"),
        (SMALL_SUITE.replace("breastmnist", "catmnist"), "dataset = 'catmnist': unknown dataset"),
        (SMALL_SUITE + '[sweep]\n"train.momentum" = [0.9]\n',
         "suite sweep 'train.momentum': train has no field 'momentum'; valid: train.epochs"),
    ],
)  # fmt: skip
def test_suite_file_mistakes(tmp_path: Path, body: str | None, message: str) -> None:
    suite = tmp_path / "suite.toml"
    if body is not None:
        suite.write_text(body)
    results = tmp_path / "r"
    result = runner.invoke(app, ["suite", str(suite), "--results-dir", str(results)])
    assert_clean_error(result, message, results)
