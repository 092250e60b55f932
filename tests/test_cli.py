from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eqdp.cli import app
from tests.conftest import REAL_DATA_DIR, requires_real_data

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def run_args(synthetic_dir: Path, results: Path, *extra: str) -> list[str]:
    return [
        "run", "standard", "--model", "cnn", "--dataset", "breastmnist", "--epochs", "1",
        "--batch-size", "32", "--device", "cpu", "--no-verify-md5",
        "--data-dir", str(synthetic_dir), "--results-dir", str(results), *extra,
    ]  # fmt: skip


def test_run_then_leaderboard(synthetic_dir: Path, tmp_path: Path) -> None:
    result = invoke(*run_args(synthetic_dir, tmp_path, "--seed", "0,1"))
    assert result.exit_code == 0, result.output
    records = sorted(tmp_path.rglob("*.json"))
    assert len(records) == 2
    assert {json.loads(p.read_text())["seed"] for p in records} == {0, 1}

    board = invoke("leaderboard", "--results-dir", str(tmp_path), "--format", "json")
    assert board.exit_code == 0, board.output
    rows = json.loads(board.stdout)
    assert rows[0]["model"] == "cnn" and rows[0]["n_seeds"] == 2
    markdown = invoke("leaderboard", "--results-dir", str(tmp_path), "--format", "markdown")
    assert "| standard | breastmnist (28) | cnn |" in markdown.stdout
    assert invoke("leaderboard", "--results-dir", str(tmp_path)).exit_code == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--model", "resnet99"), "unknown model 'resnet99'; valid choices:"),
        (("--dataset", "catmnist"), "dataset = 'catmnist': unknown dataset; valid choices:"),
        (("--size", "32"), "size = '32': unknown size; valid choices: 28, 64, 128, 224"),
        (("--epochs", "0"), "epochs = '0': Input should be greater than 0"),
        (("--epochs", "ten"), "epochs = 'ten': Input should be a valid integer"),
        (("--batch-size", "-4"), "batch_size = '-4': Input should be greater than 0"),
        (("--augment", "mixup"), "augment = 'mixup': Input should be 'none' or 'd4'"),
        (("--seed", "1,x"), "seed 'x' is not a valid value"),
        (("--seed", "4294967296"), "seed = 4294967296: Input should be less than or equal"),
        (("--seed", "0,0"), "--seed '0,0' repeats a seed"),
        (("--model-arg", "width"), "model option 'width' is not KEY=VALUE"),
        (("--model-arg", "depth=3"), "model 'cnn' has no option(s) ['depth']; its options: width"),
        (("--precision", "bf16"), "precision 'bf16' needs a CUDA device"),
    ],
)
def test_bad_input_one_line_error_no_record(
    synthetic_dir: Path, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    args = run_args(synthetic_dir, tmp_path)
    flag, value = change
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.rglob("*.json"))


def test_unknown_benchmark(synthetic_dir: Path, tmp_path: Path) -> None:
    args = run_args(synthetic_dir, tmp_path)
    args[1] = "olympics"
    result = invoke(*args)
    assert result.exit_code == 2 and "No such command 'olympics'" in result.output


def test_missing_data_dir_and_file(tmp_path: Path) -> None:
    args = run_args(tmp_path / "absent", tmp_path / "results")
    result = invoke(*args)
    assert result.exit_code == 2 and "does not exist" in result.output
    (tmp_path / "empty").mkdir()
    result = invoke(*run_args(tmp_path / "empty", tmp_path / "results"))
    assert result.exit_code == 2
    assert "breastmnist.npz not found" in result.output and "download it from" in result.output
    assert not (tmp_path / "results").exists()


def test_md5_mismatch_from_cli(synthetic_dir: Path, tmp_path: Path) -> None:
    args = [a for a in run_args(synthetic_dir, tmp_path) if a != "--no-verify-md5"]
    result = invoke(*args)
    assert result.exit_code == 2 and "MD5 mismatch" in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any directory")
def test_unreadable_results_dir(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0)
    result = invoke("leaderboard", "--results-dir", str(locked))
    assert result.exit_code == 2 and "not a readable directory" in result.output


def test_results_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = invoke("leaderboard", "--results-dir", str(tmp_path / "file"))
    assert result.exit_code == 2 and "not a readable directory" in result.output


def test_leaderboard_names_a_corrupt_file_and_skips_it_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{")
    result = invoke("leaderboard", "--results-dir", str(tmp_path), "--format", "csv")
    assert result.exit_code == 2 and "broken.json is invalid: unreadable JSON" in result.output
    result = invoke("leaderboard", "--results-dir", str(tmp_path), "--skip-invalid")
    assert result.exit_code == 0
    assert "skipping" in result.output and "broken.json" in result.output


def test_list_and_info() -> None:
    listing = invoke("list", "models")
    assert listing.exit_code == 0 and "eq-resnet-d4" in listing.stdout
    datasets = invoke("list", "datasets")
    assert "pneumoniamnist" in datasets.stdout and "4708/524/624" in datasets.stdout
    assert "standard" in invoke("list", "benchmarks").stdout
    info = invoke("info", "eq-resnet-d4", "--dataset", "retinamnist")
    assert info.exit_code == 0 and "D4" in info.stdout and "3x28x28" in info.stdout
    bad = invoke("info", "eq-resnet-d4", "--dataset", "nomnist")
    assert bad.exit_code == 2 and "unknown dataset" in bad.output
    assert invoke("list", "colours").exit_code == 2


def test_suite_dry_run_and_skip(tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'benchmark = "standard"\nmodels = ["cnn", "eq-resnet-d4"]\nseeds = [0, 1]\n'
        "[train]\nbatch_size = 64\n[datasets.breastmnist]\nepochs = 3\n"
    )
    result = invoke("suite", str(suite), "--dry-run", "--results-dir", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    assert "4 runs, 0 already recorded" in result.stdout
    only = invoke("suite", str(suite), "--dry-run", "--model", "eq-resnet-d4")
    assert only.exit_code == 0 and "2 runs, 0 already recorded" in only.stdout
    typo = invoke("suite", str(suite), "--dry-run", "--model", "eq-nasnt")
    assert typo.exit_code == 2
    assert "unknown model in this suite 'eq-nasnt'; valid choices: cnn, eq-resnet-d4" in typo.output
    seed = invoke("suite", str(suite), "--dry-run", "--model", "cnn", "--seed", "1")
    assert seed.exit_code == 0 and "1 runs, 0 already recorded" in seed.stdout
    assert "cnn breastmnist seed 1" in seed.stdout and "seed 0" not in seed.stdout
    assert "unknown seed in this suite '7'" in invoke("suite", str(suite), "--seed", "7").output
    suite.write_text(
        'benchmark = "standard"\nmodels = ["cnn"]\nseeds = [0]\n[datasets.breastmnist]\nepoch = 3\n'
    )
    bad = invoke("suite", str(suite), "--dry-run")
    assert bad.exit_code == 2 and "unknown field(s) ['epoch']; valid: epochs," in bad.output


@requires_real_data
def test_real_data_end_to_end(tmp_path: Path) -> None:
    args = [
        "run", "standard", "--model", "eq-cnn", "--dataset", "breastmnist", "--epochs", "1",
        "--device", "cpu", "--data-dir", str(REAL_DATA_DIR), "--results-dir", str(tmp_path),
    ]  # fmt: skip
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    (record_path,) = tmp_path.rglob("*.json")
    record = json.loads(record_path.read_text())
    assert record["data"]["n_train"] == 546 and record["data"]["n_test"] == 156
    assert 0.0 <= record["metrics"]["test"]["auc"] <= 1.0


def test_standard_refuses_options_of_other_benchmarks(synthetic_dir: Path, tmp_path: Path) -> None:
    result = invoke(*run_args(synthetic_dir, tmp_path, "--epsilon", "1"))
    assert result.exit_code == 2 and "No such option: --epsilon" in result.output
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.parametrize(
    "arguments",
    [["--help"], ["run", "dp", "--help"], ["list", "benchmarks"], ["leaderboard"], ["readme"]],
)
def test_reading_commands_import_no_torch(arguments: list[str]) -> None:
    """`eqdp --help`, `list`, `leaderboard` and `readme` stay light: lazy imports throughout."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    if arguments == ["leaderboard"]:
        arguments = [*arguments, "--results-dir", str(root / "results")]
    if arguments == ["readme"]:
        arguments = [*arguments, str(root / "README.md"), "--check"]
    probe = (
        "import sys\nfrom eqdp.cli import app\n"
        "try:\n    app(sys.argv[1:], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'opacus', 'monai', 'escnn', 'medmnist', 'sklearn')"
        " if m in sys.modules]\nprint('HEAVY', heavy)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, *arguments], capture_output=True, text=True, cwd=root
    )
    assert "HEAVY []" in run.stdout, run.stdout + run.stderr


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: r["metrics"]["test"].update(auc="high"), "metrics.test.auc = 'high' is not a"),
        (lambda r: r["timing"].pop("train_seconds"), "timing.train_seconds is missing"),
    ],
)
def test_leaderboard_over_a_damaged_record_fails_naming_it(
    synthetic_dir: Path, tmp_path: Path, damage, message: str
) -> None:
    assert invoke(*run_args(synthetic_dir, tmp_path, "--seed", "0,1")).exit_code == 0
    path = sorted(p for p in tmp_path.rglob("*.json") if "checkpoints" not in p.parts)[0]
    record = json.loads(path.read_text())
    damage(record)
    path.write_text(json.dumps(record))
    result = invoke("leaderboard", "--results-dir", str(tmp_path))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert message in result.output and str(path.name) in result.output
    assert len(result.output.strip().splitlines()) == 1
    skipped = invoke("leaderboard", "--results-dir", str(tmp_path), "--skip-invalid", "--format",
                     "json")  # fmt: skip
    assert skipped.exit_code == 0 and json.loads(skipped.stdout)[0]["n_seeds"] == 1


def test_runs_lists_finished_runs_with_ids_filters_and_checkpoints(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    results = tmp_path / "r"
    assert invoke(*run_args(synthetic_dir, results, "--seed", "0,1")).exit_code == 0
    listed = invoke("runs", "--results-dir", str(results), "--format", "json")
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)
    assert [r["seed"] for r in runs] == [1, 0]  # newest first
    assert all(r["checkpoint"] and Path(r["checkpoint"]).is_file() for r in runs)
    Path(runs[0]["checkpoint"]).unlink()
    flags = ("--results-dir", str(results), "--format", "json")
    usable = json.loads(invoke("runs", *flags, "--with-checkpoint").stdout)
    assert [r["run_id"] for r in usable] == [runs[1]["run_id"]]
    only = json.loads(invoke("runs", "--results-dir", str(results), "--seed", "1",
                             "--format", "json").stdout)  # fmt: skip
    assert [r["run_id"] for r in only] == [runs[0]["run_id"]]
    table = invoke("runs", "--results-dir", str(results))
    assert runs[1]["run_id"] in table.stdout and "2 of 2 finished runs" in table.stdout
    bad = invoke("runs", "--results-dir", str(results), "--benchmark", "olympics")
    assert bad.exit_code == 2 and "unknown benchmark 'olympics'" in bad.output
    missing = invoke("runs", "--results-dir", str(tmp_path / "absent"))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_run_output_says_the_plan_then_per_epoch_eta_and_a_long_run_estimate(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eqdp.cli import progress

    monkeypatch.setattr(progress, "LONG_RUN_SECONDS", 0.0)  # every run counts as long
    result = invoke(*run_args(synthetic_dir, tmp_path, "--epochs", "2"))
    assert result.exit_code == 0, result.output
    # Within-epoch speed lines come when a batch ends after TrainingProgress.EVERY: on a
    # loaded machine, not always; the fixed lines are what is checked.
    lines = [line for line in result.output.splitlines() if " img/s, eta " not in line]
    assert "standard cnn breastmnist seed 0: loading data and building the model" in lines[0]
    assert "training 2 epochs x 64 images = 128 images planned" in lines[1]
    assert "the first epoch took" in lines[2] and "all 2 epochs will take about" in lines[2]
    assert "epoch 1/2 loss" in lines[3] and ", eta " in lines[3]
    assert "epoch 2/2 loss" in lines[4] and "eta" not in lines[4]


def test_reproduce_reruns_a_record_bit_for_bit_and_reports_a_difference(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    results, out = tmp_path / "r", tmp_path / "again"
    assert invoke(*run_args(synthetic_dir, results, "--seed", "3")).exit_code == 0
    (path,) = [p for p in results.rglob("*.json") if "checkpoints" not in p.parts]
    run_id = path.stem
    common = ("--results-dir", str(results), "--out", str(out), "--data-dir", str(synthetic_dir))
    same = invoke("reproduce", run_id, *common)
    assert same.exit_code == 0, same.output
    assert "reproduced, bit for bit" in same.output and "history: identical" in same.output
    (rerun,) = [p for p in out.rglob("*.json") if "checkpoints" not in p.parts]
    assert json.loads(rerun.read_text())["reproduces"] == run_id

    record = json.loads(path.read_text())  # a record whose test AUC no rerun gives
    record["metrics"]["test"]["auc"] = 0.123
    record["env"]["packages"]["numpy"] = "0.0.1"
    path.write_text(json.dumps(record))
    moved = invoke("reproduce", run_id, *common)
    assert moved.exit_code == 1, moved.output
    assert "not reproduced" in moved.output and "metrics.test.auc" in moved.output
    assert "numpy 0.0.1 ->" in moved.output

    unknown = invoke("reproduce", "nope", *common)
    assert unknown.exit_code == 2 and "no finished run with id 'nope'" in unknown.output
    onto = invoke("reproduce", run_id, "--results-dir", str(results), "--out", str(results))
    assert onto.exit_code == 2 and "is the folder the original is in" in onto.output


@pytest.mark.parametrize("where", ["--results-dir", "--checkpoint-dir"])
@pytest.mark.parametrize("problem", ["a file", "not writable"])
def test_an_output_folder_that_cannot_be_written_fails_before_training(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, problem: str
) -> None:
    target = tmp_path / "out"
    if problem == "a file":
        target.write_text("x")
        message = "cannot be created: " + str(target) + " is not a folder"
    else:  # root may write anywhere: what os.access answers is what the check reads
        target.mkdir()
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == target and
                            m & os.W_OK else real_access(p, m))  # fmt: skip
        message = "is not writable"
    args = run_args(synthetic_dir, tmp_path / "records")
    if where == "--results-dir":
        args[args.index("--results-dir") + 1] = str(target)
    else:
        args += ["--checkpoint-dir", str(target)]
    result = invoke(*args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "epoch 1/" not in result.output and "Traceback" not in result.output
    assert not list(tmp_path.rglob("*.json")) and not list(tmp_path.rglob("*.safetensors"))


def test_leaderboard_of_an_unknown_benchmark_or_missing_folder_exits_2(tmp_path: Path) -> None:
    result = invoke("leaderboard", "--benchmark", "nonexistent", "--results-dir", str(tmp_path))
    assert result.exit_code == 2 and "unknown benchmark 'nonexistent'; valid choices:" in (
        result.output
    )
    missing = invoke("leaderboard", "--results-dir", str(tmp_path / "absent"))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_version() -> None:
    import eqdp

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"eqdp {eqdp.__version__}"


def test_reproduce_an_attack_on_a_trained_checkpoint(synthetic_dir: Path, tmp_path: Path) -> None:
    results = tmp_path / "r"
    assert invoke(*run_args(synthetic_dir, results)).exit_code == 0
    (source,) = [p.stem for p in results.rglob("*.json") if "checkpoints" not in p.parts]
    attack = run_args(synthetic_dir, results, "--from-run", source, "--attack", "fgsm")
    attack[1] = "adversarial"
    assert invoke(*attack).exit_code == 0
    (evaluation,) = [p.stem for p in (results / "adversarial").rglob("*.json")]
    again = invoke("reproduce", evaluation, "--results-dir", str(results),
                   "--out", str(tmp_path / "again"), "--data-dir", str(synthetic_dir))  # fmt: skip
    assert again.exit_code == 0 and "reproduced, bit for bit" in again.output, again.output
