"""The findings: eq-nasnet-b0 compared with each opponent, per benchmark, dataset and protocol.

Everything here is computed from records (rows of ``eqdp.results.rows``); the
page and the README summary are rendered by ``eqdp.report.findings_page``.

- A *protocol* is full (the benchmark's real recipe, PROTOCOLS) or a smoke
  budget. The two are never compared with each other and never share a table.
- A *condition* is everything of a row's configuration but the model, its
  options and the tuned training choices (learning rate, augmentation): same
  benchmark, dataset, size, epochs, batch and benchmark options (ε, fraction,
  scaling point, how an evaluated model was trained).
- In a condition, eq-nasnet-b0 at its defaults (A) is compared with every other
  row (B), paired by seed, on each of the benchmark's metrics (METRICS), with
  the statistics of ``eqdp.results.stats``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from eqdp.results.rows import Row
from eqdp.results.stats import Comparison, compare

SUBJECT = "eq-nasnet-b0"
# The opponents the question needs (issue 27), in the order tables list them.
EXPECTED_OPPONENTS: tuple[str, ...] = (
    "nasnet-b0",
    "nasnet-b0 match=params",
    "nasnet-b0 augment=d4",
    "cnn",
    "resnet18",
    "efficientnet-b0",
    "vit",
)
OPPONENT_ROLES = {
    "nasnet-b0": "twin, MACs matched",
    "nasnet-b0 match=params": "twin, parameters matched",
    "nasnet-b0 augment=d4": "twin trained with D4 augmentation",
}
DATASETS: tuple[str, ...] = ("breastmnist", "retinamnist", "pneumoniamnist")
BENCHMARK_ORDER: tuple[str, ...] = (
    "standard", "dp", "low-data", "adversarial", "geometric", "scaling",
)  # fmt: skip
# Seeds a full-protocol cell needs to count as done (issue 27): 5 for the subject, its
# twins and cnn, 3 for the rest.
FIVE_SEED_MODELS = frozenset({SUBJECT, "nasnet-b0", "nasnet-b0 match=params",
                              "nasnet-b0 augment=d4", "cnn"})  # fmt: skip
# Scaling axes set these model options: the point is in the condition, not the opponent.
AXIS_OPTIONS = frozenset({"width_multiplier", "depth_multiplier"})
DP_MIN_STEPS = 500  # benchmarks/dp/real-budget.toml: about 500 optimiser steps per run


def _train(row_or_record: Row | dict) -> dict:
    material = row_or_record.material if isinstance(row_or_record, Row) else row_or_record
    return material.get("train", {})


def _expected_steps(row: Row) -> float:
    """Optimiser steps of a DP run: epochs x N / batch (Poisson sampling, in expectation)."""
    train = _train(row)
    n_train = (row.newest.get("data") or {}).get("n_train") or 0
    return train.get("epochs", 0) * n_train / max(train.get("batch_size", 1), 1)


@dataclass(frozen=True)
class Protocol:
    description: str  # what the full protocol is, for the page
    is_full: Callable[[Row], bool]


def _hundred_epochs(row: Row) -> bool:
    train = _train(row)
    return train.get("epochs") == 100 and train.get("batch_size") == 128


PROTOCOLS: dict[str, Protocol] = {
    "standard": Protocol(
        "MedMNIST v2: 100 epochs, Adam, batch 128, lr x0.1 at 50%/75%, selection on val AUC",
        _hundred_epochs,
    ),
    "dp": Protocol(
        f"DP-SGD at a real budget: Poisson batches of 128 for at least {DP_MIN_STEPS} steps "
        "(benchmarks/dp/real-budget.toml)",
        lambda row: _train(row).get("batch_size") == 128 and _expected_steps(row) >= DP_MIN_STEPS,
    ),
    "low-data": Protocol(
        "the standard recipe (100 epochs at 100% data) on a stratified fraction, epochs scaled "
        "to the full-data run's optimiser steps",
        _hundred_epochs,
    ),
    "adversarial": Protocol(
        "attacks on the checkpoints of 100-epoch standard runs", _hundred_epochs
    ),
    "geometric": Protocol(
        "rotations, flips and scalings of the test set on the checkpoints of 100-epoch "
        "standard runs",
        _hundred_epochs,
    ),
    "scaling": Protocol("each point trained with the standard 100-epoch recipe", _hundred_epochs),
}


@dataclass(frozen=True)
class Metric:
    name: str
    value: Callable[[dict], float | None]
    higher_is_better: bool = True


def _test_auc(record: dict) -> float | None:
    return record["metrics"]["test"].get("auc")


def metrics_for(benchmark: str, rows: list[Row]) -> list[Metric]:
    """What a benchmark's comparison is on: test AUC, or the benchmark's robustness metrics."""
    if benchmark == "adversarial":
        from eqdp.benchmarks.adversarial import adversarial_columns

        return [Metric(f"robust ACC, {name}", value) for name, value, _ in
                adversarial_columns(rows) if name != "clean ACC"]  # fmt: skip
    if benchmark == "geometric":
        from eqdp.benchmarks.geometric import geometric_columns

        wanted = {"worst ACC, all": True, "mean invariance error, rotations": False}
        return [Metric(name, value, wanted[name]) for name, value, _ in
                geometric_columns(rows) if name in wanted]  # fmt: skip
    return [Metric("test AUC", _test_auc)]


def opponent_name(row: Row, lr_of_subject: float | None = None) -> str:
    """The model plus what sets this configuration apart: options, augmentation, tuned lr."""
    defaults = (row.newest.get("model_info") or {}).get("defaults") or {}
    parts = [row.model]
    for name, value in sorted(row.material.get("model_kwargs", {}).items()):
        if name not in AXIS_OPTIONS and defaults.get(name, object()) != value:
            parts.append(f"{name}={value}")
    train = _train(row)
    if train.get("augment", "none") != "none":
        parts.append(f"augment={train['augment']}")
    if lr_of_subject is not None and train.get("lr") != lr_of_subject:
        parts.append(f"lr={train.get('lr'):g}")
    return " ".join(parts)


def condition_of(row: Row) -> str:
    """What a comparison holds fixed: the material without model, its options, lr, augment."""
    material = {k: v for k, v in row.material.items() if k not in ("model", "model_kwargs")}
    material["train"] = {k: v for k, v in _train(row).items() if k not in ("lr", "augment")}
    return json.dumps(material, sort_keys=True, default=str)


def setting_of(row: Row) -> str:
    """The benchmark options that tell conditions of one table apart (ε, fraction, point)."""
    from eqdp.benchmarks.registry import BENCHMARKS
    from eqdp.config.fields import option_specs

    benchmark = BENCHMARKS.get(row.benchmark)
    specs = {spec.name: spec for spec in option_specs(benchmark.options)}
    reference = {n: s.default for n, s in specs.items() if not s.required}
    if benchmark.label_defaults is not None:
        reference.update(benchmark.label_defaults(row.newest))
    parts = []
    for name, value in row.material.get("options", {}).items():
        if name in specs and value != reference.get(name, object()):
            parts.append(specs[name].format(float(value) if value == "inf" else value))
    return " ".join(parts)


def seed_values(row: Row, metric: Metric) -> dict[int, float | None]:
    """seed -> value; members are merged per measurement, newest last, so newest wins."""
    values: dict[int, float | None] = {}
    for member in sorted(row.members, key=lambda r: (r["created_at"], r["run_id"])):
        try:
            values[member["seed"]] = metric.value(member)
        except (KeyError, TypeError):
            values.setdefault(member["seed"], None)
    return values


@dataclass
class Line:
    """One comparison: eq-nasnet-b0 vs one opponent, in one setting, on one metric."""

    setting: str
    metric: Metric
    opponent: str
    result: Comparison


@dataclass
class Table:
    """One benchmark x dataset x size x protocol: its comparisons and where they came from."""

    benchmark: str
    dataset: str
    size: int
    full: bool
    lines: list[Line] = field(default_factory=list)
    subject_rows: list[Row] = field(default_factory=list)
    opponent_rows: list[Row] = field(default_factory=list)

    @property
    def rows(self) -> list[Row]:
        return self.subject_rows + self.opponent_rows

    @property
    def opponents(self) -> list[str]:
        return list(dict.fromkeys(line.opponent for line in self.lines))

    def missing_opponents(self) -> list[str]:
        present = {opponent_name(row) for row in self.opponent_rows}
        return [name for name in EXPECTED_OPPONENTS if name not in present]


def is_subject(row: Row) -> bool:
    """eq-nasnet-b0 at its own defaults, without augmentation."""
    defaults = (row.newest.get("model_info") or {}).get("defaults") or {}
    kwargs = {k: v for k, v in row.material.get("model_kwargs", {}).items()
              if k not in AXIS_OPTIONS}  # fmt: skip
    plain = all(defaults.get(k, v) == v for k, v in kwargs.items())
    return row.model == SUBJECT and plain and _train(row).get("augment", "none") == "none"


def is_full(row: Row) -> bool:
    protocol = PROTOCOLS.get(row.benchmark)
    return protocol is not None and protocol.is_full(row)


def build_tables(rows: list[Row]) -> list[Table]:
    """Every benchmark x dataset x size x protocol with rows; comparisons where A is present."""
    tables: dict[tuple, Table] = {}
    by_condition: dict[tuple, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.benchmark not in PROTOCOLS:
            continue
        where = (row.benchmark, row.dataset, row.size, is_full(row))
        table = tables.setdefault(where, Table(*where))
        (table.subject_rows if is_subject(row) else table.opponent_rows).append(row)
        by_condition[where][condition_of(row)].append(row)
    for where, table in tables.items():
        metrics = metrics_for(table.benchmark, table.rows)
        for group in by_condition[where].values():
            subjects = [row for row in group if is_subject(row)]
            others = [row for row in group if not is_subject(row) and row.model != SUBJECT]
            for subject in subjects:
                lr = _train(subject).get("lr")
                for other in others:
                    for metric in metrics:
                        result = compare(
                            seed_values(subject, metric),
                            seed_values(other, metric),
                            metric.higher_is_better,
                        )
                        if result.seeds:
                            name = opponent_name(other, lr)
                            table.lines.append(Line(setting_of(subject), metric, name, result))
        table.lines.sort(key=lambda line: (_opponent_order(line.opponent), line.setting,
                                           line.metric.name))  # fmt: skip
    return sorted(tables.values(), key=_table_order)


def _opponent_order(name: str) -> tuple[int, str]:
    for index, expected in enumerate(EXPECTED_OPPONENTS):
        if name == expected or name.startswith(expected + " lr="):
            return index, name
    return len(EXPECTED_OPPONENTS), name


def _table_order(table: Table) -> tuple:
    bench = BENCHMARK_ORDER.index(table.benchmark) if table.benchmark in BENCHMARK_ORDER else 99
    data = DATASETS.index(table.dataset) if table.dataset in DATASETS else 99
    return (not table.full, bench, data, table.dataset, table.size)
