"""Markdown tables for the robustness benchmarks, mean ± std over seeds.

One row per (dataset, model, training setting); the columns are the numbers a
reader compares across models: worst-case accuracy and invariance error for
``geometric``, robust accuracy per attack budget for ``adversarial``, test AUC
per training fraction for ``low-data``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

from eqdp.results.leaderboard import mean_std, model_label, pixel_budget_label

Row = tuple[str, str]  # (dataset label, model label)


def _label(record: dict) -> Row:
    return f"{record['dataset']} ({record['size']})", model_label(record)


def _cell(values: list[float | None], digits: int = 3, scientific: bool = False) -> str:
    mean, std = mean_std(values)  # sample std, as in the leaderboard
    if math.isnan(mean):
        return "–"
    finite = [v for v in values if v is not None and math.isfinite(v)]
    text = f"{mean:.1e} ± {std:.0e}" if scientific else f"{mean:.{digits}f} ± {std:.{digits}f}"
    return text if len(finite) >= 3 else f"{text} (n={len(finite)})"


def _table(
    records: list[dict],
    columns: list[tuple[str, Callable[[dict], float | None], bool]],
) -> str:
    """Rows from ``_label``; each column a (header, value of one record, scientific)."""
    if not records:
        return "_No records yet._\n"
    grouped: dict[Row, list[dict]] = defaultdict(list)
    for record in records:
        grouped[_label(record)].append(record)
    header = ["dataset", "model", *(name for name, _, _ in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (dataset, model), group in sorted(grouped.items()):
        cells = [_cell([value(r) for r in group], scientific=sci) for _, value, sci in columns]
        lines.append("| " + " | ".join([dataset, model, *cells]) + " |")
    return "\n".join(lines) + "\n"


def geometric_markdown(records: list[dict]) -> str:
    def field(name: str) -> Callable[[dict], float | None]:
        return lambda record: record["geometric"].get(name)

    return _table(
        records,
        [
            ("clean ACC", lambda r: r["metrics"]["test"]["acc"], False),
            ("worst ACC, D4", field("worst_case_acc_d4"), False),
            ("worst ACC, rotations", field("worst_case_acc_rotation"), False),
            ("worst ACC, all", field("worst_case_acc"), False),
            ("max invariance error, D4", field("max_invariance_error_d4"), True),
            ("mean invariance error, rotations", field("mean_invariance_error_rotation"), True),
        ],
    )


def _budgets(records: list[dict]) -> list[tuple[str, float]]:
    seen = {(r["attack"], r["eps"]) for rec in records for r in rec["adversarial"]["results"]}
    return sorted(seen)


def _robust_acc(attack: str, eps: float) -> Callable[[dict], float | None]:
    def value(record: dict) -> float | None:
        for result in record["adversarial"]["results"]:
            if result["attack"] == attack and math.isclose(result["eps"], eps):
                return result["acc"]
        return None

    return value


def merged_per_checkpoint(records: list[dict]) -> list[dict]:
    """One adversarial record per attacked checkpoint, its results the union of its runs.

    Attacks on one checkpoint may come from separate runs (FGSM and PGD in one,
    AutoAttack later); merged, the checkpoint counts once in the clean column.
    Where two runs share an (attack, eps), the newer result is kept.
    """
    runs: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        checkpoint = record.get("source_run") or record["run_id"]
        runs[(*_label(record), record["setting"], record["seed"], checkpoint)].append(record)
    merged = []
    for group in runs.values():
        group.sort(key=lambda r: (r["created_at"], r["run_id"]))
        results: dict[tuple[str, float], dict] = {}
        for record in group:
            results |= {(r["attack"], r["eps"]): r for r in record["adversarial"]["results"]}
        newest = group[-1]
        attacks = sorted({a for record in group for a in record["adversarial"]["attacks"]})
        block = newest["adversarial"] | {"attacks": attacks, "results": list(results.values())}
        merged.append(newest | {"adversarial": block})
    return merged


def adversarial_markdown(records: list[dict]) -> str:
    """Clean test ACC, then robust ACC at every (attack, eps) present in the records."""
    records = merged_per_checkpoint(records)
    columns = [("clean ACC", lambda r: r["adversarial"]["clean"]["acc"], False)]
    columns += [
        (f"{a} {pixel_budget_label(e)}", _robust_acc(a, e), False) for a, e in _budgets(records)
    ]
    return _table(records, columns)


def low_data_markdown(records: list[dict], metric: str = "auc") -> str:
    """Test AUC (or ACC) at each training fraction; see ``with_full_data_references``."""
    fractions = sorted({r["low_data"]["fraction"] for r in records})

    def at(fraction: float) -> Callable[[dict], float | None]:
        return lambda r: (
            r["metrics"]["test"][metric] if r["low_data"]["fraction"] == fraction else None
        )

    borrowed = {r["low_data"]["fraction"] for r in records if r["low_data"].get("from_benchmark")}

    def header(fraction: float) -> str:
        source = " (standard runs)" if fraction in borrowed else ""
        return f"{metric.upper()} @ {fraction:g}{source}"

    columns = [(header(f), at(f), False) for f in fractions]
    return _table(records, columns)
