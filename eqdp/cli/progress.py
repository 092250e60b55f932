"""What the CLI shows while work runs: a bar per run, or a live view of a suite's workers."""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.live import Live
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from eqdp.cli.common import console, errors


def run_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[step]}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=errors,
        disable=not errors.is_terminal,
    )


# A run whose first epoch says it will take at least this long prints its estimate.
LONG_RUN_SECONDS = 60.0
# Without a terminal (logs, CI), a line with the speed and ETA this often within an epoch.
MEASURE_EVERY_SECONDS = 60.0
# Before any batch is measured, a line this often that training is under way.
HEARTBEAT_SECONDS = 30.0


def human_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class RunBar:
    """One run's bar, counting training images so its ETA starts within seconds (not after
    the first epoch), then the evaluation stage (attack batches). Says what it plans before
    training, and after the first epoch how long the run will take when that is long.
    Without a terminal (logs, CI) the same as lines: one per epoch, with an ETA."""

    def __init__(self, progress: Progress, label: str, epochs: int) -> None:
        self.progress, self.label, self.epochs = progress, label, epochs
        self.planned: int | None = None
        self.training_started: float | None = None
        self.measured_at: float | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.status = "training"
        self.task = progress.add_task(
            label, total=None, step="", status="loading data and building the model"
        )
        self._say("loading data and building the model", only_without_terminal=True)

    def _say(self, text: str, only_without_terminal: bool = False) -> None:
        if errors.is_terminal and only_without_terminal:
            return
        target = self.progress.console if errors.is_terminal else errors
        target.print(f"{self.label}: {text}", soft_wrap=True, highlight=False)

    def __call__(self, update: Any) -> None:
        from eqdp.engine.progress import StageProgress, TrainingProgress

        if isinstance(update, TrainingProgress):
            self._training(update)
        elif isinstance(update, StageProgress):
            status = update.status
            self.progress.update(
                self.task,
                completed=update.done,
                total=update.total,
                step=f"{update.done}/{update.total}",
                status=status,
                description=f"{self.label} {update.stage}",
            )
            self._say(f"{update.stage} {update.done}/{update.total} {status}", True)
        else:
            self._epoch(update)

    def _heartbeat(self) -> None:
        """Until the first batch is measured, a line every HEARTBEAT_SECONDS: a heavy model's
        first batch (p4-resnet18 at 64 px: 9.6 GMACs an image) can take minutes on a CPU."""
        started = time.time()
        while not self._stop.wait(HEARTBEAT_SECONDS):
            if self.measured_at is not None:
                return
            self._say(
                f"still on the first training batch after {human_duration(time.time() - started)}"
                " (the speed and ETA follow once it is done)"
            )

    def close(self) -> None:
        self._stop.set()

    def _training(self, update: Any) -> None:
        if self.planned is None or update.images == 0:
            self.planned = update.planned
            self.training_started = time.time()
            self.epochs = update.epochs
            self.measured_at = None
            if self._beat is None:
                self._beat = threading.Thread(target=self._heartbeat, daemon=True)
                self._beat.start()
            self._say(
                f"training {update.epochs} epoch{'s' * (update.epochs != 1)} x "
                f"{update.planned // update.epochs:,} "
                f"images = {update.planned:,} images planned"
            )
        speed = update.images / update.seconds if update.images and update.seconds > 0 else None
        status = self.status if speed is None else f"{self.status} {speed:,.1f} img/s"
        self.progress.update(
            self.task,
            completed=update.images,
            total=update.planned,
            step=f"epoch {update.epoch}/{update.epochs}",
            status=status,
        )
        # The first measured speed is said at once (a heavy model's first epoch can take
        # minutes of silence otherwise), then without a terminal every MEASURE_EVERY s.
        now = time.time()
        due = self.measured_at is None or (
            not errors.is_terminal and now - self.measured_at >= MEASURE_EVERY_SECONDS
        )
        if speed is not None and due:
            self.measured_at = now
            eta = update.eta_seconds() or 0.0
            self._say(f"{update}, {speed:,.1f} img/s, eta {human_duration(eta)} for training")

    def _epoch(self, update: Any) -> None:
        self._stop.set()
        status = self.status = f"loss {update.train_loss:.4f}  val AUC {update.val_auc:.3f}"
        done = self.planned * update.epoch // update.epochs if self.planned else update.epoch
        self.progress.update(
            self.task,
            completed=done,
            total=self.planned or update.epochs,
            step=f"epoch {update.epoch}/{update.epochs}",
            status=status,
        )
        elapsed = time.time() - (self.training_started or time.time())
        remaining = elapsed / update.epoch * (update.epochs - update.epoch)
        if update.epoch == 1 and update.epochs > 1 and elapsed * update.epochs >= LONG_RUN_SECONDS:
            self._say(
                f"the first epoch took {human_duration(elapsed)}: all {update.epochs} epochs "
                f"will take about {human_duration(elapsed * update.epochs)}"
            )
        eta = f", eta {human_duration(remaining)}" if update.epoch < update.epochs else ""
        self._say(
            f"epoch {update.epoch}/{update.epochs} {status} ({update.seconds:.0f}s{eta})", True
        )


def done_line(label: str, record: dict, path: Any) -> None:
    test = record["metrics"]["test"]
    console.print(
        f"[green]done[/] {label}: test AUC {test['auc']:.3f} ACC {test['acc']:.3f} "
        f"(best epoch {record['best_epoch']}) -> {path}",
        soft_wrap=True,
        highlight=False,
    )


class SuiteMonitor:
    """A live table of the runs in flight and the suite's count, fed by claims and events."""

    def __init__(self, total: int, keys: set[str]) -> None:
        self.total, self.keys = total, keys
        self.printed: set[tuple[str, str]] = set()
        self.started = time.time()
        self.live = Live(console=errors, refresh_per_second=2, transient=True)
        self.finished = self.failed = 0

    def __enter__(self) -> SuiteMonitor:
        if errors.is_terminal:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if errors.is_terminal:
            self.live.__exit__(*exc)

    def __call__(self, events: list[dict[str, Any]], flight: list[dict[str, Any]]) -> None:
        mine = [e for e in events if e.get("key") in self.keys]
        for event in mine:
            marker = (event["key"], event["event"])
            if marker in self.printed:
                continue
            self.printed.add(marker)
            if event["event"] == "finished":
                self.finished += 1
                console.print(
                    f"[green]done[/] {event['run']}: test AUC {event['test_auc']:.3f} "
                    f"ACC {event['test_acc']:.3f} -> {event['path']}",
                    soft_wrap=True,
                    highlight=False,
                )
            else:
                self.failed += 1
                errors.print(f"[red]failed[/] {event['error']}", soft_wrap=True, highlight=False)
        if errors.is_terminal:
            self.live.update(self._table([f for f in flight if f.get("key") in self.keys]))

    def _table(self, flight: list[dict[str, Any]]) -> Table:
        elapsed = time.time() - self.started
        title = (
            f"{self.finished}/{self.total} recorded, {self.failed} failed, "
            f"{len(flight)} running, {elapsed / 60:.0f} min"
        )
        table = Table(title=title, show_edge=False)
        for column in ("run", "stage", "progress", "status", "eta"):
            table.add_column(column)
        for report in flight:
            eta = report.get("eta_seconds")
            table.add_row(
                report.get("run", ""),
                report.get("stage", ""),
                f"{report.get('done', 0)}/{report.get('total', '?')}",
                report.get("status", ""),
                "" if eta is None else f"{eta / 60:.1f} min",
            )
        return table
