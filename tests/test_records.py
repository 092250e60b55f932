from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from eqdp.errors import EqdpError
from eqdp.results import aggregate, aggregate_rows, load_records, validate_record, write_record
from eqdp.results.leaderboard import to_csv, to_json, to_markdown

RECIPE = {"epochs": 1, "batch_size": 8, "precision": "fp32"}


def make_record(
    seed: int = 0,
    auc: float = 0.8,
    model: str = "cnn",
    benchmark: str = "standard",
    train: dict | None = None,
    options: dict | None = None,
    **changes,
) -> dict:
    """A schema-2 record whose config is what its top-level fields say."""
    config = {
        "benchmark": benchmark,
        "model": model,
        "dataset": changes.get("dataset", "breastmnist"),
        "size": 28,
        "seed": seed,
        "train": {**RECIPE, **(train or {})},
        "model_kwargs": {},
        "options": options or {},
    }
    if benchmark in ("adversarial", "geometric"):
        config["trained_by"] = changes.pop("trained_by", {"benchmark": "standard", "options": {}})
    record = {
        "schema_version": 2,
        "run_id": f"run-{model}-{seed}-{auc}-{json.dumps(options or {}, sort_keys=True)}",
        "created_at": "2026-11-22T00:00:00+00:00",
        "status": "finished",
        "benchmark": benchmark,
        "dataset": "breastmnist",
        "size": 28,
        "model": model,
        "seed": seed,
        "config": config,
        "data": {"n_train": 64},
        "model_info": {"params": 10, "macs": 20, "group": None, "defaults": {}},
        "metrics": {"val": {"acc": 0.5, "auc": 0.5}, "test": {"acc": 0.7, "auc": auc}},
        "best_epoch": 1,
        "timing": {"train_seconds": 1.0, "images_per_second": 5.0},
        "env": {},
        "privacy": None,
    }
    record.update(changes)
    return record


def dp_record(
    seed: int, epsilon: float, auc: float, model: str = "eq-resnet-d4", **options
) -> dict:
    effective = {"epsilon": epsilon, "delta": 1e-5, "physical_batch_size": 8, **options}
    private = math.isfinite(epsilon)
    privacy = {"private": private, "target_epsilon": epsilon if private else None}
    privacy |= {"epsilon": epsilon if private else None, "n_train": 64}
    return make_record(seed, auc, model, "dp", options=effective, privacy=privacy)


def test_write_is_atomic_and_laid_out_by_benchmark_dataset_model(tmp_path: Path) -> None:
    path = write_record(make_record(), tmp_path)
    assert path == tmp_path / "standard" / "breastmnist_28" / "cnn" / "run-cnn-0-0.8-{}.json"
    assert not list(path.parent.glob(".tmp-*"))
    assert json.loads(path.read_text())["metrics"]["test"]["auc"] == 0.8


def test_record_mode_follows_the_umask_and_a_failed_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = os.umask(0o022)
    try:
        path = write_record(make_record(), tmp_path)
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600

    def refuse(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(EqdpError, match="cannot write result record .*No space left"):
        write_record(make_record(seed=1), tmp_path)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_nan_metrics_are_null_but_an_infinite_epsilon_stays_a_setting(tmp_path: Path) -> None:
    path = write_record(make_record(auc=math.nan), tmp_path)
    assert json.loads(path.read_text())["metrics"]["test"]["auc"] is None
    path = write_record(dp_record(0, math.inf, 0.7), tmp_path)
    stored = json.loads(path.read_text())
    assert stored["config"]["options"]["epsilon"] == "inf"
    (loaded,) = [r for r in load_records(tmp_path) if r["benchmark"] == "dp"]
    assert aggregate([loaded])[0].epsilon == math.inf


def test_invalid_record_is_never_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing field 'privacy'"):
        bad = make_record()
        del bad["privacy"]
        write_record(bad, tmp_path)
    assert not list(tmp_path.rglob("*.json"))


def test_corrupt_and_foreign_files_are_skipped_and_reported(tmp_path: Path) -> None:
    write_record(make_record(), tmp_path)
    (tmp_path / "corrupt.json").write_text("{not json")
    (tmp_path / "foreign.json").write_text(json.dumps({"hello": "world"}))
    (tmp_path / "running.json").write_text(json.dumps(make_record(status="running")))
    (tmp_path / ".claims").mkdir()
    (tmp_path / ".claims" / "x.json").write_text("{not a record, and never read")
    skipped: list[tuple[Path, str]] = []
    records = load_records(tmp_path, on_skip=lambda path, why: skipped.append((path, why)))
    assert len(records) == 1
    reasons = {path.name: why for path, why in skipped}
    assert set(reasons) == {"corrupt.json", "foreign.json", "running.json"}
    assert "unreadable JSON" in reasons["corrupt.json"]
    assert "schema_version" in reasons["foreign.json"]


def test_missing_results_dir_is_empty_and_a_file_is_an_error(tmp_path: Path) -> None:
    assert load_records(tmp_path / "absent") == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(EqdpError, match="not a readable directory"):
        load_records(tmp_path / "file")


def test_validate_rejects_bool_as_int() -> None:
    assert "seed" in (validate_record(make_record(seed=True)) or "")


def test_aggregate_mean_std_and_sorting() -> None:
    records = [make_record(s, auc, "cnn") for s, auc in [(0, 0.6), (1, 0.8)]]
    records += [make_record(0, 0.9, "eq-resnet-d4")]
    rows = aggregate(records)
    assert [r.model for r in rows] == ["eq-resnet-d4", "cnn"]
    cnn = rows[1]
    assert cnn.n_seeds == 2
    assert cnn.test_auc_mean == pytest.approx(0.7)
    assert cnn.test_auc_std == pytest.approx(math.sqrt(0.02))
    assert cnn.setting == "1ep bs8" and len(cnn.key) == 12
    assert "0.700 ± 0.141" in to_markdown(rows)
    assert to_csv(rows).splitlines()[0].startswith("benchmark,dataset,size,model,setting,key")
    assert json.loads(to_json(rows))[0]["model"] == "eq-resnet-d4"


def test_a_rerun_replaces_the_earlier_record_in_the_mean() -> None:
    records = [make_record(0, 0.6), make_record(1, 0.8)]
    records.append(make_record(0, 0.7, created_at="2026-11-23T00:00:00+00:00", run_id="later"))
    (row,) = aggregate(records)
    assert row.n_seeds == 2
    assert row.test_auc_mean == pytest.approx(0.75)

    # Two evaluations of one checkpoint count once.
    def evaluation(seed: int, auc: float, source: str, run_id: str) -> dict:
        return make_record(seed, auc, benchmark="geometric", source_run=source, run_id=run_id)

    evaluations = [evaluation(0, 0.6, "a", "1"), evaluation(0, 0.6, "a", "2")]
    (row,) = aggregate([*evaluations, evaluation(1, 0.8, "b", "3")])
    assert row.test_auc_mean == pytest.approx(0.7) and row.n_seeds == 2


def test_different_configurations_are_different_rows_whatever_their_seeds() -> None:
    # Issue 12: two seed-0 DP runs, clip 1.0 (AUC 0.80) and clip 0.1 (AUC 0.60), were one
    # row with n_seeds=1 and AUC 0.70.
    clip_1 = dp_record(0, 8.0, 0.80, max_grad_norm=1.0)
    clip_01 = dp_record(0, 8.0, 0.60, max_grad_norm=0.1)
    rows = aggregate([clip_1, clip_01])
    assert sorted(r.test_auc_mean for r in rows) == [0.60, 0.80]
    assert all(r.n_seeds == 1 for r in rows)
    assert {r.setting for r in rows} == {"ε=8 1ep bs8", "ε=8 C=0.1 1ep bs8"}
    # A model option, the lr schedule, the accountant, delta: each makes its own row.
    variants = [
        make_record(0, 0.5),
        make_record(0, 0.6, model_info={"params": 1, "macs": 1, "defaults": {"width": 32}},
                    config=make_record()["config"] | {"model_kwargs": {"width": 8}}),
        make_record(0, 0.7, train={"lr_milestones": [0.9]}),
        make_record(0, 0.8, train={"weight_decay": 1e-4}),
    ]  # fmt: skip
    assert len(aggregate(variants)) == 4
    assert len(aggregate([dp_record(0, 1.0, 0.5), dp_record(0, 1.0, 0.6, accountant="rdp")])) == 2
    assert len(aggregate([dp_record(0, 1.0, 0.5), dp_record(0, 1.0, 0.6, delta=1e-6)])) == 2
    # ...while what only changes how a run executes does not.
    same = [dp_record(0, 1.0, 0.5), dp_record(1, 1.0, 0.6, physical_batch_size=4)]
    assert len(aggregate(same)) == 1


def test_dp_rows_carry_epsilon_and_pivot_into_a_privacy_utility_table() -> None:
    from eqdp.benchmarks.dp import privacy_utility_table

    records = [dp_record(s, e, a) for s in (0, 1, 2) for e, a in ((1.0, 0.6), (math.inf, 0.9))]
    rows = aggregate(records)
    assert [r.epsilon for r in rows] == [1.0, math.inf]
    assert "| ε |" in to_markdown(rows) and "| ∞ |" in to_markdown(rows)
    table = privacy_utility_table(aggregate_rows(records))
    assert "| dataset | model | ε = 1 | ε = ∞ |" in table
    assert "| breastmnist (28) | eq-resnet-d4 | 0.600 ± 0.000 | 0.900 ± 0.000 |" in table
    assert "ε" not in to_markdown(aggregate([make_record()]))


def test_a_fraction_run_gets_its_own_line_in_the_privacy_utility_table() -> None:
    # Issue 12: a --fraction 0.1 run at eps=1 replaced the full-data cell.
    from eqdp.benchmarks.dp import privacy_utility_table

    full = [dp_record(s, e, 0.9) for s in (0, 1, 2) for e in (1.0, math.inf)]
    subset = [dp_record(0, 1.0, 0.3, fraction=0.1)]
    table = privacy_utility_table(aggregate_rows(full + subset))
    assert "| breastmnist (28) | eq-resnet-d4 | 0.900 ± 0.000 | 0.900 ± 0.000 |" in table
    assert "| breastmnist (28) | eq-resnet-d4 fraction=0.1 | 0.300 ± n/a (n=1) | – |" in table


def adversarial(seed: int, robust: float, epochs: int = 1, **changes) -> dict:
    results = [
        {"attack": "fgsm", "norm": "linf", "eps": 2 / 255, "acc": robust, "auc": 0.5},
        {"attack": "pgd-linf", "norm": "linf", "eps": 2 / 255, "acc": robust / 2, "auc": 0.5},
    ]
    block = {"clean": {"acc": 0.9, "auc": 0.95}, "attacks": ["fgsm"], "results": results}
    block = changes.pop("adversarial", block)
    options = {"attacks": ["fgsm", "pgd-linf"], "attack_eps": None, "pgd_steps": 10}
    return make_record(
        seed,
        benchmark="adversarial",
        adversarial=block,
        train={"epochs": epochs},
        options=options,
        **changes,
    )


def test_robustness_tables_pivot_per_model_with_mean_and_std() -> None:
    from eqdp.benchmarks.adversarial import adversarial_table
    from eqdp.benchmarks.geometric import geometric_table
    from eqdp.benchmarks.low_data import low_data_table

    records = [adversarial(0, 0.4), adversarial(1, 0.6), adversarial(2, 0.5)]
    table = adversarial_table(aggregate_rows(records))
    assert "| dataset | model | clean ACC | fgsm 2/255 | pgd-linf 2/255 |" in table
    assert "| breastmnist (28) | cnn | 0.900 ± 0.000 | 0.500 ± 0.100 | 0.250 ± 0.050 |" in table

    # AutoAttack run later on seed 0's checkpoint: a column of its own, not a 4th clean value.
    for record in records:
        record["source_run"] = f"standard-{record['seed']}"
        record["adversarial"]["clean"] = {"acc": 0.8 + 0.05 * record["seed"], "auc": 0.9}
    later = {
        "clean": records[0]["adversarial"]["clean"],
        "attacks": ["autoattack"],
        "results": [{"attack": "autoattack", "norm": "linf", "eps": 2 / 255, "acc": 0.1}],
    }
    autoattack = adversarial(
        0, 0.0, adversarial=later, source_run="standard-0",
        created_at="2026-11-23T00:00:00+00:00", run_id="autoattack-0",
    )  # fmt: skip
    autoattack["config"]["options"]["attacks"] = ["autoattack"]
    table = adversarial_table(aggregate_rows([*records, autoattack]))
    assert "| clean ACC | autoattack 2/255 | fgsm 2/255 | pgd-linf 2/255 |" in table
    # Seed 0 counted twice would make the clean column 0.838 ± 0.048.
    assert "| 0.850 ± 0.050 | 0.100 ± n/a (n=1) | 0.500 ± 0.100 | 0.250 ± 0.050 |" in table

    geometric = {"worst_case_acc_d4": 0.5, "max_invariance_error_d4": 2e-8}
    options = {"angle_step": 15.0, "scales": [0.9, 1.1]}
    record = make_record(0, benchmark="geometric", geometric=geometric, options=options)
    table = geometric_table(aggregate_rows([record]))
    assert "| breastmnist (28) | cnn | 0.700 ± n/a (n=1) | 0.500 ± n/a (n=1) | – |" in table
    assert "2.0e-08 ± n/a (n=1)" in table

    def low_data(seed: int, fraction: float, auc: float) -> dict:
        return make_record(
            seed, auc, benchmark="low-data", options={"fraction": fraction},
            low_data={"fraction": fraction},
        )  # fmt: skip

    records = [low_data(s, f, f) for s in (0, 1, 2) for f in (0.1, 0.5)]
    table = low_data_table(aggregate_rows(records))
    assert "| breastmnist (28) | cnn | 0.100 ± 0.000 | 0.500 ± 0.000 |" in table
    assert "AUC @ 0.1 | AUC @ 0.5" in table


def test_robustness_rows_of_differently_trained_models_are_not_averaged() -> None:
    # Issue 12: a 10-epoch and a 100-epoch run were averaged as "n=2".
    from eqdp.benchmarks.adversarial import adversarial_table

    short = adversarial(0, 0.2, epochs=10, source_run="s10", run_id="a")
    long = adversarial(0, 0.6, epochs=100, source_run="s100", run_id="b")
    table = adversarial_table(aggregate_rows([short, long]))
    assert "| breastmnist (28) | cnn 10ep | 0.900 ± n/a (n=1) | 0.200 ± n/a (n=1) |" in table
    assert "| breastmnist (28) | cnn 100ep | 0.900 ± n/a (n=1) | 0.600 ± n/a (n=1) |" in table
    # How the model was trained is part of the row: an attack on a DP model is its own row.
    private = adversarial(
        0, 0.7, source_run="dp", run_id="c",
        trained_by={"benchmark": "dp", "options": {"epsilon": 8.0}},
    )  # fmt: skip
    table = adversarial_table(aggregate_rows([adversarial(0, 0.2, run_id="d"), private]))
    assert "| cnn dp ε=8 |" in table.replace("| breastmnist (28) ", "")


def test_standard_runs_of_the_same_recipe_stand_in_for_fraction_one() -> None:
    from eqdp.benchmarks.low_data import low_data_table, with_full_data_references

    recipe = {"epochs": 10, "batch_size": 128, "eval_batch_size": 512}
    other_batching = {"epochs": 10, "batch_size": 128, "eval_batch_size": 64}

    def low(seed: int, fraction: float, auc: float) -> dict:
        return make_record(
            seed, auc, benchmark="low-data", train=recipe, options={"fraction": fraction},
            low_data={"fraction": fraction},
        )  # fmt: skip

    lows = [low(s, 0.1, 0.6) for s in (0, 1, 2)]
    standard = [
        make_record(0, 0.9, train=recipe),
        make_record(1, 0.8, train=other_batching),  # evaluation batching is not the recipe
        make_record(2, 0.7, train={"epochs": 2, "batch_size": 128}),
        make_record(3, 0.7, train=recipe),  # a seed without low-data runs still counts
        make_record(0, 0.7, model="vit", train=recipe),  # no low-data series for vit
    ]
    chosen = with_full_data_references(lows + standard)
    borrowed = [r for r in chosen if r.get("low_data", {}).get("from_benchmark")]
    assert sorted(r["seed"] for r in borrowed) == [0, 1, 3]
    assert borrowed[0]["low_data"]["source_run"] == standard[0]["run_id"]
    assert "low_data" not in standard[0]  # a view; the record itself is untouched
    table = low_data_table(aggregate_rows(chosen))
    assert "| AUC @ 0.1 | AUC @ 1 (standard runs) |" in table
    assert "| breastmnist (28) | cnn | 0.600 ± 0.000 | 0.800 ± 0.100 |" in table

    ran_full = low(0, 1.0, 0.5)
    chosen = with_full_data_references([*lows, ran_full, *standard])
    assert not [r for r in chosen if r.get("low_data", {}).get("from_benchmark")]


def test_version_1_records_are_migrated_on_load(tmp_path: Path) -> None:
    from eqdp.results.migrations import rewrite

    v1 = {
        "schema_version": 1, "run_id": "old-dp", "created_at": "2026-11-20T00:00:00+00:00",
        "status": "finished", "benchmark": "dp", "dataset": "breastmnist", "size": 28,
        "model": "cnn", "seed": 0, "setting": "eps=inf 5ep bs256 lr0.001",
        "config": {
            "benchmark": "dp", "model": "cnn", "dataset": "breastmnist", "size": 28, "seed": 0,
            "train": {"epochs": 5, "batch_size": 256, "lr": 0.001, "weight_decay": 0.0,
                      "lr_milestones": [0.5, 0.75], "lr_gamma": 0.1, "augment": "none",
                      "eval_batch_size": 512},
            "device": "cpu", "verify_md5": True, "model_kwargs": {}, "options": {"epsilon": None},
        },
        "model_info": {"params": 1, "macs": 1, "group": None},
        "data": {"task": "binary-class", "n_train": 546, "n_val": 78, "n_test": 156},
        "metrics": {"val": {"acc": 0.5, "auc": 0.5}, "test": {"acc": 0.7, "auc": 0.6}},
        "best_epoch": 1, "history": [], "timing": {"train_seconds": 1.0, "images_per_second": 1.0},
        "env": {"device": "cpu"},
        "privacy": {"private": False, "epsilon": None, "target_epsilon": None, "delta": 1e-5,
                    "physical_batch_size": 128, "n_train": 546},
    }  # fmt: skip
    folder = tmp_path / "dp" / "breastmnist_28" / "cnn"
    folder.mkdir(parents=True)
    (folder / "old-dp.json").write_text(json.dumps(v1))
    (record,) = load_records(tmp_path)
    assert record["schema_version"] == 2 and "setting" not in record
    options = record["config"]["options"]
    assert options["epsilon"] == math.inf and options["delta"] == 1e-5
    assert record["config"]["model_kwargs"] == {"width": 32}
    assert record["config"]["train"]["precision"] == "fp32"
    assert record["label"] == "ε=∞ 5ep bs256"
    assert rewrite(tmp_path) == 1
    stored = json.loads((folder / "old-dp.json").read_text())
    assert stored["schema_version"] == 2 and stored["config"]["options"]["epsilon"] == "inf"
    assert rewrite(tmp_path) == 0


def test_a_record_whose_configuration_cannot_be_read_is_skipped_and_reported(tmp_path: Path):
    good = make_record()
    bad = make_record(seed=1, train={"epochs": "ten"})
    foreign = make_record(seed=2, run_id="other-benchmark")
    foreign["config"]["benchmark"] = "olympics"
    for record in (good, bad, foreign):
        folder = tmp_path / "standard" / "breastmnist_28" / "cnn"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{record['run_id']}.json").write_text(json.dumps(record))
    skipped: list[str] = []
    records = load_records(tmp_path, on_skip=lambda path, why: skipped.append(why))
    assert [r["seed"] for r in records] == [0]
    assert any("epochs = 'ten'" in why for why in skipped)
    assert any("unknown benchmark 'olympics'" in why for why in skipped)


def test_records_of_the_pre_search_eq_nasnet_load_under_its_new_name(tmp_path: Path) -> None:
    from eqdp.results.migrations import rewrite

    old = make_record(0, 0.9, "eq-nasnet")
    path = tmp_path / "standard" / "breastmnist_28" / "eq-nasnet" / f"{old['run_id']}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(old))
    (loaded,) = load_records(tmp_path)
    assert loaded["model"] == loaded["config"]["model"] == "eq-resnet-d4"
    assert loaded["run_id"] == old["run_id"]
    assert rewrite(tmp_path) == 1 and not path.exists()
    (moved,) = (tmp_path / "standard" / "breastmnist_28" / "eq-resnet-d4").glob("*.json")
    assert json.loads(moved.read_text())["model"] == "eq-resnet-d4"


def test_records_from_before_an_added_model_option_stay_one_row_with_new_runs(tmp_path) -> None:
    """eq-nasnet-b0 gained width/depth multipliers: an older record is the multiplier-1 row."""
    from eqdp.benchmarks import resolve_config
    from eqdp.config import RunConfig
    from eqdp.data import make_synthetic_npz
    from eqdp.results.identity import row_key

    old = make_record(0, 0.9, "eq-nasnet-b0")
    old["config"]["model_kwargs"] = {"dropout": 0.1}
    path = tmp_path / "standard" / "breastmnist_28" / "eq-nasnet-b0" / f"{old['run_id']}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(old))
    (loaded,) = load_records(tmp_path)
    kwargs = loaded["config"]["model_kwargs"]
    assert kwargs == {"dropout": 0.1, "width_multiplier": 1.0, "depth_multiplier": 1.0}
    make_synthetic_npz(tmp_path / "data", "breastmnist", 28, n_per_split=(16, 8, 8), seed=0)
    fresh = resolve_config(RunConfig(
        benchmark="standard", model="eq-nasnet-b0", dataset="breastmnist", seed=0,
        train=loaded["config"]["train"], data_dir=str(tmp_path / "data"), verify_md5=False,
    ))  # fmt: skip
    assert row_key(fresh.as_dict()) == loaded["key"] == row_key(loaded["config"])


def test_leaderboard_shows_the_benchmarks_own_metrics_and_n_a_for_one_seed() -> None:
    from eqdp.results.leaderboard import display_table, to_html, to_latex

    rows = aggregate([adversarial(0, 0.4), adversarial(1, 0.6)])
    header, cells = display_table(rows)
    assert header[header.index("test ACC") + 1 :][:3] == [
        "clean ACC", "fgsm 2/255", "pgd-linf 2/255",
    ]  # fmt: skip
    assert "benchmark" not in header and "img/s" not in header  # room for the metrics
    assert cells[0][header.index("fgsm 2/255")] == "0.500 ± 0.141"
    assert json.loads(to_json(rows))[0]["metrics"]["pgd-linf 2/255"]["mean"] == 0.25
    assert "fgsm 2/255 mean" in to_csv(rows).splitlines()[0]

    geometric = {"worst_case_acc": 0.3, "max_invariance_error_d4": 2e-8}
    record = make_record(0, benchmark="geometric", geometric=geometric,
                         options={"angle_step": 15.0, "scales": [0.9, 1.1]})  # fmt: skip
    rows = aggregate([record])
    header, cells = display_table(rows)
    assert cells[0][header.index("worst ACC, all")] == "0.300 ± n/a"
    assert cells[0][header.index("max invariance error, D4")] == "2.0e-08 ± n/a"
    assert cells[0][header.index("test AUC")] == "0.800 ± n/a"  # one seed: no spread, not ± 0

    # Mixed benchmarks: only what every benchmark has.
    header, _ = display_table(aggregate([record, make_record(0)]))
    assert "worst ACC, all" not in header and "benchmark" in header

    latex = to_latex(rows)
    assert latex.startswith("\\begin{tabular}{lll") and "\\toprule" in latex
    assert "0.300 $\\pm$ n/a" in latex and "worst ACC, all" in latex
    page = to_html(aggregate([make_record(0, model="a<b>")]))
    assert "<td>a&lt;b&gt;</td>" in page and page.count("<tr>") == 2
