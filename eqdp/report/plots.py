"""Figures from result records: metric vs fraction, attack eps, rotation angle or epsilon.

One panel per dataset (and per attack for the adversarial benchmark), one line
per model with the mean over seeds and a ± std band. Uses matplotlib's object
API on a bare ``Figure`` (Agg canvas), so nothing needs a display or touches
pyplot's global state.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from eqdp.errors import EqdpError, unknown_choice
from eqdp.results.full_data_reference import with_full_data_references
from eqdp.results.leaderboard import mean_std, model_label, pixel_budget_label

PLOT_KINDS: tuple[str, ...] = ("low-data", "adversarial", "geometric", "dp")
PLOT_METRICS: tuple[str, ...] = ("acc", "auc")
PLOT_SUFFIXES: tuple[str, ...] = (".png", ".svg", ".pdf")
X_LABELS = {
    "low-data": "training fraction",
    "adversarial": "attack eps ([0,1] pixels)",
    "geometric": "rotation angle (degrees)",
    "dp": "privacy budget epsilon",
}
LOG_X = {"low-data": True, "adversarial": True, "geometric": False, "dp": True}

# (panel, line) -> x -> values over seeds; references (x = None) are drawn as dashed lines.
Points = dict[tuple[str, str], dict[float | None, list[float]]]


def _value(metrics: dict, metric: str) -> float | None:
    value = metrics.get(metric)
    return None if value is None or not math.isfinite(value) else float(value)


def record_points(kind: str, record: dict, metric: str) -> list[tuple[str, float | None, float]]:
    """(panel suffix, x, y) of one record; x None marks the reference (clean, non-private)."""
    test = record["metrics"]["test"]
    if kind == "low-data":
        points = [("", record["low_data"]["fraction"], _value(test, metric))]
    elif kind == "adversarial":
        adversarial = record["adversarial"]
        points = [
            (f" {a}", None, _value(adversarial["clean"], metric)) for a in adversarial["attacks"]
        ]
        points += [(f" {r['attack']}", r["eps"], _value(r, metric)) for r in adversarial["results"]]
        points = [p for p in points if p[1] is None or p[1] > 0]  # eps 0 is the clean line
    elif kind == "geometric":
        points = [
            ("", t["angle"], _value(t, metric))
            for t in record["geometric"]["transforms"]
            if t["kind"] == "rotation"
        ]
    else:
        privacy = record.get("privacy") or {}
        epsilon = record["config"].get("options", {}).get("epsilon", privacy.get("epsilon"))
        finite = epsilon is not None and math.isfinite(epsilon)
        points = [("", epsilon if finite else None, _value(test, metric))]
    return [(panel, x, y) for panel, x, y in points if y is not None]


def collect(kind: str, records: list[dict], metric: str) -> Points:
    points: Points = defaultdict(lambda: defaultdict(list))
    for record in records:
        base = f"{record['dataset']} ({record['size']}px)"
        for panel, x, y in record_points(kind, record, metric):
            points[(base + panel, model_label(record))][x].append(y)
    return points


def tick_label(kind: str, x: float) -> str:
    return pixel_budget_label(x) if kind == "adversarial" else f"{x:g}"


def plot_records(
    kind: str,
    records: list[dict],
    out: str | Path,
    metric: str = "acc",
    dataset: str | None = None,
) -> Path:
    """Draw the ``kind`` figure from ``records`` into ``out`` (.png, .svg or .pdf)."""
    if kind not in PLOT_KINDS:
        raise unknown_choice("plot", kind, PLOT_KINDS)
    if metric not in PLOT_METRICS:
        raise unknown_choice("metric", metric, PLOT_METRICS)
    out = Path(out)
    if out.suffix.lower() not in PLOT_SUFFIXES:
        raise EqdpError(f"output {out} must end in one of {', '.join(PLOT_SUFFIXES)}")
    if kind == "low-data":
        selected = with_full_data_references(records)
    else:
        selected = [r for r in records if r["benchmark"] == kind]
    chosen = [r for r in selected if dataset is None or r["dataset"] == dataset]
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
    for ax, panel in zip(axes, panels, strict=False):
        for line in lines:
            by_x = points.get((panel, line))
            if not by_x:
                continue
            colour = colours[line]
            xs = sorted(x for x in by_x if x is not None)
            if xs:
                stats = np.array([mean_std(by_x[x]) for x in xs])
                ax.plot(xs, stats[:, 0], marker="o", ms=3, color=colour, label=line)
                low, high = stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1]
                ax.fill_between(xs, low, high, color=colour, alpha=0.2, lw=0)
            if None in by_x:
                # Dashed in the line's colour; labelled only when there is no line.
                label = None if xs else f"{line} (reference)"
                ax.axhline(mean_std(by_x[None])[0], color=colour, ls="--", lw=1, label=label)
        if LOG_X[kind]:
            ax.set_xscale("log")
            ax.minorticks_off()
            # Ticks at the measured values, labelled as given (8/255, not 3.1e-2).
            measured = [by_x for (p, _), by_x in points.items() if p == panel]
            ticks = sorted({x for by_x in measured for x in by_x if x is not None})
            ax.set_xticks(ticks, [tick_label(kind, x) for x in ticks])
        if kind == "geometric":
            ax.set_xticks(range(0, 361, 90))
        ax.set_title(panel)
        ax.set_xlabel(X_LABELS[kind])
        ax.set_ylabel(f"test {metric.upper()}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if kind in ("adversarial", "dp"):
        reference = "clean" if kind == "adversarial" else "non-private (epsilon = inf)"
        figure.suptitle(f"dashed: {reference}; band: ± std over seeds", fontsize="small")
    elif any(r.get("low_data", {}).get("from_benchmark") for r in chosen):
        figure.suptitle("mean ± std over seeds; fraction 1 = standard runs", fontsize="small")
    else:
        figure.suptitle("mean ± std over seeds", fontsize="small")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=150)
    return out
