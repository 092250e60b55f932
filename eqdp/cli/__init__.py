"""The ``eqdp`` command line: a thin Typer layer over the Python API.

Each module registers its commands on the shared app; the import order is the order of
``eqdp --help``.
"""

from __future__ import annotations

# isort: off
from eqdp.cli import running  # noqa: F401  (each import registers its commands)
from eqdp.cli import suites  # noqa: F401
from eqdp.cli import campaign  # noqa: F401
from eqdp.cli import search  # noqa: F401
from eqdp.cli import scaling  # noqa: F401
from eqdp.cli import catalogue  # noqa: F401
from eqdp.cli import reports  # noqa: F401
from eqdp.cli import reproducing  # noqa: F401
from eqdp.cli import privacy  # noqa: F401
from eqdp.cli.common import app, one_line_summaries
from eqdp.runtime import apply_environment

# isort: on

one_line_summaries(app)


def main() -> None:
    apply_environment()  # EQDP_KEEP_FREED_MEMORY: see eqdp/runtime.py
    app()


__all__ = ["app", "main"]
