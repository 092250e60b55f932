"""Benchmarks compose data, models, training and records; importing registers them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from eqdp.benchmarks import adversarial as _adversarial  # noqa: F401  (registers the rest)
from eqdp.benchmarks import dp as _dp  # noqa: F401
from eqdp.benchmarks import geometric as _geometric  # noqa: F401
from eqdp.benchmarks import low_data as _low_data  # noqa: F401
from eqdp.benchmarks import standard as _standard  # noqa: F401  (registers "standard")
from eqdp.benchmarks.base import BENCHMARKS, Benchmark, RunConfig, list_benchmarks
from eqdp.results.checkpoints import save_checkpoint
from eqdp.results.records import write_record
from eqdp.train import ProgressCallback


def run_benchmark(
    config: RunConfig,
    results_root: str | Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[dict, Path]:
    """Run one configuration; write its checkpoint and then its record. Returns both.

    A source run (``options["from_run"]``) is looked up in ``config.results_dir``,
    or where this record goes when that is unset.
    """
    if config.results_dir is None and results_root is not None:
        config = replace(config, results_dir=str(results_root))
    benchmark = BENCHMARKS.get(config.benchmark)
    benchmark.check(config)
    record, state = benchmark.run(config, on_progress)
    checkpoint = save_checkpoint(record["run_id"], state)
    record["checkpoint"] = checkpoint.name
    return record, write_record(record, results_root)


__all__ = ["BENCHMARKS", "Benchmark", "RunConfig", "list_benchmarks", "run_benchmark"]
