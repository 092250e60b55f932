"""The leaderboard: one line per configuration (row key), mean ± std over its seeds."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass

from eqdp.results.rows import Row, aggregate_rows, mean_std

FORMATS: tuple[str, ...] = ("table", "markdown", "csv", "json")

__all__ = [
    "FORMATS",
    "LeaderboardRow",
    "aggregate",
    "display_table",
    "filter_records",
    "format_epsilon",
    "human_count",
    "leaderboard_rows",
    "mean_std",
    "pm",
    "target_epsilon",
    "to_csv",
    "to_json",
    "to_markdown",
]


@dataclass(frozen=True)
class LeaderboardRow:
    benchmark: str
    dataset: str
    size: int
    model: str
    setting: str  # the configuration's difference from the benchmark's defaults
    key: str  # row key: a hash of the whole configuration but the seed
    n_seeds: int
    test_auc_mean: float
    test_auc_std: float
    test_acc_mean: float
    test_acc_std: float
    params: int
    macs: int
    train_seconds_mean: float
    images_per_second_mean: float = math.nan
    epsilon: float | None = None  # target epsilon of DP runs (inf: non-private reference)

    def as_dict(self) -> dict:
        return asdict(self)


def filter_records(records: list[dict], **wanted: object) -> list[dict]:
    return [r for r in records if all(v is None or r.get(k) == v for k, v in wanted.items())]


def target_epsilon(privacy: dict) -> float:
    """The budget a DP record was run at; inf for the noiseless reference."""
    if privacy.get("target_epsilon") is not None:
        return float(privacy["target_epsilon"])
    return float(privacy["epsilon"]) if privacy.get("private") else math.inf


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def leaderboard_row(row: Row) -> LeaderboardRow:
    newest = row.newest
    info = newest.get("model_info", {})
    privacy = newest.get("privacy") if row.benchmark == "dp" else None
    auc = row.stat(lambda r: _number(r["metrics"]["test"].get("auc")))
    acc = row.stat(lambda r: _number(r["metrics"]["test"].get("acc")))
    seconds = row.stat(lambda r: _number(r.get("timing", {}).get("train_seconds")))[0]
    speed = row.stat(lambda r: _number(r.get("timing", {}).get("images_per_second")))[0]
    return LeaderboardRow(
        benchmark=row.benchmark,
        dataset=row.dataset,
        size=row.size,
        model=row.model,
        setting=row.label,
        key=row.key,
        n_seeds=row.n_seeds,
        test_auc_mean=auc[0],
        test_auc_std=auc[1],
        test_acc_mean=acc[0],
        test_acc_std=acc[1],
        params=int(info.get("params", 0)),
        macs=int(info.get("macs", 0)),
        train_seconds_mean=seconds,
        images_per_second_mean=speed,
        epsilon=target_epsilon(privacy) if privacy is not None else None,
    )


def leaderboard_rows(rows: list[Row]) -> list[LeaderboardRow]:
    lines = [leaderboard_row(row) for row in rows]
    lines.sort(
        key=lambda r: (
            r.benchmark,
            r.dataset,
            r.size,
            r.epsilon or 0.0,
            -_sortable(r.test_auc_mean),
        )
    )
    return lines


def aggregate(records: list[dict]) -> list[LeaderboardRow]:
    """One leaderboard line per configuration: mean ± std over its seeds."""
    return leaderboard_rows(aggregate_rows(records))


def format_epsilon(value: float | None) -> str:
    if value is None:
        return "–"
    return "∞" if math.isinf(value) else f"{value:g}"


def _sortable(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def pm(mean: float, std: float, n: int | None = None) -> str:
    """``mean ± std``; a single value shows ``± n/a`` (no spread to report)."""
    if math.isnan(mean):
        return "–"
    if n == 1:
        return f"{mean:.3f} ± n/a"
    return f"{mean:.3f} ± {std:.3f}"


def human_count(value: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f}{unit}"
    return str(value)


TABLE_HEADER = (
    "benchmark", "dataset", "model", "setting", "ε", "seeds",
    "test AUC", "test ACC", "params", "MACs", "train s", "img/s",
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
        "–" if math.isnan(row.train_seconds_mean) else f"{row.train_seconds_mean:.0f}",
        "–" if math.isnan(row.images_per_second_mean) else f"{row.images_per_second_mean:.0f}",
    ]


def display_table(
    rows: list[LeaderboardRow], with_key: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Header and cells; the ε column only when some row is a DP run."""
    keep = [
        i
        for i, name in enumerate(TABLE_HEADER)
        if name != "ε" or any(row.epsilon is not None for row in rows)
    ]
    header = [TABLE_HEADER[i] for i in keep]
    cells = [[line[i] for i in keep] for line in map(display_cells, rows)]
    if with_key:
        header.append("key")
        for line, row in zip(cells, rows, strict=True):
            line.append(row.key)
    return header, cells


def to_markdown(rows: list[LeaderboardRow], with_key: bool = False) -> str:
    header, cells = display_table(rows, with_key)
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
