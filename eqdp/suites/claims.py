"""Per-run claims: lock files next to the records, so no run is done twice at once.

A worker about to run a configuration creates ``<results>/.claims/<run key>.claim``
with ``O_CREAT | O_EXCL`` (atomic on local and NFSv3+ file systems): exactly one
of several workers or drivers, on any machine that shares the folder, gets it.
The holder keeps the file's modification time fresh (a heartbeat thread) and
removes it when the run ends, recorded or failed. A claim is stale, and may be
taken over, when its process is gone (same host) or its heartbeat is older than
``STALE_AFTER_SECONDS`` (another host). Progress of the running configuration
goes to ``<run key>.progress`` beside it, for the driver's display; finished and
failed runs append one line each to ``events.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

CLAIMS_FOLDER = ".claims"
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 300.0
EVENTS_FILE = "events.log"


def claims_dir(results: Path) -> Path:
    return results / CLAIMS_FOLDER


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(path: Path) -> dict[str, Any] | None:
    """Who holds a claim (host, pid, job, started), or None if there is none."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def is_stale(path: Path, now: float | None = None, info: dict | None = None) -> bool:
    info = holder(path) if info is None else info
    if info is None:
        return False
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        return not process_alive(info["pid"])
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age > STALE_AFTER_SECONDS


class Claim:
    """A held claim; ``release`` (or leaving the ``with`` block) gives it back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.progress_path = path.with_suffix(".progress")
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def report(self, progress: dict[str, Any]) -> None:
        """Write what the run is doing, for drivers to show (atomically replaced)."""
        temporary = self.progress_path.with_name(f".{self.progress_path.name}.{uuid.uuid4().hex}")
        try:
            temporary.write_text(json.dumps({**progress, "updated": time.time()}))
            os.replace(temporary, self.progress_path)
        except OSError:
            temporary.unlink(missing_ok=True)

    def release(self) -> None:
        self._stop.set()
        self.progress_path.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()  # only when empty: nothing is left behind by a lone run

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def try_claim(results: Path, run_key: str, label: str = "") -> Claim | None:
    """The claim on ``run_key``, or None when another live worker holds it."""
    folder = claims_dir(results)
    path = folder / f"{run_key}.claim"
    info = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "job": os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_JOB_ID"),
        "started": time.time(),
        "run": label,
    }
    for _ in range(3):
        try:
            descriptor = _create(path, os.O_EXCL)
        except FileExistsError:
            seen = holder(path)
            if seen is None:
                continue  # released meanwhile
            if not is_stale(path, info=seen):
                return None
            # Take over: move the stale file aside; if what was moved is not the claim
            # judged stale (another taker was faster and claimed anew), put it back.
            aside = path.with_name(f".{path.name}.stale-{uuid.uuid4().hex}")
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            if holder(aside) != seen:
                with contextlib.suppress(FileExistsError):
                    os.link(aside, path)
                aside.unlink(missing_ok=True)
                return None
            aside.unlink(missing_ok=True)
            continue
        with os.fdopen(descriptor, "w") as handle:
            json.dump(info, handle)
        return Claim(path)
    return None


def _create(path: Path, mode: int) -> int:
    """Open ``path`` for writing with O_CREAT | ``mode``, making its folder if needed.

    A releasing claim removes the folder when it is empty, so the folder can vanish
    between making it and creating the file: then make it again.
    """
    for _ in range(5):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(path, os.O_CREAT | os.O_WRONLY | mode, 0o644)
        except FileNotFoundError:
            continue
    raise FileNotFoundError(f"cannot create {path}: its folder keeps disappearing")


def log_event(results: Path, event: dict[str, Any]) -> None:
    """Append one JSON line (one small write with O_APPEND: whole lines, also concurrently)."""
    line = json.dumps({**event, "time": time.time()}) + "\n"
    descriptor = _create(claims_dir(results) / EVENTS_FILE, os.O_APPEND)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)


def read_events(results: Path, since: float) -> list[dict[str, Any]]:
    try:
        lines = (claims_dir(results) / EVENTS_FILE).read_text().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("time", 0) >= since:
            events.append(event)
    return events


def in_flight(results: Path) -> list[dict[str, Any]]:
    """Progress of the runs being worked on now."""
    folder = claims_dir(results)
    if not folder.is_dir():
        return []
    reports = []
    for path in sorted(folder.glob("*.progress")):
        with contextlib.suppress(OSError, ValueError):
            reports.append(json.loads(path.read_text()) | {"key": path.stem})
    return reports
