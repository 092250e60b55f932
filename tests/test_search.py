"""eqdp search: end to end on tiny synthetic data, never reading the test split, resuming
after SIGKILL, and two workers sharing one study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eqdp.cli import app
from eqdp.errors import EqdpError

TINY = ["--datasets", "breastmnist", "--epochs", "1", "--max-mmacs", "3", "--max-train", "64"]


def search(synthetic_dir: Path, study: Path, *extra: str):
    return CliRunner().invoke(
        app,
        [
            "search",
            "run",
            "--study",
            str(study),
            "--data-dir",
            str(synthetic_dir),
            "--no-verify-md5",
            *extra,
        ],
    )


def test_search_runs_end_to_end_without_reading_test(synthetic_dir, tmp_path, monkeypatch):
    import eqdp.data.medmnist_data as medmnist_data
    import eqdp.engine.loop as loop

    loaded_test, evaluated = [], []
    original_load, original_evaluate = medmnist_data.load_dataset, loop.evaluate_split

    def load(*args, **kwargs):
        data = original_load(*args, **kwargs)
        loaded_test.append(data.test.images)
        return data

    def evaluate(model, split, *args, **kwargs):
        evaluated.append(split.images)
        return original_evaluate(model, split, *args, **kwargs)

    monkeypatch.setattr(medmnist_data, "load_dataset", load)
    monkeypatch.setattr(loop, "evaluate_split", evaluate)
    study = tmp_path / "study"
    result = search(synthetic_dir, study, "--trials", "3", *TINY, "--datasets",
                    "breastmnist,retinamnist", "--max-mmacs", "1000")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3/3" in result.output or "trial" in result.output
    assert evaluated and loaded_test
    assert all(len(images) > 0 for images in evaluated)  # validation only, never the empty test
    assert not any(e.data_ptr() == t.data_ptr() for e in evaluated for t in loaded_test)

    shown = CliRunner().invoke(
        app,
        ["search", "show", "--study", str(study), "--plot", str(tmp_path / "front.png"),
         "--export", str(tmp_path / "front.json")],
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    summary = json.loads((tmp_path / "front.json").read_text())
    assert summary["front"] and (tmp_path / "front.png").stat().st_size > 0
    finished = [t for t in summary["trials"] if t["state"] in ("complete", "pruned")]
    assert len(finished) >= 3
    # Resuming with other settings is refused before any work.
    changed = search(synthetic_dir, study, "--trials", "4", *TINY, "--datasets",
                     "breastmnist,retinamnist", "--max-mmacs", "1000", "--epochs", "2")  # fmt: skip
    assert changed.exit_code == 2 and "epochs: 1 -> 2" in changed.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--datasets", "nomnist"], "unknown dataset 'nomnist'; valid choices"),
        (["--datasets", ","], "datasets = []: Tuple should have at least 1 item"),
        (["--size", "30"], "unknown size 30; valid choices: 28, 64, 128, 224"),
        (["--epochs", "ten"], "epochs = 'ten': Input should be a valid integer"),
        (["--min-group-order", "32"], "min_group_order = '32': Input should be less than"),
        (["--max-mmacs", "0"], "max_macs = '0': Input should be greater than 0"),
        (["--executor", "cloud"], "unknown executor 'cloud'; valid choices: inline, local"),
    ],
)
def test_search_bad_input_is_one_line(synthetic_dir, tmp_path, arguments, message) -> None:
    bad = search(synthetic_dir, tmp_path / "s", "--trials", "2", *arguments)
    assert bad.exit_code == 2 and message in bad.output, bad.output
    assert "Traceback" not in bad.output and len(bad.output.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_search_show_of_a_missing_study_is_one_line(tmp_path) -> None:
    missing = CliRunner().invoke(app, ["search", "show", "--study", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "is not a study folder" in missing.output


def _trials(study: Path) -> list:
    from eqdp.search.study import open_study

    return open_study(study, create=False).get_trials(deepcopy=False)


def test_search_resumes_after_sigkill(synthetic_dir: Path, tmp_path: Path) -> None:
    study = tmp_path / "study"
    slow = [*TINY, "--epochs", "30"]
    command = [sys.executable, "-m", "eqdp", "search", "run", "--study", str(study), "--data-dir",
               str(synthetic_dir), "--no-verify-md5", "--trials", "2", *slow]  # fmt: skip
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    deadline = time.time() + 120
    killed = None
    while time.time() < deadline and killed is None:
        time.sleep(0.5)
        if (study / "study.journal").exists():
            try:
                trials = _trials(study)
            except EqdpError:  # the journal exists, the study is not created yet
                continue
            running = [t for t in trials if t.state.name == "RUNNING" and t.params]
            if running and "val_breastmnist" not in running[0].user_attrs:
                killed = running[0]
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert killed is not None, "the worker never started a trial"
    result = search(synthetic_dir, study, "--trials", "2", *slow)
    assert result.exit_code == 0, result.output
    trials = {t.number: t for t in _trials(study)}
    assert trials[killed.number].state.name == "FAIL"
    retried = [t for t in trials.values() if t.user_attrs.get("requeued") == killed.number]
    assert retried and retried[0].params == killed.params
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials.values()) >= 2


def test_two_local_workers_share_one_study(synthetic_dir: Path, tmp_path: Path) -> None:
    study = tmp_path / "study"
    result = search(synthetic_dir, study, "--trials", "4", *TINY, "--epochs", "3",
                    "--executor", "local", "--workers", "2", "--threads", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    finished = [t for t in _trials(study) if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 4
    assert len({t.user_attrs["pid"] for t in _trials(study)}) == 2


@pytest.mark.parametrize("workers", [2])
def test_inline_refuses_several_workers(synthetic_dir, tmp_path, workers: int) -> None:
    result = search(synthetic_dir, tmp_path / "s", "--trials", "2", "--workers", str(workers))
    assert result.exit_code == 2 and "--executor local or slurm" in result.output


def test_pareto_front_and_the_b0_rule() -> None:
    from eqdp.errors import EqdpError
    from eqdp.search.summary import choose_b0, pareto_front

    def trial(number: int, auc: float, mmacs: float, duplicate_of=None) -> dict:
        return {"number": number, "state": "complete", "val_auc": auc, "mmacs": mmacs,
                "duplicate_of": duplicate_of}  # fmt: skip

    trials = [trial(0, 0.7, 1.0), trial(1, 0.8, 2.0), trial(2, 0.75, 3.0), trial(3, 0.9, 9.0)]
    assert [t["number"] for t in pareto_front(trials)] == [0, 1, 3]  # 2 is dominated by 1
    summary = {"trials": trials + [trial(4, 0.8, 2.0, duplicate_of=1)],
               "reference_mmacs": {"efficientnet-b0": 7.94}}  # fmt: skip
    assert choose_b0(summary)["number"] == 1  # 3 is better but over EfficientNet-B0's MACs
    assert choose_b0(summary, max_mmacs=10)["number"] == 3
    with pytest.raises(EqdpError, match="no finished trial at <= 0.50 MMACs"):
        choose_b0(summary, max_mmacs=0.5)


def _slurm_is_up() -> bool:
    from test_suites import _slurm_is_up as suites_slurm_is_up

    return suites_slurm_is_up()


@pytest.mark.skipif(
    not _slurm_is_up(), reason="no Slurm cluster (scripts/slurm-local-cluster.sh up)"
)
def test_two_slurm_workers_share_one_study(synthetic_dir: Path, tmp_path: Path) -> None:
    study = tmp_path / "study"
    command = [sys.executable, "-m", "eqdp", "search", "run", "--study", str(study), "--data-dir",
               str(synthetic_dir), "--no-verify-md5", "--trials", "4", *TINY, "--epochs", "3",
               "--executor", "slurm", "--workers", "2", "--threads", "1",
               "--time-min", "10"]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    finished = [t for t in _trials(study) if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 4
    assert len({t.user_attrs["pid"] for t in _trials(study)}) == 2
