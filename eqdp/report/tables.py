"""Markdown tables built from rows (``eqdp.results.rows``), shared by every benchmark's table.

Two shapes: a metric table (one line per row, one column per metric) and a
pivot table (one line per series of rows that differ only in one option, one
column per value of that option, e.g. epsilon or training fraction). In both,
a line is one configuration: the model column names the model, plus the
fields that tell apart configurations of the same model in the same table.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from eqdp.benchmarks.registry import Column  # header, record -> value, scientific notation
from eqdp.results.identity import canonical, digest, distinguishing_labels
from eqdp.results.rows import Row, mean_std

Value = Callable[[dict], float | None]  # one number of one record


def dataset_label(row: Row) -> str:
    return f"{row.dataset} ({row.size})"


def cell(values: list[float | None], digits: int = 3, scientific: bool = False) -> str:
    """mean ± sample std over the finite values, with (n=k) when fewer than three; one
    value has no spread to report: ± n/a."""
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "–"
    finite = [v for v in values if v is not None and math.isfinite(v)]
    spread = "n/a" if len(finite) == 1 else (f"{std:.0e}" if scientific else f"{std:.{digits}f}")
    text = f"{mean:.1e} ± {spread}" if scientific else f"{mean:.{digits}f} ± {spread}"
    return text if len(finite) >= 3 else f"{text} (n={len(finite)})"


def markdown(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out) + "\n"


def model_headings(rows: list[Row], materials: list[dict] | None = None) -> list[str]:
    """The model, plus what tells apart lines of the same dataset, size and model."""
    materials = materials or [row.material for row in rows]
    groups: dict[tuple, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        groups[(row.dataset, row.size, row.model)].append(index)
    names = [row.model for row in rows]
    for indices in groups.values():
        if len(indices) > 1:
            labels = distinguishing_labels([materials[i] for i in indices])
            for i, text in zip(indices, labels, strict=True):
                names[i] = f"{rows[i].model} {text}".strip()
    return names


def metric_table(rows: list[Row], columns: list[Column]) -> str:
    """One line per row: dataset, model, then each column's mean ± std over the row's seeds."""
    if not rows:
        return "_No records yet._\n"
    names = model_headings(rows)
    lines = []
    for row, name in zip(rows, names, strict=True):
        cells = [cell(row.values(value), scientific=sci) for _, value, sci in columns]
        lines.append([dataset_label(row), name, *cells])
    lines.sort(key=lambda line: (line[0], line[1]))
    return markdown(["dataset", "model", *(header for header, _, _ in columns)], lines)


@dataclass
class Series:
    """Rows that differ only in one option (the pivot axis)."""

    material: dict  # without the axis
    rows: dict[float, Row] = field(default_factory=dict)

    @property
    def first(self) -> Row:
        return next(iter(self.rows.values()))


def series_of(rows: list[Row], axis: str) -> list[Series]:
    """Rows grouped by their material without ``options.<axis>``; rows without one are left out."""
    grouped: dict[str, Series] = {}
    for row in rows:
        x = axis_value(row, axis)
        if x is None:
            continue
        material = canonical(row.material)
        options = {k: v for k, v in material["options"].items() if k != axis}
        rest = {**material, "options": options}
        series = grouped.setdefault(digest(rest), Series(rest))
        series.rows[x] = row
    return list(grouped.values())


def pivot_table(
    rows: list[Row],
    axis: str,
    value: Value,
    header: Callable[[float], str],
) -> str:
    """One line per series, one column per axis value (ascending): mean ± std of ``value``."""
    all_series = series_of(rows, axis)
    if not all_series:
        return "_No records yet._\n"
    xs = sorted({x for series in all_series for x in series.rows})
    firsts = [series.first for series in all_series]
    names = model_headings(firsts, [series.material for series in all_series])
    lines = []
    for series, name in zip(all_series, names, strict=True):
        cells = [cell(series.rows[x].values(value)) if x in series.rows else "–" for x in xs]
        lines.append([dataset_label(series.first), name, *cells])
    lines.sort(key=lambda line: (line[0], line[1]))
    return markdown(["dataset", "model", *(header(x) for x in xs)], lines)


def axis_value(row: Row, axis: str) -> float | None:
    """The row's value of option ``axis`` as a number (inf for "inf"); None when unset."""
    value = row.material["options"].get(axis)
    if value == "inf":
        return math.inf
    return None if value is None else float(value)
