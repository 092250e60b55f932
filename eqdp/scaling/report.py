"""The fitted exponents as a table: both families side by side, per dataset, axis and budget."""

from __future__ import annotations

import math
from collections import defaultdict

AXIS_X_LABEL = {
    "width": "width (x = params)",
    "depth": "depth (x = params)",
    "resolution": "resolution (x = pixels)",
    "data": "data (x = images)",
}


def family_order(name: str) -> tuple[bool, str]:
    """The equivariant family first, its twin (nasnet-*) next."""
    return (name.startswith("nasnet"), name)


def _exponent(fit: dict) -> str:
    low, high = fit["ci95"]["exponent"] or (math.nan, math.nan)
    return f"{fit['exponent']:.2f} [{low:.2f}, {high:.2f}]"


def exponent_table(fits: list[dict], not_fitted: list[dict], target: str = "loss") -> str:
    """Markdown: one line per (dataset, axis, budget), one column pair per family."""
    laws = [f for f in fits if f["kind"] == "power-law" and f["target"] == target]
    if not laws:
        return "_No scaling fits yet._\n"
    families = sorted({f["family"] for f in laws}, key=family_order)
    lines: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for fit in laws:
        lines[(fit["dataset"], fit["axis"], fit["epsilon"] or 0)][fit["family"]] = fit
    missing = {
        (m["dataset"], m["series"]): m["reason"] for m in not_fitted if m["target"] == target
    }
    header = ["dataset", "axis", "training"]
    for family in families:
        header += [f"{family} exponent [95% CI]", "E", "R²"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    order = list(AXIS_X_LABEL)
    for dataset, axis, epsilon in sorted(lines, key=lambda k: (k[0], k[2], order.index(k[1]))):
        by_family = lines[(dataset, axis, epsilon)]
        any_fit = next(iter(by_family.values()))
        cells = [dataset, AXIS_X_LABEL[axis], any_fit["budget"]]
        for family in families:
            fit = by_family.get(family)
            if fit is None:
                series = f"{family}-{axis}" + (f"-eps{epsilon:g}" if epsilon else "")
                reason = missing.get((dataset, series))
                cells += ["no law" if reason else "–", "", ""]
            else:
                weak = " (weak)" if fit.get("weak") else ""
                cells += [_exponent(fit) + weak, f"{fit['E']:.3f}", f"{fit['r2']:.2f}"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def joint_table(fits: list[dict], target: str = "loss") -> str:
    joints = [f for f in fits if f["kind"] == "joint" and f["target"] == target]
    if not joints:
        return ""
    header = ["dataset", "family", "training", "a (params) [95% CI]", "b (data) [95% CI]",
              "E", "R²", "N_opt ∝ C^x", "D_opt ∝ C^x"]  # fmt: skip
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for fit in sorted(joints, key=lambda f: (f["dataset"], f["epsilon"] or 0, f["family"])):
        ci = fit["ci95"]
        optimal = fit["compute_optimal"]
        cells = [
            fit["dataset"], fit["family"], fit["budget"],
            f"{fit['a']:.2f} [{ci['a'][0]:.2f}, {ci['a'][1]:.2f}]",
            f"{fit['b']:.2f} [{ci['b'][0]:.2f}, {ci['b'][1]:.2f}]",
            f"{fit['E']:.3f}", f"{fit['r2']:.2f}" + (" (weak)" if fit.get("weak") else ""),
            f"{optimal['params']:.2f}" if optimal else "–",
            f"{optimal['data']:.2f}" if optimal else "–",
        ]  # fmt: skip
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def not_fitted_lines(not_fitted: list[dict], target: str = "loss") -> str:
    reasons = [m for m in not_fitted if m["target"] == target]
    return "".join(f"- {m['dataset']} {m['series']}: {m['reason']}\n" for m in reasons)


def render(fits: list[dict], not_fitted: list[dict], target: str = "loss") -> str:
    parts = [exponent_table(fits, not_fitted, target)]
    joint = joint_table(fits, target)
    if joint:
        parts.append("Joint law, width x data:\n\n" + joint)
    lines = not_fitted_lines(not_fitted, target)
    if lines:
        parts.append("No law:\n\n" + lines)
    return "\n".join(parts)
