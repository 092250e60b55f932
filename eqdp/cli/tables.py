"""Tables that fit the terminal without cutting an identifier.

Rich shrinks every column of a table wider than the terminal and ends the cut cells with
"…", which turns a run id or model name into something that cannot be copied into
``--from-run`` or ``eqdp reproduce``. Here the columns that name things are never cut:
the least useful columns are left out (and named in the caption) until the rest fits,
and what still does not fit folds onto more lines instead of being cut.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

# A column's share of a rich table beyond its text: a space each side and one border.
_COLUMN_CHROME = 3
# A column that may fold counts this wide at most when deciding what fits: a long setting
# folds onto a second line rather than pushing a whole column out.
_FOLDED_WIDTH = 16


def _natural_width(header: str, cells: Sequence[str]) -> int:
    return max([len(header), *(len(cell) for cell in cells)])


def fitted_table(
    title: str | None,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    identifiers: Sequence[str],
    drop_order: Sequence[str],
    width: int,
) -> Table:
    """A table of ``rows`` at most ``width`` columns wide whose ``identifiers`` columns are
    printed whole. Columns of ``drop_order`` are left out, first to last, while the table
    is too wide, then the other non-identifier columns from the right; the caption names
    them."""
    keep = list(range(len(header)))
    widths = {i: _natural_width(header[i], [row[i] for row in rows]) for i in keep}

    def total() -> int:
        return (
            sum(
                (widths[i] if header[i] in identifiers else min(widths[i], _FOLDED_WIDTH))
                + _COLUMN_CHROME
                for i in keep
            )
            + 1
        )

    dropped = []
    # After the named order, any other column but an identifier, rightmost first.
    others = [header[i] for i in reversed(keep) if header[i] not in identifiers]
    for name in [*drop_order, *others]:
        if total() <= width:
            break
        if name in header and header.index(name) in keep and name not in dropped:
            keep.remove(header.index(name))
            dropped.append(name)
    caption = None
    if dropped:
        caption = f"not shown, the terminal is too narrow: {', '.join(dropped)}"
    table = Table(title=title, caption=caption)
    for i in keep:
        if header[i] in identifiers:
            table.add_column(header[i], no_wrap=True, min_width=widths[i])
        else:
            table.add_column(header[i], overflow="fold")
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table


def print_fitted(
    console: Console,
    title: str | None,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    identifiers: Sequence[str],
    drop_order: Sequence[str],
) -> None:
    console.print(
        fitted_table(
            title,
            header,
            rows,
            identifiers=identifiers,
            drop_order=drop_order,
            width=console.width,
        )  # fmt: skip
    )


__all__ = ["fitted_table", "print_fitted"]
