"""The standard benchmark: full training split, MedMNIST v2 protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eqdp.benchmarks.registry import Benchmark, register_benchmark
from eqdp.config.fields import config_class

if TYPE_CHECKING:
    from eqdp.config.run import RunConfig
    from eqdp.engine import ProgressCallback
    from eqdp.results.rows import Row


@config_class
class StandardOptions:
    """The standard benchmark has no options of its own: the training recipe is all."""


def run_standard(config: RunConfig, on_progress: ProgressCallback | None = None):
    from eqdp.benchmarks.common import build_record, train_fresh

    context, result = train_fresh(config, on_progress)
    return build_record(context, result), result.best_state


def standard_table(rows: list[Row]) -> str:
    from eqdp.results.leaderboard import leaderboard_rows, to_markdown

    if not rows:
        return "_No records yet._\n"
    return to_markdown(leaderboard_rows(rows))


STANDARD = register_benchmark(
    Benchmark(
        name="standard",
        description="train on the full training split, select on val AUC, report test ACC/AUC",
        options=StandardOptions,
        run=run_standard,
        table=standard_table,
    )
)
