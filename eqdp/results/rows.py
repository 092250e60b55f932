"""Records -> rows: one row per configuration (row key), its measurements deduplicated.

Every table (leaderboard, README blocks, robustness tables, plots) is built
from these rows, so a row is always one configuration and ``n_seeds`` counts
its seeds. Within a row, records of one measurement (same seed and, for
evaluations, same checkpoint) are merged by the benchmark: by default the
newest record wins (a rerun replaces, never double-counts); the adversarial
benchmark unions the attacks run on one checkpoint in separate runs.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from eqdp.benchmarks.registry import BENCHMARKS
from eqdp.results.identity import keyed, label


def mean_std(values: list[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation of the finite values; nan, nan if none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


@dataclass
class Row:
    """One configuration and its measurements (one merged record per seed/checkpoint)."""

    key: str
    material: dict
    members: list[dict] = field(default_factory=list)

    @property
    def newest(self) -> dict:
        return max(self.members, key=lambda r: (r["created_at"], r["run_id"]))

    @property
    def benchmark(self) -> str:
        return self.material["benchmark"]

    @property
    def dataset(self) -> str:
        return self.material["dataset"]

    @property
    def size(self) -> int:
        return self.material["size"]

    @property
    def model(self) -> str:
        return self.material["model"]

    @property
    def label(self) -> str:
        return label(self.newest)

    @property
    def n_seeds(self) -> int:
        return len({m["seed"] for m in self.members})

    def values(self, value: Callable[[dict], float | None]) -> list[float | None]:
        return [value(member) for member in self.members]

    def stat(self, value: Callable[[dict], float | None]) -> tuple[float, float]:
        return mean_std(self.values(value))


def measurement(record: dict) -> tuple:
    """What one record measured: its seed and the checkpoint it evaluated (if any)."""
    return record["seed"], record.get("source_run")


def _newest(records: list[dict]) -> dict:
    return records[-1]


def aggregate_rows(records: list[dict]) -> list[Row]:
    """Rows in first-seen order; each row's members merged per measurement."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    materials: dict[str, dict] = {}
    for record in records:
        key, material = keyed(record["config"])
        materials.setdefault(key, material)
        grouped[key].append(record)
    rows = []
    for key, group in grouped.items():
        merge = BENCHMARKS.get(materials[key]["benchmark"]).merge or _newest
        by_measurement: dict[tuple, list[dict]] = defaultdict(list)
        for record in sorted(group, key=lambda r: (r["created_at"], r["run_id"])):
            by_measurement[measurement(record)].append(record)
        rows.append(Row(key, materials[key], [merge(m) for m in by_measurement.values()]))
    return rows
