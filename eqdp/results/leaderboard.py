"""Aggregate records into leaderboard rows: mean ± std over seeds per configuration."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass

FORMATS: tuple[str, ...] = ("table", "markdown", "csv", "json")
GROUP_KEYS: tuple[str, ...] = ("benchmark", "dataset", "size", "model", "setting")


@dataclass(frozen=True)
class LeaderboardRow:
    benchmark: str
    dataset: str
    size: int
    model: str
    setting: str
    n_seeds: int
    test_auc_mean: float
    test_auc_std: float
    test_acc_mean: float
    test_acc_std: float
    params: int
    macs: int
    train_seconds_mean: float
    epsilon: float | None = None  # target epsilon of DP runs (inf: non-private reference)

    def as_dict(self) -> dict:
        return asdict(self)


def mean_std(values: list[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation of the finite values; nan, nan if none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


def model_label(record: dict) -> str:
    """The model's name, plus its training augmentation and DP, where a table or plot
    of a non-DP benchmark has to tell those runs apart."""
    label = record["model"]
    augment = record.get("config", {}).get("train", {}).get("augment", "none")
    if augment != "none":
        label += f" aug={augment}"
    if record.get("privacy") is not None and record["benchmark"] != "dp":
        label += " (DP)"
    return label


def pixel_budget_label(eps: float) -> str:
    """An attack budget in [0,1] pixels, written k/255 where it is one."""
    if 0 < eps < 1 and abs(eps * 255 - round(eps * 255)) < 1e-6:
        return f"{round(eps * 255)}/255"
    return f"{eps:g}"


def filter_records(records: list[dict], **wanted: object) -> list[dict]:
    return [r for r in records if all(v is None or r.get(k) == v for k, v in wanted.items())]


def _measured(record: dict) -> tuple:
    """What a record measured: its seed and the checkpoint it evaluated, or its config.

    Records that evaluate one checkpoint (``--from-run``) share its test metrics;
    records of one config are reruns.
    """
    source = record.get("source_run") or json.dumps(record["config"], sort_keys=True)
    return record["seed"], source


def newest_per_measurement(records: list[dict]) -> list[dict]:
    """The newest record of each measurement (``_measured``).

    Without this a rerun of a config, or a checkpoint attacked in two separate
    runs, would weigh double in the mean while ``n_seeds`` counts it once.
    """
    newest: dict[tuple, dict] = {}
    for record in sorted(records, key=lambda r: (r["created_at"], r["run_id"])):
        newest[_measured(record)] = record
    return list(newest.values())


def aggregate(records: list[dict]) -> list[LeaderboardRow]:
    """One row per configuration (``GROUP_KEYS``): mean ± std over its seeds."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        groups[tuple(record[k] for k in GROUP_KEYS)].append(record)
    rows = []
    for key, group in groups.items():
        members = newest_per_measurement(group)
        auc = mean_std([m["metrics"]["test"]["auc"] for m in members])
        acc = mean_std([m["metrics"]["test"]["acc"] for m in members])
        seconds = mean_std([m["timing"]["train_seconds"] for m in members])[0]
        info = members[0]["model_info"]
        privacy = members[0].get("privacy")
        rows.append(
            LeaderboardRow(
                *key,
                n_seeds=len({m["seed"] for m in members}),
                test_auc_mean=auc[0],
                test_auc_std=auc[1],
                test_acc_mean=acc[0],
                test_acc_std=acc[1],
                params=int(info.get("params", 0)),
                macs=int(info.get("macs", 0)),
                train_seconds_mean=seconds,
                epsilon=target_epsilon(privacy) if privacy is not None else None,
            )
        )
    rows.sort(
        key=lambda r: (
            r.benchmark,
            r.dataset,
            r.size,
            r.epsilon or 0.0,
            -_sortable(r.test_auc_mean),
        )
    )
    return rows


def target_epsilon(privacy: dict) -> float:
    """The budget a DP record was run at; inf for the noiseless reference."""
    if privacy.get("target_epsilon") is not None:
        return float(privacy["target_epsilon"])
    return float(privacy["epsilon"]) if privacy.get("private") else math.inf


def format_epsilon(value: float | None) -> str:
    if value is None:
        return "–"
    return "∞" if math.isinf(value) else f"{value:g}"


def privacy_utility_markdown(records: list[dict], metric: str = "auc") -> str:
    """One row per (dataset, model), one column per target epsilon: test metric mean ± std."""
    rows = [r for r in aggregate(records) if r.epsilon is not None]
    if not rows:
        return "_No records yet._\n"
    budgets = sorted({r.epsilon for r in rows})
    cells: dict[tuple[str, str], dict[float, str]] = {}
    for row in rows:
        mean = getattr(row, f"test_{metric}_mean")
        std = getattr(row, f"test_{metric}_std")
        seeds = "" if row.n_seeds >= 3 else f" (n={row.n_seeds})"
        cells.setdefault((f"{row.dataset} ({row.size})", row.model), {})[row.epsilon] = (
            pm(mean, std) + seeds
        )
    header = ["dataset", "model"] + [f"ε = {format_epsilon(b)}" for b in budgets]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (dataset, model), by_budget in sorted(cells.items()):
        values = [by_budget.get(b, "–") for b in budgets]
        lines.append("| " + " | ".join([dataset, model, *values]) + " |")
    return "\n".join(lines) + "\n"


def _sortable(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def pm(mean: float, std: float) -> str:
    return "–" if math.isnan(mean) else f"{mean:.3f} ± {std:.3f}"


def human_count(value: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f}{unit}"
    return str(value)


TABLE_HEADER = (
    "benchmark", "dataset", "model", "setting", "ε", "seeds",
    "test AUC", "test ACC", "params", "MACs", "train s",
)  # fmt: skip


def display_cells(row: LeaderboardRow) -> list[str]:
    return [
        row.benchmark,
        f"{row.dataset} ({row.size})",
        row.model,
        row.setting,
        format_epsilon(row.epsilon),
        str(row.n_seeds),
        pm(row.test_auc_mean, row.test_auc_std),
        pm(row.test_acc_mean, row.test_acc_std),
        human_count(row.params),
        human_count(row.macs),
        f"{row.train_seconds_mean:.0f}",
    ]


def display_table(rows: list[LeaderboardRow]) -> tuple[list[str], list[list[str]]]:
    """Header and cells; the ε column only when some row is a DP run."""
    keep = [
        i
        for i, name in enumerate(TABLE_HEADER)
        if name != "ε" or any(row.epsilon is not None for row in rows)
    ]
    cells = [display_cells(row) for row in rows]
    return [TABLE_HEADER[i] for i in keep], [[line[i] for i in keep] for line in cells]


def to_markdown(rows: list[LeaderboardRow]) -> str:
    header, cells = display_table(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(line) + " |" for line in cells]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[LeaderboardRow]) -> str:
    buffer = io.StringIO()
    names = list(LeaderboardRow.__dataclass_fields__)
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.as_dict())
    return buffer.getvalue()


def to_json(rows: list[LeaderboardRow]) -> str:
    safe = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.as_dict().items()}
        for r in rows
    ]
    return json.dumps(safe, indent=2) + "\n"
