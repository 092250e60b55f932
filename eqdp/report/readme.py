"""Keep the README's result tables generated from results/, never typed by hand.

A block looks like::

    <!-- eqdp:table standard -->
    ...generated markdown...
    <!-- /eqdp:table -->

The word after ``eqdp:table`` names a benchmark: its table is drawn from the
rows of the records it selects (``Benchmark.table`` and ``Benchmark.select``).
"""

from __future__ import annotations

import re
from pathlib import Path

from eqdp.benchmarks import BENCHMARKS
from eqdp.benchmarks.registry import records_of
from eqdp.errors import EqdpError
from eqdp.results.records import load_records
from eqdp.results.rows import aggregate_rows

BLOCK = re.compile(
    r"(<!-- eqdp:table (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /eqdp:table -->)", re.S
)
COMMITTED_RESULTS = "results"  # the README's tables come from the committed records


def render_block(name: str, records: list[dict]) -> str:
    benchmark = BENCHMARKS.get(name)
    if benchmark.table is None:
        raise EqdpError(f"benchmark {name!r} has no README table")
    return benchmark.table(aggregate_rows(records_of(benchmark, records)))


def updated_readme(text: str, records: list[dict]) -> str:
    def replace(match: re.Match) -> str:
        return match.group(1) + render_block(match.group("name"), records) + match.group(4)

    return BLOCK.sub(replace, text)


def update_readme(
    readme: str | Path, results: str | Path | None = None, check: bool = False
) -> bool:
    """Rewrite the generated blocks; with ``check`` only report. True if already up to date."""
    path = Path(readme)
    text = path.read_text()
    new_text = updated_readme(text, load_records(results or COMMITTED_RESULTS, on_skip=None))
    if not check and new_text != text:
        path.write_text(new_text)
    return new_text == text
