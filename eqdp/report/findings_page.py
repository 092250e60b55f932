"""Markdown of the findings (docs/findings.md), its README summary and the status matrix.

All text here is generated from ``eqdp.report.findings`` tables: verdicts,
numbers and what is missing. Nothing is typed by hand, so when records change
the page says what they say.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

from eqdp.report.findings import (
    BENCHMARK_ORDER,
    DATASETS,
    EXPECTED_OPPONENTS,
    FIVE_SEED_MODELS,
    OPPONENT_ROLES,
    PROTOCOLS,
    SUBJECT,
    Line,
    Table,
    build_tables,
    is_full,
    is_subject,
    opponent_name,
)
from eqdp.results.rows import Row
from eqdp.results.stats import LEVEL, LOSS, TOO_FEW, WIN, format_interval

DATASET_NAMES = {"breastmnist": "BreastMNIST", "retinamnist": "RetinaMNIST",
                 "pneumoniamnist": "PneumoniaMNIST"}  # fmt: skip


def _dataset(name: str, size: int) -> str:
    return f"{DATASET_NAMES.get(name, name)} ({size} px)"


def _number(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def protocol_line(table: Table) -> str:
    """Protocol, seeds and devices of a table's rows, from the records themselves."""
    trains = [row.material.get("train", {}) for row in table.rows]
    epochs = sorted({t.get("epochs") for t in trains})
    batches = sorted({t.get("batch_size") for t in trains})
    lrs = sorted({t.get("lr") for t in trains})
    seeds = sorted({m["seed"] for row in table.rows for m in row.members})
    devices = sorted({(m.get("env") or {}).get("device_name") or "unknown"
                      for row in table.rows for m in row.members})  # fmt: skip
    kind = PROTOCOLS[table.benchmark].description if table.full else "smoke budget"
    return (
        f"Protocol: {kind}. Epochs {', '.join(map(str, epochs))}; batch "
        f"{', '.join(map(str, batches))}; lr {', '.join(f'{lr:g}' for lr in lrs)}. "
        f"Seeds {', '.join(map(str, seeds))}. Device: {', '.join(devices)}."
    )


def _comparison_table(lines: list[Line]) -> str:
    with_setting = any(line.setting for line in lines)
    header = ["opponent", "metric", "paired seeds", SUBJECT, "opponent mean",
              "Δ (A − B)", "95% CI (t)", "95% CI (bootstrap)", "verdict"]  # fmt: skip
    if with_setting:
        header.insert(1, "setting")
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for line in lines:
        result = line.result
        role = OPPONENT_ROLES.get(line.opponent)
        cells = [
            f"{line.opponent} ({role})" if role else line.opponent,
            line.metric.name + ("" if line.metric.higher_is_better else " (lower is better)"),
            ", ".join(map(str, result.seeds)),
            _number(result.a_mean),
            _number(result.b_mean),
            f"{result.mean_difference:+.3f}",
            format_interval(result.interval),
            format_interval(result.bootstrap),
            f"**{result.verdict}**",
        ]
        if with_setting:
            cells.insert(1, line.setting or "–")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _table_section(table: Table) -> str:
    title = f"### {table.benchmark} · {_dataset(table.dataset, table.size)}"
    parts = [title, "", protocol_line(table), ""]
    if not table.subject_rows:
        parts.append(f"No {SUBJECT} record at this protocol: nothing to compare.\n")
    elif not table.lines:
        parts.append(f"{SUBJECT} ran, but no opponent shares its condition and seeds.\n")
    else:
        parts.append(_comparison_table(table.lines))
    missing = table.missing_opponents()
    if missing and table.subject_rows:
        parts.append(f"Not yet run at this protocol: {', '.join(missing)}.\n")
    return "\n".join(parts)


def render_report(rows: list[Row], note: str = "") -> str:
    """The findings page body: full-protocol tables, then the smoke budgets apart."""
    tables = build_tables(rows)
    full = [t for t in tables if t.full]
    smoke = [t for t in tables if not t.full and t.subject_rows]
    out = ["## Full protocol", ""]
    out += [_table_section(t) for t in full] or ["_No full-protocol records yet._\n"]
    out += [
        "## Smoke budget (not the protocol: not evidence for the question)",
        "",
        "Short CPU budgets (2-30 epochs, few DP steps) that check the pipeline runs. Their "
        "verdicts say nothing about the full protocol and are never summarised.",
        "",
    ]
    out += [_table_section(t) for t in smoke] or [f"_No smoke-budget {SUBJECT} records._\n"]
    out += [
        "## Tables and figures",
        "",
        "Every configuration's mean ± std per benchmark (the standard tables also show the "
        "95% interval of test AUC; `eqdp leaderboard --format json` gives every metric's), "
        "full protocol and smoke budgets under separate headings, with the figures "
        "`eqdp plot` draws (from every committed record, smoke budgets included): "
        + ", ".join(f"[{name}](results/{name}.md)" for name in BENCHMARK_ORDER)
        + ".",
        "",
    ]
    if note:
        out += [f"_{note}_", ""]
    return "\n".join(out)


def _tally(lines: list[Line]) -> str:
    counts = Counter(line.result.verdict for line in lines)
    parts = [f"{counts[v]} {v}" for v in (WIN, LEVEL, LOSS, TOO_FEW) if counts[v]]
    return ", ".join(parts)


def _summary_for(table: Table | None, benchmark: str, dataset: str) -> str:
    head = f"- **{benchmark}, {DATASET_NAMES.get(dataset, dataset)}**"
    if table is None or not table.subject_rows:
        return f"{head}: no full-protocol {SUBJECT} record yet."
    seeds = sorted({m["seed"] for row in table.subject_rows for m in row.members})
    devices = sorted({(m.get("env") or {}).get("device_name") or "unknown"
                      for row in table.rows for m in row.members})  # fmt: skip
    epochs = sorted({row.material.get("train", {}).get("epochs") for row in table.subject_rows})
    context = (f"{'/'.join(map(str, epochs))} epochs, {len(seeds)} seeds, "
               f"{', '.join(devices)}")  # fmt: skip
    if not table.lines:
        return f"{head} ({context}): no opponent at this protocol yet."
    by_opponent: dict[str, list[Line]] = defaultdict(list)
    for line in table.lines:
        by_opponent[line.opponent].append(line)
    verdicts = []
    for opponent, lines in by_opponent.items():
        if len(lines) == 1:
            result = lines[0].result
            verdicts.append(
                f"vs {opponent} **{result.verdict}** "
                f"(Δ {result.mean_difference:+.3f}, 95% CI {format_interval(result.interval)}, "
                f"n={result.n})"
            )
        else:
            verdicts.append(f"vs {opponent}: {_tally(lines)} (of {len(lines)} comparisons)")
    return f"{head} ({context}): " + "; ".join(verdicts) + "."


def render_summary(rows: list[Row]) -> str:
    """One line per benchmark and dataset, full protocol only: the README's answer."""
    tables = {(t.benchmark, t.dataset): t for t in build_tables(rows) if t.full and t.size == 28}
    datasets = list(DATASETS) + sorted({d for _, d in tables} - set(DATASETS))
    every = [line for table in tables.values() for line in table.lines]
    total = (
        f"All {len(every)} full-protocol comparisons of {SUBJECT}: {_tally(every)}."
        if every
        else f"No full-protocol comparison of {SUBJECT} yet."
    )
    lines = [total, ""] + [
        _summary_for(tables.get((benchmark, dataset)), benchmark, dataset)
        for benchmark in BENCHMARK_ORDER
        for dataset in datasets
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- status matrix


def _model_name(row: Row) -> str:
    return SUBJECT if is_subject(row) else opponent_name(row)


def render_status(rows: list[Row]) -> str:
    """Model x benchmark: full protocol and smoke budget, each done / partial / missing.

    done: every one of the three datasets has a configuration with the seeds the
    model needs (5 for eq-nasnet-b0, its twins and cnn, 3 otherwise); partial: some
    record; missing: none.
    """
    seeds: dict[tuple, set[int]] = defaultdict(set)
    for row in rows:
        if row.benchmark in PROTOCOLS and row.dataset in DATASETS:
            key = (_model_name(row), row.benchmark, is_full(row), row.dataset, row.key)
            seeds[key] |= {m["seed"] for m in row.members}
    models = [SUBJECT, *EXPECTED_OPPONENTS]
    models += sorted({key[0] for key in seeds} - set(models))

    def status(model: str, benchmark: str, full: bool) -> str:
        need = 5 if model in FIVE_SEED_MODELS else 3
        best = defaultdict(int)
        for (m, b, f, dataset, _), found in seeds.items():
            if (m, b, f) == (model, benchmark, full):
                best[dataset] = max(best[dataset], len(found))
        if not best:
            return "missing"
        done = sum(1 for d in DATASETS if best.get(d, 0) >= need)
        return "done" if done == len(DATASETS) else f"partial {done}/{len(DATASETS)}"

    header = ["model", *BENCHMARK_ORDER]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in models:
        cells = [f"{status(model, b, True)} · smoke {status(model, b, False)}"
                 for b in BENCHMARK_ORDER]  # fmt: skip
        out.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def page_template() -> str:
    """docs/findings.md before its first generation: a heading, the method, the block."""
    return (
        "# Findings: does equivariance help?\n\n"
        "Generated by `eqdp report findings` (and `eqdp readme`) from the committed records in "
        "`results/`; do not edit by hand. A = eq-nasnet-b0 at its defaults; each line pairs "
        "the seeds A and the opponent both ran, Δ = A − B. Verdicts: `win` / `loss` only when "
        "the 95% Student-t interval of the mean Δ excludes 0, `level` when it contains 0, "
        "`too few seeds` with two or fewer paired seeds. The bootstrap interval is shown for "
        "reference; with 3-5 seeds it is too narrow to decide on "
        "([method](guide.md#statistics)). No correction for multiple comparisons.\n\n"
        "<!-- eqdp:findings report -->\n<!-- /eqdp:findings -->\n"
    )
