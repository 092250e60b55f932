"""End to end through the CLI: low-data, adversarial, geometric, --from-run, suites, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eqdp.cli import app
from eqdp.errors import EqdpError
from eqdp.results import write_record
from tests.test_records import make_record

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def run_args(benchmark: str, synthetic_dir: Path, results: Path, *extra: str) -> list[str]:
    return [
        "run", benchmark, "--model", "cnn", "--dataset", "breastmnist", "--epochs", "1",
        "--batch-size", "32", "--device", "cpu", "--no-verify-md5",
        "--data-dir", str(synthetic_dir), "--results-dir", str(results), *extra,
    ]  # fmt: skip


def records_under(root: Path, benchmark: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / benchmark).rglob("*.json"))]


def test_low_data_one_record_per_fraction(synthetic_dir: Path, tmp_path: Path) -> None:
    result = invoke(*run_args("low-data", synthetic_dir, tmp_path, "--fraction", "0.25,1"))
    assert result.exit_code == 0, result.output
    records = sorted(records_under(tmp_path, "low-data"), key=lambda r: r["low_data"]["fraction"])
    quarter, full = records
    assert quarter["low_data"]["n_train"] == 16 and quarter["data"]["n_train"] == 16
    assert quarter["low_data"]["class_counts"] == [8, 8]
    assert quarter["data"]["n_val"] == 32 and quarter["data"]["n_test"] == 32
    # 2 steps per epoch on the full split, 1 on the subset: twice the epochs
    assert quarter["low_data"]["epochs"] == 2 and len(quarter["history"]) == 2
    assert "epoch 1/2 " in result.output and "epoch 2/2 " in result.output  # the scaled total
    assert quarter["label"] == "fraction=0.25 1ep bs32"
    assert full["low_data"]["n_train"] == 64 and full["low_data"]["epochs"] == 1


def test_adversarial_trains_then_attacks(synthetic_dir: Path, tmp_path: Path) -> None:
    extra = ("--attack", "fgsm,pgd-l2", "--eps", "0,8/255")
    result = invoke(*run_args("adversarial", synthetic_dir, tmp_path, *extra))
    assert result.exit_code == 0, result.output
    (record,) = records_under(tmp_path, "adversarial")
    adversarial = record["adversarial"]
    assert adversarial["clean"] == record["metrics"]["test"]
    assert [(r["attack"], r["eps"]) for r in adversarial["results"]] == [
        ("fgsm", 0.0), ("fgsm", 8 / 255), ("pgd-l2", 0.0), ("pgd-l2", 8 / 255),
    ]  # fmt: skip
    assert adversarial["results"][0]["acc"] == adversarial["clean"]["acc"]
    # one progress line per attacked batch (32 test images, eval batch 512: one batch each)
    assert "attack 1/4 fgsm eps 0" in result.output
    assert "attack 4/4 pgd-l2 eps 0.03137" in result.output
    assert record["source_run"] is None and record["timing"]["eval_seconds"] > 0


def test_from_run_evaluates_a_finished_checkpoint(synthetic_dir: Path, tmp_path: Path) -> None:
    assert invoke(*run_args("standard", synthetic_dir, tmp_path)).exit_code == 0
    (source,) = records_under(tmp_path, "standard")
    for benchmark, extra in (
        ("adversarial", ("--attack", "pgd-linf", "--eps", "2/255")),
        ("geometric", ()),
    ):
        args = run_args(benchmark, synthetic_dir, tmp_path, "--from-run", source["run_id"], *extra)
        args[args.index("--epochs") + 1] = "100"  # ignored: nothing is trained
        args += ["--seed", "5"]  # ignored too: the record takes the source's seed
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        (record,) = records_under(tmp_path, benchmark)
        assert record["source_run"] == source["run_id"]
        assert record["metrics"] == source["metrics"]
        assert record["best_epoch"] == source["best_epoch"] and record["history"] == []
        assert record["config"]["train"] == source["config"]["train"]
        assert record["label"] == source["label"] and record["seed"] == source["seed"]
        assert record["config"]["trained_by"] == {"benchmark": "standard", "options": {}}
        assert record["timing"]["train_seconds"] == 0.0
    (geometric,) = records_under(tmp_path, "geometric")
    assert geometric["geometric"]["transforms"][0]["acc"] == source["metrics"]["test"]["acc"]

    # A suite evaluates every matching standard checkpoint, and resumes.
    suite = tmp_path / "geometric.toml"
    suite.write_text(
        'benchmark = "geometric"\nfrom_benchmark = "standard"\nmodels = ["cnn"]\nseeds = [0]\n'
        "[datasets.breastmnist]\n"
    )
    args = ("suite", str(suite), "--results-dir", str(tmp_path), "--data-dir", str(synthetic_dir))
    first = invoke(*args, "--no-verify-md5")
    assert "1 runs, 1 already recorded" in first.stdout, first.output
    suite.write_text(suite.read_text().replace("seeds = [0]", "seeds = [0, 1]"))
    missing = invoke(*args, "--no-verify-md5")
    assert missing.exit_code == 2
    assert "no finished standard record for cnn on breastmnist (28px) seed 1" in missing.output
    # --model narrows the suite first: a model without source records does not stop it.
    suite.write_text(suite.read_text().replace('["cnn"]', '["cnn", "eq-cnn"]').replace(
        "seeds = [0, 1]", "seeds = [0]"))  # fmt: skip
    narrowed = invoke(*args, "--no-verify-md5", "--model", "cnn")
    assert narrowed.exit_code == 0 and "1 runs, 1 already recorded" in narrowed.stdout
    suite.write_text(suite.read_text().replace('["cnn", "eq-cnn"]', '["cnn"]').replace(
        "seeds = [0]", "seeds = [0, 1]"))  # fmt: skip
    one_seed = invoke(*args, "--no-verify-md5", "--seed", "0")  # seed 1 has no record
    assert one_seed.exit_code == 0 and "1 runs, 1 already recorded" in one_seed.stdout


def test_suite_sweeps_options_and_resumes(synthetic_dir: Path, tmp_path: Path) -> None:
    suite = tmp_path / "low.toml"
    suite.write_text(
        'benchmark = "low-data"\nmodels = ["cnn"]\nseeds = [0]\n'
        "[train]\nbatch_size = 32\n[sweep]\nfraction = [0.25, 1.0]\n"
        "[datasets.breastmnist]\nepochs = 1\n"
    )
    args = ("suite", str(suite), "--results-dir", str(tmp_path / "r"), "--device", "cpu")
    args += ("--executor", "inline")
    checked = invoke(*args, "--data-dir", str(synthetic_dir), "--dry-run")
    assert checked.exit_code == 2 and "MD5 mismatch" in checked.output  # checked before a run
    args += ("--data-dir", str(synthetic_dir), "--no-verify-md5")
    dry = invoke(*args, "--dry-run")
    assert "2 runs, 0 already recorded" in dry.stdout and "fraction=0.25" in dry.stdout
    assert invoke(*args).exit_code == 0
    assert len(records_under(tmp_path / "r", "low-data")) == 2
    assert "2 runs, 2 already recorded" in invoke(*args).stdout


@pytest.mark.parametrize(
    ("benchmark", "extra", "message"),
    [
        ("low-data", ("--fraction", "0"), "fraction = '0': Input should be greater than 0"),
        ("low-data", ("--fraction", "0.5,1.5"), "fraction = '1.5': Input should be less than"),
        ("low-data", ("--fraction", "0.01"), "fewer than one per class (2 classes)"),
        ("low-data", (), "fraction is required (--fraction)"),
        ("low-data", ("--fraction", "0.5", "--epsilon", "1"), "No such option: --epsilon"),
        ("adversarial", ("--attack", "fgsm,deepfool"), "unknown attack 'deepfool'"),
        ("adversarial", ("--eps", "1/255,-0.1"), "attack eps must be finite and >= 0, got -0.1"),
        ("adversarial", ("--attack", "fgsm", "--eps", "2"), "attack eps 2 is above 1, the largest"),
        ("adversarial", ("--attack", "pgd-l2", "--eps", "29"), "above 28, the largest pgd-l2"),
        ("adversarial", ("--from-run", "nope"), "no finished run with id 'nope'"),
        ("geometric", ("--attack", "fgsm"), "No such option: --attack"),
        ("geometric", ("--from-run", "run-cnn-0-0.8-{}"), "trained on retinamnist at 28px, not"),
        ("geometric", ("--from-run", "run-eq-cnn-0-0.8-{}"), "trained model 'eq-cnn', not 'cnn'"),
        ("adversarial", ("--from-run", "run-cnn-1-0.8-{}"), "has no checkpoint"),
    ],
)
def test_bad_input_one_line_error_nothing_written(
    synthetic_dir: Path, tmp_path: Path, benchmark: str, extra: tuple[str, ...], message: str
) -> None:
    write_record(make_record(model="cnn", dataset="retinamnist"), tmp_path)
    write_record(make_record(model="eq-cnn"), tmp_path)
    write_record(make_record(seed=1, model="cnn"), tmp_path)
    before = sorted(tmp_path.rglob("*.json"))
    result = invoke(*run_args(benchmark, synthetic_dir, tmp_path, *extra))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    if "No such option" not in message:  # Click's usage errors come with a usage line
        assert len(result.output.strip().splitlines()) == 1
    assert sorted(tmp_path.rglob("*.json")) == before
    assert not (tmp_path / "checkpoints").exists()


def test_committed_suite_files_expand(tmp_path: Path) -> None:
    from eqdp.suites import load_suite
    from eqdp.suites.plan import expand

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    for suite_file in root.glob("*.toml"):
        if suite_file.name == "campaign.toml":  # the campaign's list of suites, not a suite
            continue
        assert load_suite(suite_file).results_dir == "results", suite_file  # committed ones
    low = list(expand(load_suite(root / "low-data-cpu.toml")))
    assert len(low) == 2 * 5 * 5 * 3
    assert {c.options["fraction"] for c in low} == {0.01, 0.05, 0.1, 0.25, 0.5}
    augmented = list(expand(load_suite(root / "geometric-augment-cpu.toml")))
    assert {c.train.augment for c in augmented} == {"d4"}
    for name in ("adversarial-cpu.toml", "geometric-cpu.toml"):
        suite = load_suite(root / name)
        with pytest.raises(EqdpError, match="no finished standard record for cnn"):
            list(expand(suite, results_dir=str(tmp_path)))


def test_suite_counts_an_epsilon_inf_run_as_finished(synthetic_dir: Path, tmp_path: Path) -> None:
    from eqdp.benchmarks.execute import resolve_config
    from eqdp.config import RunConfig, TrainConfig
    from eqdp.results import load_records, run_key

    config = resolve_config(
        RunConfig(
            benchmark="dp", model="cnn", dataset="breastmnist", device="cpu",
            data_dir=str(synthetic_dir), verify_md5=False, train=TrainConfig(epochs=1),
            options={"epsilon": float("inf")},
        )
    )  # fmt: skip
    write_record(make_record(benchmark="dp", config=config.as_dict()), tmp_path)
    (record,) = load_records(tmp_path)  # the record stores epsilon inf as "inf"
    assert run_key(record["config"]) == run_key(config.as_dict())
    other = resolve_config(config.replace(options={**config.options, "epsilon": 8.0}))
    assert run_key(record["config"]) != run_key(other.as_dict())


def test_a_sweep_over_model_options_sizes_and_training_fields(tmp_path: Path) -> None:
    from eqdp.suites import load_suite
    from eqdp.suites.plan import expand

    suite = tmp_path / "scaling.toml"
    suite.write_text(
        'benchmark = "dp"\nmodels = ["cnn", {name = "eq-cnn", kwargs = {group = "C4"}}]\n'
        "seeds = [0]\n[options]\nepsilon = 8.0\n"
        '[sweep]\n"model_kwargs.dropout" = [0.0, 0.2]\nsize = [28, 64]\n"train.lr" = [0.1]\n'
        "[datasets.breastmnist]\nepochs = 2\n"
    )
    configs = list(expand(load_suite(suite)))
    assert len(configs) == 2 * 2 * 2
    assert {(c.model_kwargs.get("group"), c.model_kwargs["dropout"], c.size) for c in configs} == {
        (g, d, s) for g in (None, "C4") for d in (0.0, 0.2) for s in (28, 64)
    }
    assert {c.train.lr for c in configs} == {0.1} and {c.train.epochs for c in configs} == {2}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('modles = ["cnn"]\n', "unknown field 'modles'"),
        ("[train]\nepochz = 3\n", "unknown field 'epochz'"),
        ('[train]\nepochs = "ten"\n', "epochs = 'ten': Input should be a valid integer"),
        ("[sweep]\nwidth = [1, 2]\n", "sweep 'width' is neither a standard option"),
        ('[sweep]\n"train.epoch" = [1]\n', "suite sweep 'train.epoch': train has no field 'epoch'"),
        ("[sweep]\nepochs = []\n", "sweep 'epochs' must be a non-empty list"),
        ('[executor]\nexecutor = "k8s"\n', "executor 'k8s'; valid: local, slurm, inline"),
    ],
)
def test_suite_file_mistakes_are_one_line_errors(tmp_path: Path, body: str, message: str) -> None:
    suite = tmp_path / "bad.toml"
    base = 'benchmark = "standard"\nmodels = ["cnn"]\nseeds = [0]\n'
    suite.write_text(base + body + "[datasets.breastmnist]\n")
    if "seeds" in body:
        suite.write_text(body + "[datasets.breastmnist]\n")
    result = invoke("suite", str(suite), "--dry-run", "--results-dir", str(tmp_path / "r"))
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    bad_seed = base.replace("[0]", '["zero"]') + "[datasets.breastmnist]\n"
    suite.write_text(bad_seed)
    result = invoke("suite", str(suite), "--dry-run")
    assert result.exit_code == 2 and "seeds.0 = 'zero'" in result.output
