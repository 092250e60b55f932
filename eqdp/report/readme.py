"""Keep the README's result tables generated from results/, never typed by hand.

A block looks like::

    <!-- eqdp:table standard -->
    ...generated markdown...
    <!-- /eqdp:table -->

The word after ``eqdp:table`` names a benchmark: its table is drawn from the
rows of the records it selects (``Benchmark.table`` and ``Benchmark.select``).
Filters may follow, ``path=value`` or ``path!=value`` on the record's
configuration, e.g. ``<!-- eqdp:table standard train.epochs=100 -->`` for the
full-protocol rows; ``value`` may list alternatives, ``model=resnet18,resnet50``.

``<!-- eqdp:search NAME -->`` blocks hold the Pareto front of the committed
search summary ``results/search/NAME/summary.json`` (``eqdp search show``);
``<!-- eqdp:scaling TARGET -->`` blocks the fitted exponents of the committed fit
files ``results/scaling/fits/`` (``eqdp scaling fit``), TARGET ``loss`` or ``1-auc``.

``<!-- eqdp:findings summary -->`` holds one verdict line per benchmark and
dataset (full protocol only), ``<!-- eqdp:findings report -->`` the whole
findings report (docs/findings.md), ``<!-- eqdp:status -->`` the model x
benchmark x protocol status matrix; see ``eqdp.report.findings_page``.

Records from a dirty checkout are left out of every block (``eqdp.results.provenance``).
The README and every page under ``docs/`` are regenerated and checked together
(``eqdp readme``, ``eqdp readme --check``, tests/test_repository.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from eqdp.benchmarks import BENCHMARKS
from eqdp.benchmarks.registry import records_of
from eqdp.errors import EqdpError
from eqdp.results.provenance import committed, duplicate_runs
from eqdp.results.records import load_records
from eqdp.results.rows import aggregate_rows

BLOCK = re.compile(
    r"(<!-- eqdp:table (?P<name>[\w-]+)(?P<filters>(?: [\w.]+!?=[\w.,-]+)*) -->\n)"
    r"(?P<body>.*?)(<!-- /eqdp:table -->)",
    re.S,
)
SEARCH_BLOCK = re.compile(
    r"(<!-- eqdp:search (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /eqdp:search -->)", re.S
)
SCALING_BLOCK = re.compile(
    r"(<!-- eqdp:scaling (?P<target>[\w-]+) -->\n)(?P<body>.*?)(<!-- /eqdp:scaling -->)", re.S
)
FINDINGS_BLOCK = re.compile(
    r"(<!-- eqdp:findings (?P<kind>summary|report) -->\n)(?P<body>.*?)(<!-- /eqdp:findings -->)",
    re.S,
)
STATUS_BLOCK = re.compile(r"(<!-- eqdp:status -->\n)(?P<body>.*?)(<!-- /eqdp:status -->)", re.S)
COMMITTED_RESULTS = "results"  # the README's tables come from the committed records


def render_block(name: str, records: list[dict], filters: str = "") -> str:
    benchmark = BENCHMARKS.get(name)
    if benchmark.table is None:
        raise EqdpError(f"benchmark {name!r} has no README table")
    chosen = [r for r in records_of(benchmark, records) if _matches(r, filters)]
    return benchmark.table(aggregate_rows(chosen))


def _matches(record: dict, filters: str) -> bool:
    for condition in filters.split():
        path, expected = condition.split("=", 1)
        negated = path.endswith("!")
        value: object = record.get("config", {})
        for part in path.rstrip("!").split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if (str(value) in expected.split(",")) == negated:
            return False
    return True


def render_search_block(name: str, results: str | Path) -> str:
    import json

    from eqdp.search.summary import render

    path = Path(results) / "search" / name / "summary.json"
    if not path.is_file():
        raise EqdpError(f"no search summary {path}; write it with `eqdp search show --export`")
    return render(json.loads(path.read_text()), "markdown") + "\n"


def render_scaling_block(target: str, results: str | Path) -> str:
    import json

    from eqdp.scaling.laws import fits_folder, load_fits
    from eqdp.scaling.report import render

    folder = fits_folder(results)
    fits = load_fits(folder)
    index = json.loads((folder / "index.json").read_text())
    return render(fits, index.get("not_fitted", []), target)


def updated_readme(text: str, records: list[dict], results: str | Path = "results") -> str:
    chosen = committed(records)  # a dirty checkout's records stay out of tables
    records = chosen.records
    text = _update_findings(text, records, chosen.note())

    def replace(match: re.Match) -> str:
        body = render_block(match.group("name"), records, match.group("filters"))
        return match.group(1) + body + match.group(5)

    def replace_search(match: re.Match) -> str:
        body = render_search_block(match.group("name"), results)
        return match.group(1) + body + match.group(4)

    def replace_scaling(match: re.Match) -> str:
        body = render_scaling_block(match.group("target"), results)
        return match.group(1) + body + match.group(4)

    text = BLOCK.sub(replace, text)
    return SCALING_BLOCK.sub(replace_scaling, SEARCH_BLOCK.sub(replace_search, text))


def _update_findings(text: str, records: list[dict], note: str) -> str:
    if not (FINDINGS_BLOCK.search(text) or STATUS_BLOCK.search(text)):
        return text  # rows are not built for pages without these blocks
    from eqdp.report.findings_page import render_report, render_status, render_summary

    rows = aggregate_rows(records)
    render = {"summary": lambda: render_summary(rows), "report": lambda: render_report(rows, note)}

    def replace(match: re.Match) -> str:
        return match.group(1) + render[match.group("kind")]() + match.group(4)

    text = FINDINGS_BLOCK.sub(replace, text)
    return STATUS_BLOCK.sub(lambda m: m.group(1) + render_status(rows) + m.group(3), text)


def generated_pages(readme: str | Path) -> list[Path]:
    """The README and the markdown pages under the docs/ folder beside it."""
    path = Path(readme)
    return [path, *sorted((path.parent / "docs").rglob("*.md"))]


def update_pages(
    readme: str | Path, results: str | Path | None = None, check: bool = False
) -> list[Path]:
    """Regenerate (or with ``check`` only compare) the README and its docs/ pages; returns
    the pages that were (or would be) changed. Records are read once for all of them."""
    base = results or COMMITTED_RESULTS
    records = load_records(base, on_skip=None)
    duplicates = duplicate_runs(records)
    if duplicates:
        named = "; ".join(" and ".join(r["_path"] for r in group) for group in duplicates)
        raise EqdpError(f"two records of one run (git rm the later one): {named}")
    stale = []
    for page in generated_pages(readme):
        text = page.read_text()
        new_text = updated_readme(text, records, base)
        if new_text != text:
            stale.append(page)
            if not check:
                page.write_text(new_text)
    return stale


def update_readme(
    readme: str | Path, results: str | Path | None = None, check: bool = False
) -> bool:
    """Rewrite the generated blocks; with ``check`` only report. True if already up to date."""
    path = Path(readme)
    text = path.read_text()
    base = results or COMMITTED_RESULTS
    new_text = updated_readme(text, load_records(base, on_skip=None), base)
    if not check and new_text != text:
        path.write_text(new_text)
    return new_text == text
