"""Where a plan's pending runs execute: inline, local processes, or Slurm jobs via submitit.

Every executor starts ``workers`` copies of ``run_worker`` over the same plan;
the claims make them share it. ``local`` uses submitit's ``LocalExecutor``
(one process per worker on this machine; it starts every job at once, which is
why the number of workers, not of runs, is what is submitted), ``slurm`` its
``AutoExecutor`` (one array task per worker, partition, time, GPUs, CPUs and
memory from the suite's ``[executor]`` table or the CLI). submitit's logs and
pickles go to ``<results>/.submitit``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eqdp.config.run import RunConfig
from eqdp.errors import EqdpError
from eqdp.runtime import COMMAND_ENV
from eqdp.suites.claims import in_flight, read_events
from eqdp.suites.file import EXECUTORS, ExecutorSettings
from eqdp.suites.worker import Observer, WorkerReport, run_worker

SUBMITIT_FOLDER = ".submitit"
POLL_SECONDS = 2.0
LOCAL_TIME_MIN = 7 * 24 * 60  # submitit kills local jobs at their time limit
SLURM_TIME_MIN = 240

# Called while waiting: (events since the start, progress of runs in flight).
Monitor = Callable[[list[dict[str, Any]], list[dict[str, Any]]], None]


@dataclass
class Execution:
    executor: str
    workers: int
    job_ids: list[str] = field(default_factory=list)
    reports: list[WorkerReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # workers that died
    waited: bool = True

    @property
    def failed(self) -> list[str]:
        return [f for report in self.reports for f in report.failed] + self.errors

    @property
    def ran(self) -> list[str]:
        return [path for report in self.reports for path in report.ran]


def default_threads(settings: ExecutorSettings, workers: int) -> int:
    if settings.threads is not None:
        return settings.threads
    if settings.executor == "slurm":
        return settings.cpus or 1
    return max(1, (os.cpu_count() or 1) // workers)


def execute(
    pending: list[RunConfig],
    settings: ExecutorSettings,
    results: Path,
    wait: bool = True,
    observer: Observer | None = None,
    monitor: Monitor | None = None,
) -> Execution:
    """Run the pending configurations on ``settings.executor``."""
    if settings.executor not in EXECUTORS:
        raise EqdpError(
            f"unknown executor {settings.executor!r}; valid choices: {', '.join(EXECUTORS)}"
        )
    if settings.executor == "inline":
        threads = settings.threads
        report = run_worker(pending, threads, observer)
        return Execution("inline", 1, reports=[report])
    workers = settings.workers or (len(pending) if settings.executor == "slurm" else 1)
    workers = max(1, min(workers, len(pending)))
    threads = default_threads(settings, workers)
    executor = submitit_executor(settings, results / SUBMITIT_FOLDER, threads, workers)
    os.environ.setdefault(COMMAND_ENV, json.dumps(sys.argv))  # workers inherit it
    started = time.time()
    local = settings.executor == "local"
    # A local worker watches a driver that waits for it and stops when it is killed; one
    # that does not wait leaves its workers to finish the plan on their own.
    driver = os.getpid() if local and wait else None
    with _interrupts_ignored_by_children(), executor.batch():
        jobs = [
            executor.submit(run_worker, pending, threads, None, local, driver)
            for _ in range(workers)
        ]
    execution = Execution(settings.executor, workers, [job.job_id for job in jobs], waited=wait)
    if not wait:
        return execution
    try:
        with _terminate_as_interrupt():
            while not all(job.done() for job in jobs):
                if monitor is not None:
                    monitor(read_events(results, started), in_flight(results))
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        for job in jobs:
            _cancel(job, settings.executor)
        raise
    if monitor is not None:
        monitor(read_events(results, started), in_flight(results))
    for job in jobs:
        try:
            execution.reports.append(job.result())
        except Exception as error:  # the worker process itself died
            execution.errors.append(f"worker {job.job_id}: {type(error).__name__}: {error}")
    return execution


def _cancel(job: Any, executor: str) -> None:
    """Stop a worker. A local job's id is its controller's pid: SIGTERM, which the
    controller forwards to the worker, which then exits (``run_worker``'s
    ``stop_on_terminate``). submitit's own cancel sends SIGINT, which a process started
    in the background of a non-interactive shell ignores."""
    if executor != "local":
        job.cancel(check=False)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
        os.kill(int(job.job_id), signal.SIGTERM)


@contextlib.contextmanager
def _interrupts_ignored_by_children() -> Iterator[None]:
    """Processes started here inherit SIGINT ignored, and Python keeps it so.

    Ctrl-C in a terminal reaches its whole process group: submitit's local controllers
    and workers printed their KeyboardInterrupt tracebacks over the driver's output. The
    driver alone handles Ctrl-C and stops its workers with SIGTERM (``_cancel``).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a job scheduler) stops the driver like Ctrl-C does:
    its workers are cancelled. Python's default SIGTERM exits at once and left local
    worker processes running the plan with nobody watching."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def visible_gpu_count() -> int:
    """GPUs this driver sees, so that its local workers see the same ones (0 without torch
    imported or without CUDA: a CPU suite needs none)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return 0
    return torch.cuda.device_count()


def submitit_executor(settings: ExecutorSettings, folder: Path, threads: int, workers: int):
    import submitit

    folder.mkdir(parents=True, exist_ok=True)
    if settings.executor == "local":
        executor = submitit.LocalExecutor(folder=str(folder / "%j"))
        # submitit sets each local job's CUDA_VISIBLE_DEVICES to its first gpus_per_node
        # GPUs, "" by default: without this, workers packed on one GPU would see none.
        executor.update_parameters(
            timeout_min=settings.time_min or LOCAL_TIME_MIN,
            gpus_per_node=settings.gpus or visible_gpu_count(),
        )
        return executor
    executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster="slurm")
    parameters: dict[str, Any] = {
        "timeout_min": settings.time_min or SLURM_TIME_MIN,
        "cpus_per_task": settings.cpus or threads,
        "name": "eqdp-suite",
    }
    if settings.partition:
        parameters["slurm_partition"] = settings.partition
    if settings.gpus:
        parameters["gpus_per_node"] = settings.gpus
    if settings.mem_gb:
        parameters["mem_gb"] = settings.mem_gb
    if settings.array_parallelism:
        parameters["slurm_array_parallelism"] = settings.array_parallelism
    executor.update_parameters(**parameters)
    return executor
