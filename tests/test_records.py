from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from eqdp.errors import EqdpError
from eqdp.results import aggregate, load_records, validate_record, write_record
from eqdp.results.leaderboard import to_csv, to_json, to_markdown


def make_record(seed: int = 0, auc: float = 0.8, model: str = "cnn", **changes) -> dict:
    record = {
        "schema_version": 1,
        "run_id": f"run-{model}-{seed}-{auc}",
        "created_at": "2026-11-22T00:00:00+00:00",
        "status": "finished",
        "benchmark": "standard",
        "dataset": "breastmnist",
        "size": 28,
        "model": model,
        "seed": seed,
        "setting": "1ep bs8 lr0.001",
        "config": {"train": {"epochs": 1}},
        "data": {"n_train": 64},
        "model_info": {"params": 10, "macs": 20, "group": None},
        "metrics": {"val": {"acc": 0.5, "auc": 0.5}, "test": {"acc": 0.7, "auc": auc}},
        "best_epoch": 1,
        "timing": {"train_seconds": 1.0, "images_per_second": 5.0},
        "env": {},
        "privacy": None,
    }
    record.update(changes)
    return record


def test_write_is_atomic_and_laid_out_by_benchmark_dataset_model(tmp_path: Path) -> None:
    path = write_record(make_record(), tmp_path)
    assert path == tmp_path / "standard" / "breastmnist_28" / "cnn" / "run-cnn-0-0.8.json"
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


def test_nan_metrics_are_stored_as_null(tmp_path: Path) -> None:
    path = write_record(make_record(auc=math.nan), tmp_path)
    assert json.loads(path.read_text())["metrics"]["test"]["auc"] is None


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
    records += [make_record(0, 0.9, "eq-nasnet")]
    rows = aggregate(records)
    assert [r.model for r in rows] == ["eq-nasnet", "cnn"]
    cnn = rows[1]
    assert cnn.n_seeds == 2
    assert cnn.test_auc_mean == pytest.approx(0.7)
    assert cnn.test_auc_std == pytest.approx(math.sqrt(0.02))
    assert "0.700 ± 0.141" in to_markdown(rows)
    assert to_csv(rows).splitlines()[0].startswith("benchmark,dataset,size,model,setting")
    assert json.loads(to_json(rows))[0]["model"] == "eq-nasnet"


def test_a_rerun_replaces_the_earlier_record_in_the_mean() -> None:
    records = [make_record(0, 0.6), make_record(1, 0.8)]
    records.append(make_record(0, 0.7, created_at="2026-11-23T00:00:00+00:00"))
    (row,) = aggregate(records)
    assert row.n_seeds == 2
    assert row.test_auc_mean == pytest.approx(0.75)

    # Two evaluations of one checkpoint count once; a different config is no rerun.
    evaluations = [make_record(0, 0.6, source_run="a"), make_record(0, 0.6, source_run="a")]
    other_config = make_record(0, 0.9, config={"train": {"epochs": 2}})
    (row,) = aggregate([*evaluations, make_record(1, 0.8, source_run="b")])
    assert row.test_auc_mean == pytest.approx(0.7)
    (row,) = aggregate([make_record(0, 0.6), other_config])
    assert row.test_auc_mean == pytest.approx(0.75)


def test_dp_rows_carry_epsilon_and_pivot_into_a_privacy_utility_table() -> None:
    from eqdp.results.leaderboard import privacy_utility_markdown

    def dp_record(seed: int, epsilon: float | None, auc: float) -> dict:
        privacy = {"private": epsilon is not None, "target_epsilon": epsilon, "epsilon": epsilon}
        return make_record(
            seed, auc, "eq-nasnet", benchmark="dp", privacy=privacy, setting=f"eps={epsilon}"
        )

    records = [dp_record(s, e, a) for s in (0, 1, 2) for e, a in ((1.0, 0.6), (None, 0.9))]
    rows = aggregate(records)
    assert [r.epsilon for r in rows] == [1.0, math.inf]
    assert "| ε |" in to_markdown(rows) and "| ∞ |" in to_markdown(rows)
    table = privacy_utility_markdown(records)
    assert "| dataset | model | ε = 1 | ε = ∞ |" in table
    assert "| breastmnist (28) | eq-nasnet | 0.600 ± 0.000 | 0.900 ± 0.000 |" in table
    assert "ε" not in to_markdown(aggregate([make_record()]))


def test_robustness_tables_pivot_per_model_with_mean_and_std() -> None:
    from eqdp.results.robustness_tables import (
        adversarial_markdown,
        geometric_markdown,
        low_data_markdown,
    )

    def adversarial(seed: int, robust: float) -> dict:
        results = [
            {"attack": "fgsm", "norm": "linf", "eps": 2 / 255, "acc": robust, "auc": 0.5},
            {"attack": "pgd-linf", "norm": "linf", "eps": 2 / 255, "acc": robust / 2, "auc": 0.5},
        ]
        block = {"clean": {"acc": 0.9, "auc": 0.95}, "attacks": ["fgsm"], "results": results}
        return make_record(seed, benchmark="adversarial", adversarial=block)

    table = adversarial_markdown([adversarial(0, 0.4), adversarial(1, 0.6), adversarial(2, 0.5)])
    assert "| dataset | model | clean ACC | fgsm 2/255 | pgd-linf 2/255 |" in table
    assert "| breastmnist (28) | cnn | 0.900 ± 0.000 | 0.500 ± 0.100 | 0.250 ± 0.050 |" in table

    # AutoAttack run later on seed 0's checkpoint: a column of its own, not a 4th clean value.
    later = {
        "clean": {"acc": 0.9, "auc": 0.95},
        "attacks": ["autoattack"],
        "results": [{"attack": "autoattack", "norm": "linf", "eps": 2 / 255, "acc": 0.1}],
    }
    records = [adversarial(0, 0.4), adversarial(1, 0.6), adversarial(2, 0.5)]
    for record in records:
        record["source_run"] = f"standard-{record['seed']}"
        record["adversarial"]["clean"] = {"acc": 0.8 + 0.05 * record["seed"], "auc": 0.9}
    later["clean"] = records[0]["adversarial"]["clean"]
    autoattack = make_record(
        0,
        benchmark="adversarial",
        adversarial=later,
        source_run="standard-0",
        created_at="2026-11-23T00:00:00+00:00",
    )
    table = adversarial_markdown([*records, autoattack])
    assert "| clean ACC | autoattack 2/255 | fgsm 2/255 | pgd-linf 2/255 |" in table
    # Seed 0 counted twice would make the clean column 0.838 ± 0.048.
    assert "| 0.850 ± 0.050 | 0.100 ± 0.000 (n=1) | 0.500 ± 0.100 | 0.250 ± 0.050 |" in table

    geometric = {"worst_case_acc_d4": 0.5, "max_invariance_error_d4": 2e-8}
    table = geometric_markdown([make_record(0, benchmark="geometric", geometric=geometric)])
    assert "| breastmnist (28) | cnn | 0.700 ± 0.000 (n=1) | 0.500 ± 0.000 (n=1) | – |" in table
    assert "2.0e-08 ± 0e+00 (n=1)" in table

    def low_data(seed: int, fraction: float, auc: float) -> dict:
        return make_record(seed, auc, benchmark="low-data", low_data={"fraction": fraction})

    records = [low_data(s, f, f) for s in (0, 1, 2) for f in (0.1, 0.5)]
    table = low_data_markdown(records)
    assert "| breastmnist (28) | cnn | 0.100 ± 0.000 | 0.500 ± 0.000 |" in table
    assert "AUC @ 0.1 | AUC @ 0.5" in table


def test_standard_runs_of_the_same_recipe_stand_in_for_fraction_one() -> None:
    from eqdp.results.full_data_reference import with_full_data_references
    from eqdp.results.robustness_tables import low_data_markdown

    recipe = {"train": {"epochs": 10, "batch_size": 128, "eval_batch_size": 512}}
    other_batching = {"train": {"epochs": 10, "batch_size": 128, "eval_batch_size": 64}}
    low = [
        make_record(s, 0.6, benchmark="low-data", config=recipe, low_data={"fraction": 0.1})
        for s in (0, 1, 2)
    ]
    standard = [
        make_record(0, 0.9, config=recipe),
        make_record(1, 0.8, config=other_batching),  # evaluation batching is not the recipe
        make_record(2, 0.7, config={"train": {"epochs": 2, "batch_size": 128}}),
        make_record(3, 0.7, config=recipe),  # no low-data run with seed 3
        make_record(0, 0.7, model="vit", config=recipe),
    ]
    chosen = with_full_data_references(low + standard)
    borrowed = [r for r in chosen if r["benchmark"] == "standard"]
    assert [(r["seed"], r["low_data"]["fraction"]) for r in borrowed] == [(0, 1.0), (1, 1.0)]
    assert borrowed[0]["low_data"]["source_run"] == standard[0]["run_id"]
    assert "low_data" not in standard[0]  # a view; the record itself is untouched
    table = low_data_markdown(chosen)
    assert "| AUC @ 0.1 | AUC @ 1 (standard runs) |" in table
    assert "| breastmnist (28) | cnn | 0.600 ± 0.000 | 0.850 ± 0.071 (n=2) |" in table

    ran_full = make_record(0, 0.5, benchmark="low-data", config=recipe, low_data={"fraction": 1.0})
    chosen = with_full_data_references([*low, ran_full, *standard])
    assert [r["seed"] for r in chosen if r["benchmark"] == "standard"] == [1]
