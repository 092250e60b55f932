"""What the CLI shows while work runs: a bar per run, or a live view of a suite's workers."""

from __future__ import annotations

import time
from typing import Any

from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
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
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=errors,
        disable=not errors.is_terminal,
    )


class RunBar:
    """One run's bar: epochs, then the evaluation stage (attack batches)."""

    def __init__(self, progress: Progress, label: str, epochs: int) -> None:
        self.progress, self.label = progress, label
        self.task = progress.add_task(label, total=epochs, status="loading data and model")

    def __call__(self, update: Any) -> None:
        from eqdp.engine.progress import StageProgress

        if isinstance(update, StageProgress):
            status = update.status
            self.progress.update(
                self.task,
                completed=update.done,
                total=update.total,
                status=status,
                description=f"{self.label} {update.stage}",
            )
            line = f"{self.label}: {update.stage} {update.done}/{update.total} {status}"
        else:
            status = f"loss {update.train_loss:.4f}  val AUC {update.val_auc:.3f}"
            self.progress.update(self.task, advance=1, total=update.epochs, status=status)
            epoch = f"epoch {update.epoch}/{update.epochs}"
            line = f"{self.label}: {epoch} {status} ({update.seconds:.0f}s)"
        if not errors.is_terminal:
            errors.print(line, soft_wrap=True, highlight=False)


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
