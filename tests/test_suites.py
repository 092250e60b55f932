"""Suites on workers: claims, resume, concurrent drivers, local processes and Slurm."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eqdp.cli import app
from eqdp.suites import claims

runner = CliRunner()

FOUR_RUNS = """
benchmark = "standard"
models = [{name = "cnn", kwargs = {width = 4}}]
seeds = [0, 1, 2, 3]
[train]
batch_size = 32
[datasets.breastmnist]
epochs = 1
"""


def records(root: Path) -> list[Path]:
    return sorted(p for p in (root / "standard").rglob("*.json"))


def suite_args(suite: Path, results: Path, synthetic_dir: Path, *extra: str) -> list[str]:
    return [
        "suite", str(suite), "--results-dir", str(results), "--data-dir", str(synthetic_dir),
        "--no-verify-md5", "--device", "cpu", *extra,
    ]  # fmt: skip


def test_a_claim_is_held_once_and_released(tmp_path: Path) -> None:
    claim = claims.try_claim(tmp_path, "abc", "run a")
    assert claim is not None
    assert claims.try_claim(tmp_path, "abc") is None  # held by this live process
    claim.report({"run": "run a", "done": 1, "total": 2})
    assert claims.in_flight(tmp_path)[0]["done"] == 1
    claim.release()
    assert not (tmp_path / ".claims").exists()  # a lone run leaves nothing behind
    again = claims.try_claim(tmp_path, "abc")
    assert again is not None
    again.release()


def test_a_stale_claim_is_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / ".claims"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = {"host": socket.gethostname(), "pid": dead.pid, "started": 0}
    (folder / "dead.claim").write_text(json.dumps(here))
    taken = claims.try_claim(tmp_path, "dead")
    assert taken is not None
    taken.release()
    # Another host: stale once its heartbeat is older than STALE_AFTER_SECONDS.
    elsewhere = folder / "far.claim"
    folder.mkdir(exist_ok=True)
    elsewhere.write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert claims.try_claim(tmp_path, "far") is None
    old = time.time() - claims.STALE_AFTER_SECONDS - 5
    os.utime(elsewhere, (old, old))
    taken = claims.try_claim(tmp_path, "far")
    assert taken is not None
    taken.release()


def test_inline_suite_skips_what_is_recorded_or_claimed(synthetic_dir: Path, tmp_path: Path):
    from eqdp.benchmarks.execute import resolve_config
    from eqdp.results import run_key
    from eqdp.suites import load_suite
    from eqdp.suites.plan import expand

    suite = tmp_path / "four.toml"
    suite.write_text(FOUR_RUNS)
    results = tmp_path / "r"
    # Another worker is running seed 3 right now: this driver must leave it alone.
    configs = list(expand(load_suite(suite), str(synthetic_dir), "cpu", str(results), None, False))
    seed_3 = resolve_config([c for c in configs if c.seed == 3][0])
    held = claims.try_claim(results, run_key(seed_3.as_dict()))
    args = suite_args(suite, results, synthetic_dir, "--executor", "inline")
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "3 recorded, 0 failed, 1 run by another driver" in first.output
    assert "training 1 epoch x 64 images = 64 images planned" in first.output  # the bar's plan
    assert len(records(results)) == 3
    held.release()
    second = runner.invoke(app, args)
    assert "4 runs, 3 already recorded, 1 to run" in second.output
    assert len(records(results)) == 4
    third = runner.invoke(app, args)
    assert "4 runs, 4 already recorded, 0 to run" in third.output
    assert len(records(results)) == 4


def test_a_failed_run_is_reported_not_recorded_and_retried(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    from eqdp.benchmarks import BENCHMARKS

    suite = tmp_path / "four.toml"
    suite.write_text(FOUR_RUNS.replace("[0, 1, 2, 3]", "[0, 1]"))
    results = tmp_path / "r"
    standard = BENCHMARKS.get("standard")
    real_run = standard.run

    def flaky(config, on_progress=None):
        if config.seed == 0:
            raise RuntimeError("out of memory (simulated)")
        return real_run(config, on_progress)

    object.__setattr__(standard, "run", flaky)
    try:
        result = runner.invoke(
            app, suite_args(suite, results, synthetic_dir, "--executor", "inline")
        )
    finally:
        object.__setattr__(standard, "run", real_run)
    assert result.exit_code == 1
    assert "1 recorded, 1 failed" in result.output and "out of memory (simulated)" in result.output
    assert len(records(results)) == 1 and not list((results / ".claims").glob("*.claim"))
    (event,) = [
        json.loads(line)
        for line in (results / ".claims" / "events.log").read_text().splitlines()
        if json.loads(line)["event"] == "failed"
    ]
    assert "RuntimeError" in event["traceback"]
    retry = runner.invoke(app, suite_args(suite, results, synthetic_dir, "--executor", "inline"))
    assert retry.exit_code == 0 and "2 runs, 1 already recorded, 1 to run" in retry.output


def test_two_concurrent_local_drivers_record_each_run_once(synthetic_dir: Path, tmp_path: Path):
    """Issue 12: a 4-run suite driven by two concurrent `eqdp suite --executor local`."""
    suite = tmp_path / "four.toml"
    suite.write_text(FOUR_RUNS)
    results = tmp_path / "r"
    command = [sys.executable, "-m", "eqdp", *suite_args(suite, results, synthetic_dir)]
    command += ["--executor", "local", "--threads", "1"]
    drivers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [driver.communicate(timeout=600)[0] for driver in drivers]
    assert [driver.returncode for driver in drivers] == [0, 0], outputs
    assert len(records(results)) == 4
    assert sorted(json.loads(p.read_text())["seed"] for p in records(results)) == [0, 1, 2, 3]
    ran = [int(re.search(r"^(\d+) recorded, 0 failed", o, re.M).group(1)) for o in outputs]
    assert sum(ran) == 4, outputs
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0 and "4 runs, 4 already recorded, 0 to run" in rerun.stdout
    assert len(records(results)) == 4


def test_a_terminated_local_driver_stops_its_workers(synthetic_dir: Path, tmp_path: Path):
    """SIGTERM to `eqdp suite` (kill, a scheduler) cancels its local workers: no worker
    runs on, its claim is given back, and no record is half-written."""
    import signal

    suite = tmp_path / "long.toml"
    suite.write_text(FOUR_RUNS.replace("epochs = 1", "epochs = 500"))
    results = tmp_path / "r"
    command = [sys.executable, "-m", "eqdp", *suite_args(suite, results, synthetic_dir)]
    driver = subprocess.Popen(
        [*command, "--executor", "local", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    claim_folder = results / ".claims"
    deadline = time.time() + 120
    while not list(claim_folder.glob("*.claim")) and time.time() < deadline:
        time.sleep(0.5)
    (claim,) = claim_folder.glob("*.claim")
    worker = json.loads(claim.read_text())["pid"]
    driver.send_signal(signal.SIGTERM)
    driver.communicate(timeout=60)
    deadline = time.time() + 30
    while claims.process_alive(worker) and time.time() < deadline:
        time.sleep(0.5)
    assert not claims.process_alive(worker)
    assert not list(claim_folder.glob("*.claim")) and records(results) == []


def _slurm_is_up() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        state = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return state.returncode == 0 and any(
        s.strip() in ("idle", "mixed", "allocated") for s in state.stdout.splitlines()
    )


@pytest.mark.skipif(
    not _slurm_is_up(), reason="no Slurm cluster (scripts/slurm-local-cluster.sh up)"
)
def test_suite_on_slurm(synthetic_dir: Path, tmp_path: Path) -> None:
    suite = tmp_path / "two.toml"
    suite.write_text(FOUR_RUNS.replace("[0, 1, 2, 3]", "[0, 1]"))
    # Slurm jobs run from shared storage: results under the working tree, not a private /tmp.
    results = tmp_path / "r"
    command = [sys.executable, "-m", "eqdp", *suite_args(suite, results, synthetic_dir)]
    command += ["--executor", "slurm", "--time-min", "10", "--cpus", "1"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "slurm: 2 worker(s)" in run.stdout
    assert len(records(results)) == 2
    job_records = [json.loads(p.read_text()) for p in records(results)]
    assert all(r["env"]["command"] for r in job_records)


def test_a_model_entry_can_carry_its_own_training_fields(tmp_path: Path) -> None:
    from eqdp.suites import load_suite
    from eqdp.suites.plan import plan_suite

    suite = tmp_path / "lr.toml"
    suite.write_text(
        FOUR_RUNS.replace(
            'models = [{name = "cnn", kwargs = {width = 4}}]',
            'models = ["eq-cnn", {name = "cnn", train = {lr = 0.0003, epochs = 2}}]',
        ).replace("seeds = [0, 1, 2, 3]", "seeds = [0]")
    )
    planned = {c.model: c.train for c in plan_suite(load_suite(suite), device="cpu").configs}
    assert planned["cnn"].lr == 0.0003 and planned["cnn"].epochs == 2  # wins over the dataset's
    assert planned["eq-cnn"].lr != 0.0003 and planned["eq-cnn"].epochs == 1
