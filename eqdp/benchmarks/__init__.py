"""Benchmarks compose data, models, training and records; importing registers them."""

from __future__ import annotations

from pathlib import Path

from eqdp.benchmarks import dp as _dp  # noqa: F401  (registers "dp")
from eqdp.benchmarks import standard as _standard  # noqa: F401  (registers "standard")
from eqdp.benchmarks.base import BENCHMARKS, Benchmark, RunConfig, list_benchmarks
from eqdp.results.checkpoints import save_checkpoint
from eqdp.results.records import write_record
from eqdp.train import EpochCallback


def run_benchmark(
    config: RunConfig,
    results_root: str | Path | None = None,
    on_epoch: EpochCallback | None = None,
) -> tuple[dict, Path]:
    """Run one configuration; write its checkpoint and then its record. Returns both."""
    benchmark = BENCHMARKS.get(config.benchmark)
    benchmark.check(config)
    record, state = benchmark.run(config, on_epoch)
    checkpoint = save_checkpoint(record["run_id"], state)
    record["checkpoint"] = checkpoint.name
    return record, write_record(record, results_root)


__all__ = ["BENCHMARKS", "Benchmark", "RunConfig", "list_benchmarks", "run_benchmark"]
