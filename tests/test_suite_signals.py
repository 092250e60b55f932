"""A suite driver killed or interrupted: its local workers stop and give back their claims,
and Ctrl-C prints one line (issue 29 items 5 and 6; issue 28 item 4, Ctrl-C mid-run)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eqdp.cli import app
from eqdp.suites import executors
from eqdp.suites.file import ExecutorSettings
from eqdp.suites.worker import WorkerReport, process_alive, watch_driver
from tests.test_cli import run_args

runner = CliRunner()
SUITE = (
    'benchmark = "standard"\nmodels = ["cnn"]\nseeds = [0]\n[datasets.breastmnist]\nepochs = 1\n'
)


def test_a_worker_notices_its_driver_is_gone_and_stops() -> None:
    driver = subprocess.Popen([sys.executable, "-c", "pass"])
    driver.wait()  # exited and reaped: its pid names no process now
    assert not process_alive(driver.pid)
    stopped = threading.Event()
    watch_driver(driver.pid, stopped.set, poll_seconds=0.05)
    assert stopped.wait(5.0)


def test_a_worker_keeps_going_while_its_driver_lives() -> None:
    stopped = threading.Event()
    watch_driver(os.getpid(), stopped.set, poll_seconds=0.05)
    assert not stopped.wait(0.3)


class _FakeJob:
    job_id = "1"

    def done(self) -> bool:
        return True

    def result(self) -> WorkerReport:
        return WorkerReport()


class _FakeExecutor:
    def __init__(self) -> None:
        self.submitted: list[tuple] = []

    @contextlib.contextmanager
    def batch(self):
        yield

    def submit(self, function, *args):
        self.submitted.append(args)
        return _FakeJob()


@pytest.mark.parametrize(("executor", "wait"), [("local", True), ("local", False), ("slurm", True)])
def test_only_local_workers_of_a_waiting_driver_watch_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, executor: str, wait: bool
) -> None:
    fake = _FakeExecutor()
    monkeypatch.setattr(executors, "submitit_executor", lambda *args: fake)
    settings = ExecutorSettings(executor=executor, workers=1)
    executors.execute([object()], settings, tmp_path, wait=wait)  # type: ignore[list-item]
    (arguments,) = fake.submitted
    expected = os.getpid() if executor == "local" and wait else None
    assert arguments[-1] == expected


def test_local_workers_are_started_ignoring_ctrl_c() -> None:
    """Ctrl-C reaches the terminal's whole process group; only the driver may act on it."""
    probe = "import signal; print('IGNORED', signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"
    with executors._interrupts_ignored_by_children():
        child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "IGNORED True" in child.stdout, child.stdout + child.stderr
    unguarded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "IGNORED False" in unguarded.stdout


def test_ctrl_c_on_a_suite_is_one_line(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(executors, "execute", interrupted)
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    result = runner.invoke(app, [
        "suite", str(suite), "--executor", "local", "--results-dir", str(tmp_path / "r"),
        "--data-dir", str(synthetic_dir), "--no-verify-md5", "--device", "cpu",
    ])  # fmt: skip
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output and "KeyboardInterrupt" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("interrupted: workers stopped")


def test_ctrl_c_mid_run_is_one_line_and_leaves_nothing(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eqdp.benchmarks import execute

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "run_benchmark", interrupted)
    results = tmp_path / "r"
    result = runner.invoke(app, run_args(synthetic_dir, results))
    assert result.exit_code == 130, result.output
    assert "interrupted: standard cnn breastmnist seed 0 stopped, no record written" in (
        result.output
    )
    assert "Traceback" not in result.output
    assert not results.exists()
