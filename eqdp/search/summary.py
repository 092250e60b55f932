"""A study as data: its trials, its Pareto front, a table, a figure, and the B0 rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eqdp.config.fields import as_plain_dict
from eqdp.errors import EqdpError
from eqdp.search.objective import EFFICIENTNET_B0_MACS

FORMATS = ("table", "markdown", "json")


def summarize(folder: str | Path) -> dict[str, Any]:
    """Every trial (state, cost, per-dataset val AUC, spec) and the Pareto front."""
    from eqdp.search.study import load_config, open_study

    config = load_config(folder)
    study = open_study(folder, create=False)
    trials, counts, first_of = [], {}, {}
    for trial in study.get_trials(deepcopy=False):
        state = trial.state.name.lower()
        counts[state] = counts.get(state, 0) + 1
        attrs = trial.user_attrs
        trials.append({
            "number": trial.number,
            "state": state,
            "val_auc": trial.values[0] if state == "complete" else None,
            "mmacs": attrs.get("mmacs"),
            "params": attrs.get("params"),
            "val": {f: attrs[f"val_{f}"]["auc"] for f in config.datasets if f"val_{f}" in attrs},
            "seconds": round(sum(
                attrs[f"val_{f}"]["seconds"] for f in config.datasets if f"val_{f}" in attrs
            ), 1),
            "pruned": attrs.get("pruned"),
            "duplicate_of": _first_with_spec(first_of, trial.number, state, attrs.get("spec")),
            "architecture": _architecture(attrs.get("spec")),
            "spec": attrs.get("spec"),
        })  # fmt: skip
    # A repeated proposal is not a new point: the front and the plot use the first.
    complete = [t for t in trials if t["state"] == "complete" and t["duplicate_of"] is None]
    front = pareto_front(complete)
    return {
        "study": str(folder),
        "config": as_plain_dict(config),
        "counts": counts,
        "objectives": {"val_auc": "maximise (mean over datasets)", "mmacs": "minimise"},
        "reference_mmacs": {"efficientnet-b0": EFFICIENTNET_B0_MACS / 1e6},
        "front": [t["number"] for t in front],
        "trials": trials,
    }


def _first_with_spec(first_of: dict, number: int, state: str, spec: dict | None) -> int | None:
    """The first finished trial with this architecture, if it is not this one."""
    if state != "complete" or spec is None:
        return None
    key = json.dumps({**spec, "name": ""}, sort_keys=True)
    first = first_of.setdefault(key, number)
    return None if first == number else first


def pareto_front(trials: list[dict]) -> list[dict]:
    """Trials no other trial beats on both objectives (AUC up, MACs down), by MACs."""
    front = []
    for trial in trials:
        dominated = any(
            o["val_auc"] >= trial["val_auc"] and o["mmacs"] <= trial["mmacs"]
            and (o["val_auc"] > trial["val_auc"] or o["mmacs"] < trial["mmacs"])
            for o in trials
        )  # fmt: skip
        if not dominated:
            front.append(trial)
    return sorted(front, key=lambda t: t["mmacs"])


def choose_b0(summary: dict, max_mmacs: float | None = None) -> dict:
    """The rule for B0: the best mean val AUC among finished trials at <= EfficientNet-B0's
    MACs (at the search resolution); ties go to fewer MACs."""
    cap = max_mmacs if max_mmacs is not None else summary["reference_mmacs"]["efficientnet-b0"]
    eligible = [
        t for t in summary["trials"]
        if t["state"] == "complete" and t["mmacs"] <= cap and t["duplicate_of"] is None
    ]  # fmt: skip
    if not eligible:
        raise EqdpError(f"no finished trial at <= {cap:.2f} MMACs")
    return max(eligible, key=lambda t: (t["val_auc"], -t["mmacs"]))


def _rows(summary: dict) -> list[list[str]]:
    by_number = {t["number"]: t for t in summary["trials"]}
    flags = summary["config"]["datasets"]
    rows = []
    for number in summary["front"]:
        trial = by_number[number]
        per_dataset = [f"{trial['val'].get(f, float('nan')):.3f}" for f in flags]
        rows.append([
            str(number), f"{trial['mmacs']:.2f}", f"{trial['params']:,}",
            f"{trial['val_auc']:.3f}", *per_dataset, trial["architecture"],
        ])  # fmt: skip
    return rows


def _architecture(spec: dict | None) -> str:
    if spec is None:
        return ""
    from eqdp.models.arch.spec import ArchSpec

    return ArchSpec.from_dict(spec).describe()


def render(summary: dict, format: str = "table") -> str:
    if format not in FORMATS:
        raise EqdpError(f"unknown format {format!r}; valid choices: {', '.join(FORMATS)}")
    if format == "json":
        return json.dumps(summary, indent=2)
    flags = summary["config"]["datasets"]
    headers = ["trial", "MMACs", "params", "val AUC", *flags, "architecture"]
    rows = _rows(summary)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(summary["counts"].items()))
    repeats = sum(t.get("duplicate_of") is not None for t in summary["trials"])
    counts += f" ({repeats} complete ones repeated an earlier architecture)" if repeats else ""
    title = f"{summary['study']}: {counts}; Pareto front ({len(rows)} trials):"
    if format == "markdown":
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return title + "\n\n" + "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]  # fmt: skip
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return title + "\n" + "\n".join(lines)


def write_summary(summary: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path


def plot_front(summary: dict, path: str | Path) -> Path:
    """Every finished trial (val AUC vs MACs, log x), the front as a step line,
    EfficientNet-B0's MACs as a vertical line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    complete = [
        t for t in summary["trials"] if t["state"] == "complete" and t["duplicate_of"] is None
    ]
    by_number = {t["number"]: t for t in complete}
    front = [by_number[n] for n in summary["front"]]
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    axes.scatter([t["mmacs"] for t in complete], [t["val_auc"] for t in complete],
                 s=14, alpha=0.5, label=f"finished trials ({len(complete)})")  # fmt: skip
    axes.step([t["mmacs"] for t in front], [t["val_auc"] for t in front], where="post",
              color="C3", marker="o", label="Pareto front")  # fmt: skip
    reference = summary["reference_mmacs"]["efficientnet-b0"]
    axes.axvline(reference, color="grey", linestyle="--", label="EfficientNet-B0 MACs")
    axes.set_xscale("log")
    axes.set_xlabel("MMACs per 28 px image")
    axes.set_ylabel("mean validation AUC (proxy training)")
    flags = ", ".join(summary["config"]["datasets"])
    order = summary["config"].get("min_group_order", 1)
    groups = "any group down to C1" if order == 1 else f"groups of order >= {order}"
    name = Path(summary["study"]).name
    axes.set_title(f"search {name}: {flags}; {groups}", fontsize=9)
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=130)
    plt.close(figure)
    return path
