"""``eqdp plot scaling``: log-log sweeps with fitted laws and bands, and the compute frontier.

One row per dataset and budget, one column per axis plus the frontier. Dots are
runs, markers with bars the mean ± std over seeds, the line the fitted law of
``eqdp scaling fit`` (refitted here from the same records, same method and
bootstrap seed) and the band its pointwise 95% bootstrap interval (100 resamples).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from eqdp.errors import EqdpError
from eqdp.scaling.fit import DegenerateSweep
from eqdp.scaling.laws import AXIS_ORDER, TARGETS, fit_series, frontier, scaling_series
from eqdp.scaling.report import AXIS_X_LABEL, family_order

BAND_RESAMPLES = 100
PANELS_PER_ROW = 3
Y_LABELS = {"loss": "validation loss", "1-auc": "validation 1 - AUC"}


def draw_scaling(
    records: list[dict], out: Path, metric: str = "loss", dataset: str | None = None,
    resamples: int = BAND_RESAMPLES,
) -> Path:  # fmt: skip
    from threadpoolctl import threadpool_limits

    if metric not in TARGETS:
        raise EqdpError(f"scaling plots show {', '.join(TARGETS)}, not {metric!r}")
    all_series = scaling_series(records)
    if not all_series:
        where = f" on {dataset}" if dataset else ""
        raise EqdpError(f"no scaling records{where} to plot; run a benchmarks/scaling suite first")
    rows = sorted({(s.dataset, s.epsilon or 0.0) for s in all_series})
    axes_present = [a for a in AXIS_ORDER if any(s.axis == a for s in all_series)]
    columns = [*axes_present, "compute"]
    families = sorted({s.model for s in all_series}, key=family_order)
    colours = {family: f"C{i}" for i, family in enumerate(families)}
    # Only the panels with something in them (an axis a budget did not sweep is left out),
    # three to a row: ten panels side by side were unreadable at a README's width.
    panels = []
    for name, epsilon in rows:
        row_series = [s for s in all_series if (s.dataset, s.epsilon or 0.0) == (name, epsilon)]
        for axis in columns:
            if axis == "compute" or any(s.axis == axis for s in row_series):
                panels.append((name, epsilon, axis, row_series))
    width = min(PANELS_PER_ROW, len(panels))
    height = math.ceil(len(panels) / width)
    figure = Figure(figsize=(3.4 * width, 2.9 * height + 0.4), layout="constrained")
    grid = figure.subplots(height, width, squeeze=False).flatten()
    with threadpool_limits(1):
        for ax, (name, epsilon, axis, row_series) in zip(grid, panels, strict=False):
            budget = "non-private" if not epsilon else f"DP ε={epsilon:g}"
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(alpha=0.3, which="both")
            # Sub-decade axes get minor labels; at 2 and 5 only, so they never overlap.
            ax.xaxis.set_minor_formatter(FuncFormatter(_two_five))
            ax.set_title(f"{name} · {budget} · {axis}", fontsize="small")
            ax.set_xlabel("training FLOPs" if axis == "compute" else AXIS_X_LABEL[axis])
            ax.set_ylabel(Y_LABELS[metric])
            for family in families:
                chosen = [s for s in row_series if s.model == family]
                if axis == "compute":
                    _frontier_panel(ax, chosen, metric, colours[family], family)
                else:
                    for series in [s for s in chosen if s.axis == axis]:
                        _sweep_panel(ax, series, metric, colours[family], resamples)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="x-small")
    for ax in grid[len(panels) :]:
        ax.set_visible(False)
    families_legend = [Line2D([], [], color=colours[f], lw=1.5, label=f) for f in families]
    figure.legend(handles=families_legend, loc="outside lower center", ncol=len(families),
                  fontsize="small")  # fmt: skip
    figure.suptitle(
        "dots: runs; markers: mean ± std over seeds; line and band: fitted law, 95% bootstrap",
        fontsize="small",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    return out


def _two_five(value: float, _position: int) -> str:
    if value <= 0:
        return ""
    exponent = math.floor(math.log10(value))
    mantissa = round(value / 10**exponent, 6)
    if mantissa not in (2.0, 5.0):
        return ""
    return f"{value:g}" if exponent < 4 else f"{mantissa:g}e{exponent}"


def _sweep_panel(ax, series, metric: str, colour: str, resamples: int) -> None:
    from eqdp.scaling.laws import observations

    x, y, _ = observations(series.records, metric, "val")
    if len(x) == 0:
        return
    ax.scatter(x, y, s=6, color=colour, alpha=0.35, lw=0)
    xs = np.unique(x)
    means = np.array([y[x == v].mean() for v in xs])
    stds = np.array([y[x == v].std(ddof=1) if (x == v).sum() > 1 else 0.0 for v in xs])
    try:
        # A smaller bootstrap than the fit files': the law is the same, the band close.
        fit = fit_series(series, metric, "val", resamples=resamples)
    except DegenerateSweep:
        ax.errorbar(xs, means, stds, color=colour, marker="o", ms=3, lw=0.8, ls=":",
                    elinewidth=0.8, label="no law")  # fmt: skip
        return
    ax.errorbar(xs, means, stds, color=colour, marker="o", ms=3, ls="none", elinewidth=0.8)
    band = fit["band"]
    ax.fill_between(band["x"], band["low"], band["high"], color=colour, alpha=0.15, lw=0)
    grid = np.asarray(band["x"])
    curve = fit["E"] + fit["A"] * grid ** -fit["exponent"]
    ax.plot(grid, curve, color=colour, lw=1.2, label=_law_label(fit))


def _law_label(fit: dict) -> str:
    """The fitted exponent, and how weak the fit is; a negative R² (the law fits worse than
    a constant) reads as that, not as a number that looks like a correlation."""
    label = f"exponent {fit['exponent']:.2f}"
    if not fit["weak"]:
        return label
    if fit["r2"] < 0:
        return f"{label}, no better than a constant"
    return f"{label}, weak (R² {fit['r2']:.2f})"


def _frontier_panel(ax, chosen, metric: str, colour: str, family: str) -> None:
    if not chosen:
        return
    result = frontier(chosen, metric, "val")
    configs = result["configurations"]
    ax.scatter([c["train_flops"] for c in configs], [c["y"] for c in configs], s=8,
               color=colour, alpha=0.4, lw=0)  # fmt: skip
    front = result["frontier"]
    label = "frontier"
    if result["fit"]:
        label += f": exponent {result['fit']['exponent']:.2f}"
    ax.plot([c["train_flops"] for c in front], [c["y"] for c in front], color=colour,
            marker="o", ms=3, lw=1.2, label=label)  # fmt: skip
