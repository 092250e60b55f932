"""Figures from result records: each benchmark's ``PlotSpec`` says what goes on the axes.

One panel per dataset (and per attack for the adversarial benchmark), one line
per configuration (rows that differ only in the plotted option form one line)
with the mean over seeds and a ± std band; reference values (clean, or the
non-private run) are dashed. Uses matplotlib's object API on a bare ``Figure``
(Agg canvas), so nothing needs a display or touches pyplot's global state.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from eqdp.benchmarks import BENCHMARKS
from eqdp.benchmarks.registry import records_of
from eqdp.errors import EqdpError, unknown_choice
from eqdp.report.tables import model_headings, series_of
from eqdp.results.rows import aggregate_rows, mean_std

PLOT_SUFFIXES: tuple[str, ...] = (".png", ".svg", ".pdf")

# (panel, line) -> x -> values over seeds; references (x = None) are drawn as dashed lines.
Points = dict[tuple[str, str], dict[float | None, list[float]]]


def plot_kinds() -> list[str]:
    return [name for name in BENCHMARKS.names() if BENCHMARKS.get(name).plot is not None]


def collect(kind: str, records: list[dict], metric: str) -> Points:
    benchmark = BENCHMARKS.get(kind)
    spec = benchmark.plot
    assert spec is not None
    rows = aggregate_rows(records)
    if spec.axis is None:
        lines = [(row, [row]) for row in rows]
        names = model_headings(rows)
    else:
        series = series_of(rows, spec.axis)
        lines = [(s.first, list(s.rows.values())) for s in series]
        names = model_headings([s.first for s in series], [s.material for s in series])
    points: Points = defaultdict(lambda: defaultdict(list))
    for (first, members), name in zip(lines, names, strict=True):
        base = f"{first.dataset} ({first.size}px)"
        for row in members:
            for record in row.members:
                for panel, x, y in spec.points(record, metric):
                    if math.isfinite(y):
                        points[(base + panel, name)][x].append(y)
    return points


def plot_records(
    kind: str,
    records: list[dict],
    out: str | Path,
    metric: str | None = None,
    dataset: str | None = None,
) -> Path:
    """Draw the ``kind`` figure from ``records`` into ``out`` (.png, .svg or .pdf)."""
    if kind not in plot_kinds():
        raise unknown_choice("plot", kind, plot_kinds())
    benchmark = BENCHMARKS.get(kind)
    spec = benchmark.plot
    assert spec is not None
    metric = metric or spec.metrics[0]
    if metric not in spec.metrics:
        raise unknown_choice("metric", metric, spec.metrics)
    out = Path(out)
    if out.suffix.lower() not in PLOT_SUFFIXES:
        raise EqdpError(f"output {out} must end in one of {', '.join(PLOT_SUFFIXES)}")
    chosen = [
        r for r in records_of(benchmark, records) if dataset is None or r["dataset"] == dataset
    ]
    if spec.draw is not None:
        return spec.draw(chosen, out, metric, dataset)
    points = collect(kind, chosen, metric)
    if not points:
        where = f" on {dataset}" if dataset else ""
        raise EqdpError(f"no {kind} records{where} to plot; run `eqdp run {kind} ...` first")

    panels = sorted({panel for panel, _ in points})
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4.8 * columns, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    lines = sorted({line for _, line in points})
    colours = {line: f"C{index % 10}" for index, line in enumerate(lines)}
    # Models with the same curve (a constant predictor's flat line) coincide: a marker and
    # dash pattern of their own keep every one of them visible.
    markers = {line: "osD^vPX*"[index % 8] for index, line in enumerate(lines)}
    dashes = {line: ("-", "--", "-.", ":")[index % 4] for index, line in enumerate(lines)}
    for ax, panel in zip(axes, panels, strict=False):
        curves: dict[tuple, list[str]] = {}  # identical curves, to name them together
        for line in lines:
            by_x = points.get((panel, line))
            if not by_x:
                continue
            curve = tuple((x, round(mean_std(v)[0], 6)) for x, v in sorted(by_x.items(),
                          key=lambda item: (item[0] is None, item[0] or 0)))  # fmt: skip
            curves.setdefault(curve, []).append(line)
            colour = colours[line]
            xs = sorted(x for x in by_x if x is not None)
            if xs:
                stats = np.array([mean_std(by_x[x]) for x in xs])
                ax.plot(xs, stats[:, 0], marker=markers[line], ms=4, ls=dashes[line],
                        color=colour, label=line, mfc="none")  # fmt: skip
                low, high = stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1]
                ax.fill_between(xs, low, high, color=colour, alpha=0.2, lw=0)
            if None in by_x:
                # Dashed in the line's colour; labelled only when there is no line.
                label = None if xs else f"{line} (reference)"
                ax.axhline(mean_std(by_x[None])[0], color=colour, ls="--", lw=1, label=label)
        for curve, same in curves.items():
            if len(same) > 1:  # drawn on top of each other: only the last would show
                x, y = next(((x, y) for x, y in curve if x is not None), (None, curve[0][1]))
                ax.annotate(f"same curve: {', '.join(same)}", (0.02, y), xycoords=(
                    "axes fraction", "data"), xytext=(0, 4), textcoords="offset points",
                    fontsize="x-small")  # fmt: skip
        if spec.log_x:
            ax.set_xscale("log")
            ax.minorticks_off()
            # Ticks at the measured values, labelled as given (8/255, not 3.1e-2).
            measured = [by_x for (p, _), by_x in points.items() if p == panel]
            ticks = sorted({x for by_x in measured for x in by_x if x is not None})
            ax.set_xticks(ticks, [spec.tick_label(x) for x in ticks])
        if spec.fixed_ticks is not None:
            ax.set_xticks(list(spec.fixed_ticks))
        ax.set_title(panel)
        ax.set_xlabel(spec.x_label)
        ax.set_ylabel(f"test {metric.upper()}")
        ax.grid(alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    # One legend for every panel, below them: inside a panel it covered the data.
    legend = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        legend.update(zip(labels, handles, strict=True))
    figure.legend(legend.values(), legend.keys(), loc="outside lower center",
                  ncol=min(len(legend), 6), fontsize="small")  # fmt: skip
    if spec.reference is not None:
        figure.suptitle(f"dashed: {spec.reference}; band: ± std over seeds", fontsize="small")
    elif any(r.get("low_data", {}).get("from_benchmark") for r in chosen):
        figure.suptitle("mean ± std over seeds; fraction 1 = standard runs", fontsize="small")
    else:
        figure.suptitle("mean ± std over seeds", fontsize="small")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=150)
    return out
