"""Start search workers: inline, local processes or Slurm jobs (the suite executors)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from eqdp.errors import EqdpError
from eqdp.search.objective import SearchConfig
from eqdp.search.study import (
    TrialOutcome,
    create_study_folder,
    finished_count,
    open_study,
    run_worker,
)

EXECUTORS = ("inline", "local", "slurm")
POLL_SECONDS = 5.0


def run_search(
    folder: str | Path,
    config: SearchConfig,
    trials: int,
    workers: int = 1,
    executor: str = "inline",
    threads: int | None = None,
    data_dir: str | None = None,
    device: str = "auto",
    slurm: dict[str, Any] | None = None,
    console: Any = None,
    verify_md5: bool = True,
) -> None:
    """Fill the study in ``folder`` up to ``trials`` finished trials."""
    from eqdp.data.catalog import check_flag, check_size
    from eqdp.data.medmnist_data import check_data_file

    if executor not in EXECUTORS:
        raise EqdpError(f"unknown executor {executor!r}; valid choices: {', '.join(EXECUTORS)}")
    if executor == "inline" and workers > 1:
        raise EqdpError("--workers > 1 needs --executor local or slurm")
    check_size(config.size)
    for flag in config.datasets:  # fail on a bad dataset before any work
        check_data_file(check_flag(flag), config.size, data_dir, verify_md5)
    folder = create_study_folder(folder, config)
    before = finished_count(open_study(folder))
    if before >= trials:
        _say(console, f"{folder}: {before} finished trials already (>= {trials}); nothing to do")
        return
    _say(console, f"{folder}: {before} finished trials, running up to {trials} "
                  f"with {workers} {executor} worker(s)")  # fmt: skip
    if executor == "inline":
        _run_inline(folder, trials, (data_dir, verify_md5), device, threads, before, console)
        return
    data = (data_dir, verify_md5)
    _run_submitit(folder, trials, workers, executor, threads, data, device, slurm, console)


def _say(console: Any, line: str) -> None:
    if console is not None:
        console.print(line, highlight=False)


def _run_inline(folder, trials, data, device, threads, before, console) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console, transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task("trials", total=trials, completed=before)

        def on_trial(outcome: TrialOutcome, finished: int) -> None:
            progress.console.print(outcome.line, highlight=False)
            progress.update(task, completed=min(finished, trials))

        run_worker(folder, trials, data, device, threads, 0, on_trial)


def _run_submitit(folder, trials, workers, executor, threads, data, device, slurm, console):
    from eqdp.suites.executors import submitit_executor
    from eqdp.suites.file import ExecutorSettings

    slurm = slurm or {}
    settings = ExecutorSettings(
        executor=executor, workers=workers, threads=threads,
        partition=slurm.get("partition"), time_min=slurm.get("time_min"),
        gpus=slurm.get("gpus", 0),
    )  # fmt: skip
    threads = threads or 1
    submitter = submitit_executor(settings, Path(folder) / ".submitit", threads, workers)
    with submitter.batch():
        jobs = [
            submitter.submit(run_worker, str(folder), trials, data, device, threads, index)
            for index in range(workers)
        ]
    study = open_study(folder, create=False)
    last = -1
    while not all(job.done() for job in jobs):
        finished = finished_count(study)
        if finished != last:
            _say(console, f"{time.strftime('%H:%M:%S')} {finished}/{trials} trials finished")
            last = finished
        time.sleep(POLL_SECONDS)
    errors = []
    for job in jobs:
        try:
            job.result()
        except Exception as error:  # a worker died: its trial is requeued on the next start
            errors.append(f"worker {job.job_id}: {type(error).__name__}: {str(error)[-300:]}")
    _say(console, f"{finished_count(study)}/{trials} trials finished")
    if errors:
        raise EqdpError("; ".join(errors))
