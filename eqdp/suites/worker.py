"""A worker: pull configurations from a plan, claim each, run it, release it.

The same function runs inline (in the driver's process), in a local process or
in a Slurm array task (both through submitit). Before running a configuration
a worker checks that no record of it exists, claims it, and checks again, so a
rerun of a suite, or a second driver, adds no record twice. A failed run is
logged and left unrecorded (a later ``eqdp suite`` retries it); the worker goes
on with the next configuration.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eqdp.config.run import RunConfig
from eqdp.suites.campaign import fits_before_deadline
from eqdp.suites.claims import Claim, log_event, try_claim

if TYPE_CHECKING:
    from eqdp.engine.progress import EpochStats, StageProgress, TrainingProgress

# Called with (config, None) before a run, then with each progress update, then with the
# finished run's (record, path).
Observer = Callable[
    [RunConfig, "EpochStats | StageProgress | TrainingProgress | tuple[dict, str] | None"], None
]


@dataclass
class WorkerReport:
    ran: list[str] = field(default_factory=list)  # record paths written
    skipped: int = 0  # recorded already, or claimed by another worker
    deferred: int = 0  # would end after a campaign's deadline: left for the next one
    failed: list[str] = field(default_factory=list)  # "run: message"


# Run keys of the record files a worker has read, by path: each file is parsed once per
# process, however many configurations of its folder the worker checks.
_RUN_KEYS: dict[str, str | None] = {}


def _recorded(config: RunConfig, key: str) -> bool:
    """A record of this run exists (only its benchmark/dataset/model folder is read)."""
    from eqdp.results.records import results_dir

    folder = (
        results_dir(config.results_dir)
        / config.benchmark
        / f"{config.dataset}_{config.size}"
        / config.model
    )
    if not folder.is_dir():
        return False
    return any(_run_key_of(str(path)) == key for path in folder.glob("*.json"))


def _run_key_of(path: str) -> str | None:
    from eqdp.results.identity import run_key
    from eqdp.results.migrations import migrate_records

    if path not in _RUN_KEYS:
        try:
            with open(path, encoding="utf-8") as handle:
                (record,) = migrate_records([json.load(handle)])
            _RUN_KEYS[path] = run_key(record["config"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable or being written: look again next time
    return _RUN_KEYS[path]


def _progress_reporter(claim: Claim, label: str, observer: Observer | None, config: RunConfig):
    from eqdp.engine.progress import EpochStats, TrainingProgress

    started = time.time()

    last_training_report = 0.0

    def report(update: EpochStats | StageProgress | TrainingProgress) -> None:
        nonlocal last_training_report
        if isinstance(update, TrainingProgress):
            # Within an epoch: the monitor's ETA before the first epoch ends, written every
            # 5 s (an in-process observer, the inline executor's bar, gets every update).
            if time.time() - last_training_report >= 5.0:
                last_training_report = time.time()
                eta = update.eta_seconds()
                claim.report(
                    {
                        "run": label,
                        "stage": "train",
                        "done": update.epoch - 1,
                        "total": update.epochs,
                        "status": f"epoch {update.epoch}: {update.images}/{update.planned} images",
                        "eta_seconds": None if eta is None else round(eta, 1),
                    }
                )
        elif isinstance(update, EpochStats):
            elapsed = time.time() - started
            eta = elapsed / update.epoch * (update.epochs - update.epoch)
            claim.report(
                {
                    "run": label,
                    "stage": "train",
                    "done": update.epoch,
                    "total": update.epochs,
                    "status": f"loss {update.train_loss:.4f} val AUC {update.val_auc:.3f}",
                    "eta_seconds": round(eta, 1),
                }
            )
        else:
            claim.report(
                {
                    "run": label,
                    "stage": update.stage,
                    "done": update.done,
                    "total": update.total,
                    "status": update.status,
                }
            )
        if observer is not None:
            observer(config, update)

    return report


def _exit_on_terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the claim's ``with``: it is released


DRIVER_POLL_SECONDS = 2.0


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def watch_driver(
    driver_pid: int, stop: Callable[[], None], poll_seconds: float = DRIVER_POLL_SECONDS
) -> threading.Thread:
    """A daemon thread that calls ``stop`` once the driver process is gone.

    A driver killed with SIGKILL cancels nobody: its local workers would run the whole
    plan with nobody waiting. The thread notices, and ``stop`` (SIGTERM to the worker
    itself) makes the worker give back its claim and exit.
    """

    def watch() -> None:
        while process_alive(driver_pid):
            time.sleep(poll_seconds)
        stop()

    thread = threading.Thread(target=watch, name="eqdp-driver-watch", daemon=True)
    thread.start()
    return thread


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def run_worker(
    plan: list[RunConfig],
    threads: int | None = None,
    observer: Observer | None = None,
    stop_on_terminate: bool = False,
    driver_pid: int | None = None,
) -> WorkerReport:
    """Run every configuration of ``plan`` nobody has run or is running; return what happened.

    ``stop_on_terminate`` (local worker processes): SIGTERM ends the worker, giving its
    claim back. submitit ignores SIGTERM in its jobs (on Slurm it precedes a timeout or
    preemption), so a cancelled local worker would otherwise run on with nobody waiting.
    ``driver_pid`` (local workers of a driver that waits for them): when that process
    is gone, the worker stops the same way.
    """
    from eqdp.benchmarks.execute import run_benchmark
    from eqdp.results.identity import run_key
    from eqdp.results.records import results_dir
    from eqdp.suites.plan import describe

    if stop_on_terminate:
        signal.signal(signal.SIGTERM, _exit_on_terminate)
        if driver_pid is not None:
            watch_driver(driver_pid, _terminate_self)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    report = WorkerReport()
    for config in plan:
        key = run_key(config.as_dict())
        results = results_dir(config.results_dir)
        label = describe(config)
        if _recorded(config, key):
            report.skipped += 1
            continue
        if not fits_before_deadline(key):
            report.deferred += 1
            continue
        claim = try_claim(results, key, label)
        if claim is None:
            report.skipped += 1
            continue
        with claim:
            if _recorded(config, key):  # finished between the check and the claim
                report.skipped += 1
                continue
            if observer is not None:
                observer(config, None)
            try:
                record, path = run_benchmark(
                    config, on_progress=_progress_reporter(claim, label, observer, config)
                )
            except Exception as error:  # one failed run must not stop the rest
                message = f"{label}: {type(error).__name__}: {error}"
                report.failed.append(message)
                log_event(
                    results,
                    {
                        "event": "failed",
                        "key": key,
                        "run": label,
                        "error": message,
                        "traceback": traceback.format_exc(limit=8),
                    },
                )
                continue
            report.ran.append(str(path))
            if observer is not None:
                observer(config, (record, str(path)))
            test = record["metrics"]["test"]
            log_event(
                results,
                {
                    "event": "finished",
                    "key": key,
                    "run": label,
                    "path": str(path),
                    "test_auc": test.get("auc"),
                    "test_acc": test.get("acc"),
                },
            )
    return report
