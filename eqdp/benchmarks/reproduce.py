"""Rerun a finished run's configuration and say what differs: metrics, history, software.

A record stores its effective configuration, so a rerun needs nothing else; it
runs at the record's thread count (CPU kernels reduce in thread-count-dependent
order) and on the record's device type unless told otherwise. The rerun gets a
record of its own (``reproduces``: the original's run id) in another folder,
never next to the original, so a committed table cannot change by reproducing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eqdp.config.fields import parse_config
from eqdp.config.run import RunConfig
from eqdp.errors import EqdpError

if TYPE_CHECKING:  # the benchmarks package imports this module: no torch at import
    from eqdp.engine.progress import ProgressCallback

TIMES = ("wall_seconds", "train_seconds", "eval_seconds")  # wall times, not results
DEFAULT_TOLERANCE = 0.005  # test AUC/ACC: below the spread of any committed row

# Environment fields worth naming when they differ (the rest is host and time).
ENV_FIELDS: tuple[str, ...] = (
    "python", "torch", "cuda", "device", "device_name", "cpu_threads", "precision",
    "git_commit", "git_dirty",
)  # fmt: skip


@dataclass
class Reproduction:
    original: dict
    rerun: dict
    rerun_path: Path
    # (name, original, rerun) for every number of the records' metrics and benchmark section
    numbers: list[tuple[str, float | None, float | None]] = field(default_factory=list)
    first_history_difference: int | None = None  # epoch; None: histories identical
    environment: list[tuple[str, Any, Any]] = field(default_factory=list)  # name, was, is

    def differing(self) -> list[tuple[str, float | None, float | None]]:
        return [n for n in self.numbers if not _same(n[1], n[2])]

    def largest_test_difference(self) -> tuple[str, float]:
        """The test metric (metrics.test.*) that moved most, and by how much."""
        worst = ("", 0.0)
        for name, was, now in self.numbers:
            if name.startswith("metrics.test.") and was is not None and now is not None:
                if abs(now - was) > worst[1]:
                    worst = (name, abs(now - was))
        return worst

    @property
    def bit_identical(self) -> bool:
        return not self.differing() and self.first_history_difference is None

    def reproduced(self, tolerance: float = DEFAULT_TOLERANCE) -> bool:
        """Every test metric the original has is there again, within ``tolerance``
        (metrics the original did not record yet are not compared)."""
        for name, was, now in self.numbers:
            if name.startswith("metrics.test.") and was is not None and now is None:
                return False
        return self.largest_test_difference()[1] <= tolerance


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def numeric_leaves(value: Any, prefix: str) -> dict[str, float | None]:
    """Every number under ``value`` by dotted path; lists of results keyed by position."""
    if isinstance(value, bool):
        return {}
    if isinstance(value, (int, float)) or value is None:
        return {prefix: None if value is None else float(value)}
    leaves: dict[str, float | None] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            leaves |= numeric_leaves(item, f"{prefix}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            leaves |= numeric_leaves(item, f"{prefix}[{index}]")
    return leaves


def compare(original: dict, rerun: dict) -> tuple[list, int | None, list]:
    """(numbers, first epoch whose history differs, environment differences)."""
    from eqdp.benchmarks import BENCHMARKS

    section = BENCHMARKS.get(original["benchmark"]).section
    before = numeric_leaves(original["metrics"], "metrics")
    after = numeric_leaves(rerun["metrics"], "metrics")
    if section is not None:
        before |= numeric_leaves(original.get(section), section)
        after |= numeric_leaves(rerun.get(section), section)
    def results_only(numbers: dict[str, float | None]) -> dict[str, float | None]:
        return {k: v for k, v in numbers.items() if not k.endswith(TIMES)}

    before, after = results_only(before), results_only(after)
    numbers = [(name, before.get(name), after.get(name)) for name in {**before, **after}]

    first_difference = None
    old, new = original.get("history", []), rerun.get("history", [])
    for index in range(max(len(old), len(new))):
        a = old[index] if index < len(old) else {}
        b = new[index] if index < len(new) else {}
        shared = (set(a) & set(b)) - {"seconds"}  # fields older records lack are not compared
        if not shared or any(a[k] != b[k] for k in shared):
            first_difference = index + 1
            break

    environment = []
    was_env, now_env = original.get("env", {}), rerun.get("env", {})
    for name in ENV_FIELDS:
        if was_env.get(name) != now_env.get(name):
            environment.append((name, was_env.get(name), now_env.get(name)))
    was_packages, now_packages = was_env.get("packages") or {}, now_env.get("packages") or {}
    if not was_packages:
        environment.append(("package versions", "not recorded", "recorded"))
    else:
        for name in sorted(set(was_packages) | set(now_packages)):
            if was_packages.get(name) != now_packages.get(name):
                environment.append((name, was_packages.get(name), now_packages.get(name)))
    was_data, now_data = original.get("data", {}), rerun.get("data", {})
    if was_data.get("md5") != now_data.get("md5"):
        environment.append(("data md5", was_data.get("md5"), now_data.get("md5")))
    return numbers, first_difference, environment


def rerun_config(
    original: dict,
    results_root: str | Path | None,
    device: str | None = None,
    data_dir: str | None = None,
    checkpoint_dir: str | None = None,
) -> RunConfig:
    """The record's configuration, reading sources from ``results_root``, on ``device``
    (default: the device type the record ran on)."""
    stored = dict(original["config"])
    recorded_device = (original.get("env") or {}).get("device")
    stored["device"] = device or (recorded_device if recorded_device in ("cpu", "cuda") else "auto")
    config = parse_config(RunConfig, stored, f"run {original['run_id']} config")
    return config.replace(
        results_dir=str(results_root) if results_root is not None else None,
        checkpoint_dir=checkpoint_dir,
        data_dir=data_dir,
    )


def reproduce(
    run_id: str,
    results_root: str | Path | None = None,
    out: str | Path = Path("runs") / "reproduce",
    threads: int | None = None,
    device: str | None = None,
    data_dir: str | None = None,
    checkpoint_dir: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> Reproduction:
    """Rerun ``run_id`` (found under ``results_root``); its record and checkpoint go to
    ``out``. ``threads`` defaults to the record's intra-op thread count."""
    import torch

    from eqdp.benchmarks import BENCHMARKS
    from eqdp.benchmarks.execute import resolve_config
    from eqdp.benchmarks.pretrained import source_record
    from eqdp.engine.device import select_device
    from eqdp.results.checkpoints import check_writable, save_checkpoint
    from eqdp.results.records import find_record, results_dir, write_record

    original = find_record(run_id, results_root)
    out = Path(out)
    if out.resolve() == results_dir(results_root).resolve():
        raise EqdpError(
            f"--out {out} is the folder the original is in: a rerun would join its rows; "
            "pick another folder"
        )
    if threads is None:
        recorded = (original.get("env") or {}).get("cpu_threads")
        threads = int(recorded) if recorded else None
    if threads is not None and threads < 1:
        raise EqdpError(f"--threads {threads} must be at least 1")
    config = resolve_config(
        rerun_config(original, results_root, device, data_dir, checkpoint_dir)
    )
    source_record(config, need_checkpoint=True)  # an evaluation's weights must be there
    select_device(config.device)
    check_writable(out, "results")
    check_writable(out / "checkpoints", "checkpoint")
    if threads is not None:
        torch.set_num_threads(threads)
    record, state = BENCHMARKS.get(config.benchmark).run(config, on_progress)
    record["reproduces"] = original["run_id"]
    checkpoint = save_checkpoint(record["run_id"], state, out / "checkpoints")
    record["checkpoint"] = checkpoint.name
    try:
        path = write_record(record, out)
    except EqdpError:
        checkpoint.unlink(missing_ok=True)
        raise
    numbers, first_difference, environment = compare(original, record)
    return Reproduction(original, record, path, numbers, first_difference, environment)
