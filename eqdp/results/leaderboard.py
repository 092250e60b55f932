"""The leaderboard: one line per configuration (row key), mean ± std over its seeds."""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from eqdp.benchmarks.registry import BENCHMARKS
from eqdp.results.rows import Row, aggregate_rows, mean_std
from eqdp.results.stats import format_cell_interval, t_interval

FORMATS: tuple[str, ...] = ("table", "markdown", "csv", "json", "latex", "html")

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
    "to_html",
    "to_latex",
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
    # 95% Student-t interval of the mean test AUC over the seeds (eqdp.results.stats);
    # None with fewer than three seeds.
    test_auc_ci95: tuple[float, float] | None
    test_acc_mean: float
    test_acc_std: float
    params: int
    macs: int
    train_seconds_mean: float
    images_per_second_mean: float = math.nan
    epsilon: float | None = None  # target epsilon of DP runs (inf: non-private reference)
    # The benchmark's own metrics (robust ACC per attack and eps, worst-case ACC, invariance
    # error, ...): header -> (mean, std) over the seeds; see Benchmark.columns.
    metrics: dict[str, tuple[float, float]] = field(default_factory=dict)
    # The same metrics' 95% t-intervals over the seeds (None below three seeds).
    metric_intervals: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    scientific: frozenset[str] = frozenset()  # metrics shown in scientific notation

    def as_dict(self) -> dict:
        values = asdict(self)
        values.pop("scientific")
        values.pop("metric_intervals")
        values["metrics"] = {
            k: {"mean": m, "std": s, "ci95": _listed(self.metric_intervals.get(k))}
            for k, (m, s) in self.metrics.items()
        }
        values["test_auc_ci95"] = _listed(self.test_auc_ci95)
        return values


def _listed(interval: tuple[float, float] | None) -> list[float] | None:
    return list(interval) if interval else None


def filter_records(records: list[dict], **wanted: object) -> list[dict]:
    return [r for r in records if all(v is None or r.get(k) == v for k, v in wanted.items())]


def target_epsilon(privacy: dict) -> float:
    """The budget a DP record was run at; inf for the noiseless reference."""
    if privacy.get("target_epsilon") is not None:
        return float(privacy["target_epsilon"])
    return float(privacy["epsilon"]) if privacy.get("private") else math.inf


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def leaderboard_row(row: Row, columns: list | None = None) -> LeaderboardRow:
    newest = row.newest
    info = newest.get("model_info", {})
    privacy = newest.get("privacy") if row.benchmark == "dp" else None
    auc = row.stat(lambda r: _number(r["metrics"]["test"].get("auc")))
    auc_interval = t_interval(row.values(lambda r: _number(r["metrics"]["test"].get("auc"))))
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
        test_auc_ci95=auc_interval,
        test_acc_mean=acc[0],
        test_acc_std=acc[1],
        params=int(info.get("params", 0)),
        macs=int(info.get("macs", 0)),
        train_seconds_mean=seconds,
        images_per_second_mean=speed,
        epsilon=target_epsilon(privacy) if privacy is not None else None,
        metrics={name: row.stat(_safe(value)) for name, value, _ in columns or ()},
        metric_intervals={
            name: t_interval(row.values(_safe(value))) for name, value, _ in columns or ()
        },
        scientific=frozenset(name for name, _, sci in columns or () if sci),
    )


def _safe(value):
    """A column's value of a record, None where the record lacks it."""

    def read(record: dict) -> float | None:
        try:
            return _number(value(record))
        except (KeyError, TypeError):
            return None

    return read


def leaderboard_rows(rows: list[Row]) -> list[LeaderboardRow]:
    by_benchmark: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_benchmark[row.benchmark].append(row)
    columns = {}
    for name, members in by_benchmark.items():
        own = BENCHMARKS.get(name).columns
        columns[name] = own(members) if own is not None else []
    lines = [leaderboard_row(row, columns[row.benchmark]) for row in rows]
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
    "test AUC", "AUC 95% CI", "test ACC", "params", "MACs", "train s", "img/s",
)  # fmt: skip


TEXT_COLUMNS = frozenset({"benchmark", "dataset", "model", "setting", "key"})
COMPACT_DROPS = frozenset({"benchmark", "params", "MACs", "train s", "img/s"})


def display_cells(row: LeaderboardRow) -> list[str]:
    return [
        row.benchmark,
        f"{row.dataset} ({row.size})",
        row.model,
        row.setting,
        format_epsilon(row.epsilon),
        str(row.n_seeds),
        pm(row.test_auc_mean, row.test_auc_std, row.n_seeds),
        format_cell_interval(row.test_auc_ci95),
        pm(row.test_acc_mean, row.test_acc_std, row.n_seeds),
        human_count(row.params),
        human_count(row.macs),
        "–" if math.isnan(row.train_seconds_mean) else f"{row.train_seconds_mean:.0f}",
        "–" if math.isnan(row.images_per_second_mean) else f"{row.images_per_second_mean:.0f}",
    ]


def display_table(
    rows: list[LeaderboardRow], with_key: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Header and cells; the ε column only when some row is a DP run, the benchmark's own
    metrics when every row is of one benchmark (they would mean nothing across benchmarks)."""
    keep = [
        i
        for i, name in enumerate(TABLE_HEADER)
        if name != "ε" or any(row.epsilon is not None for row in rows)
    ]
    header = [TABLE_HEADER[i] for i in keep]
    cells = [[line[i] for i in keep] for line in map(display_cells, rows)]
    extra = list(dict.fromkeys(name for row in rows for name in row.metrics))
    if extra and len({row.benchmark for row in rows}) == 1:
        # Room for the benchmark's metrics: its name, size and speed are in the other formats.
        keep = [i for i, name in enumerate(header) if name not in COMPACT_DROPS]
        header = [header[i] for i in keep]
        cells = [[line[i] for i in keep] for line in cells]
        at = header.index("test ACC") + 1
        header[at:at] = extra
        for line, row in zip(cells, rows, strict=True):
            line[at:at] = [_metric_cell(row, name) for name in extra]
    if with_key:
        header.append("key")
        for line, row in zip(cells, rows, strict=True):
            line.append(row.key)
    return header, cells


def _metric_cell(row: LeaderboardRow, name: str) -> str:
    mean, std = row.metrics.get(name, (math.nan, math.nan))
    if math.isnan(mean):
        return "–"
    spread = "n/a" if row.n_seeds == 1 else None
    if name in row.scientific:
        return f"{mean:.1e} ± {spread or f'{std:.0e}'}"
    return f"{mean:.3f} ± {spread or f'{std:.3f}'}"


def to_markdown(rows: list[LeaderboardRow], with_key: bool = False) -> str:
    header, cells = display_table(rows, with_key)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(line) + " |" for line in cells]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[LeaderboardRow]) -> str:
    """One column per field (the AUC interval as two); each benchmark metric as ``NAME mean``
    and ``NAME std``."""
    buffer = io.StringIO()
    names = []
    for name in LeaderboardRow.__dataclass_fields__:
        if name == "test_auc_ci95":
            names += ["test_auc_ci95_low", "test_auc_ci95_high"]
        elif name not in ("metrics", "metric_intervals", "scientific"):
            names.append(name)
    extra = list(dict.fromkeys(name for row in rows for name in row.metrics))
    fields = names + [f"{name} {part}" for name in extra for part in ("mean", "std")]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        values = {k: v for k, v in row.as_dict().items() if k in names}
        values["test_auc_ci95_low"], values["test_auc_ci95_high"] = row.test_auc_ci95 or ("", "")
        for name, (mean, std) in row.metrics.items():
            values[f"{name} mean"], values[f"{name} std"] = mean, std
        writer.writerow(values)
    return buffer.getvalue()


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "ε": r"$\varepsilon$", "∞": r"$\infty$", "–": "--", "°": r"$^\circ$",
    "×": r"$\times$",
}  # fmt: skip


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def to_latex(rows: list[LeaderboardRow], with_key: bool = False) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), cells as in the table."""
    header, cells = display_table(rows, with_key)
    lines = [
        r"\begin{tabular}{" + "".join("l" if h in TEXT_COLUMNS else "r" for h in header) + "}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in header) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(latex_escape(c) for c in line) + r" \\" for line in cells]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_html(rows: list[LeaderboardRow], with_key: bool = False) -> str:
    """A plain ``<table>`` with a header row, cells escaped."""
    header, cells = display_table(rows, with_key)
    out = ['<table class="eqdp-leaderboard">', "  <thead>"]
    out.append("    <tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    out += ["  </thead>", "  <tbody>"]
    for line in cells:
        out.append("    <tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line) + "</tr>")
    out += ["  </tbody>", "</table>"]
    return "\n".join(out) + "\n"


def to_json(rows: list[LeaderboardRow]) -> str:
    from eqdp.results.records import json_safe

    safe = []
    for row in rows:
        values = json_safe(row.as_dict())  # nan (nothing measured) -> null
        if row.epsilon is not None and math.isinf(row.epsilon):
            values["epsilon"] = "inf"  # the non-private reference, as configurations write it
        safe.append(values)
    return json.dumps(safe, indent=2) + "\n"
