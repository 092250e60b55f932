"""Keep the README's result tables generated from results/, never typed by hand.

A block looks like::

    <!-- eqdp:table standard -->
    ...generated markdown...
    <!-- /eqdp:table -->

The word after ``eqdp:table`` names a benchmark; its records are aggregated
and rendered by the registered renderer (the leaderboard table by default).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from eqdp.results.full_data_reference import with_full_data_references
from eqdp.results.leaderboard import (
    aggregate,
    filter_records,
    privacy_utility_markdown,
    to_markdown,
)
from eqdp.results.records import load_records
from eqdp.results.robustness_tables import (
    adversarial_markdown,
    geometric_markdown,
    low_data_markdown,
)

BLOCK = re.compile(
    r"(<!-- eqdp:table (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /eqdp:table -->)", re.S
)

Renderer = Callable[[list[dict]], str]
RENDERERS: dict[str, Renderer] = {
    "dp": privacy_utility_markdown,
    "geometric": geometric_markdown,
    "adversarial": adversarial_markdown,
    "low-data": low_data_markdown,
}


def default_renderer(records: list[dict]) -> str:
    if not records:
        return "_No records yet._\n"
    return to_markdown(aggregate(records))


# Blocks that draw on more than their own benchmark's records.
SELECTORS: dict[str, Callable[[list[dict]], list[dict]]] = {
    "low-data": with_full_data_references,
}


def render_block(name: str, records: list[dict]) -> str:
    select = SELECTORS.get(name, lambda all_records: filter_records(all_records, benchmark=name))
    chosen = select(records)
    return RENDERERS.get(name, default_renderer)(chosen)


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
    new_text = updated_readme(text, load_records(results, on_skip=None))
    if not check and new_text != text:
        path.write_text(new_text)
    return new_text == text
