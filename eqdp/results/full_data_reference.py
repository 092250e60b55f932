"""The low-data benchmark's fraction-1.0 point, taken from standard runs of the same recipe.

A low-data run at fraction 1.0 trains what a standard run trains, so a suite need
not repeat it. A standard record whose dataset, size, model, model kwargs, seed
and training recipe match a low-data record's stands in as that model's
fraction-1.0 point, marked ``from_benchmark = "standard"`` so tables and plots can
say where it came from.
"""

from __future__ import annotations

from typing import Any

# eval_batch_size changes how the test split is batched, not what is trained.
_NOT_RECIPE = frozenset({"eval_batch_size"})


def _recipe(record: dict) -> tuple[Any, ...]:
    config = record["config"]
    train = {k: v for k, v in config["train"].items() if k not in _NOT_RECIPE}
    return (
        record["dataset"],
        record["size"],
        record["model"],
        record["seed"],
        repr(sorted(config.get("model_kwargs", {}).items())),
        repr(sorted(train.items())),
    )


def as_full_fraction(standard: dict) -> dict:
    """A view of a standard record as a low-data record at fraction 1.0."""
    n_train = standard["data"]["n_train"]
    low_data = {"fraction": 1.0, "n_train": n_train, "n_train_full": n_train}
    low_data |= {"from_benchmark": "standard", "source_run": standard["run_id"]}
    return standard | {"low_data": low_data}


def with_full_data_references(records: list[dict]) -> list[dict]:
    """The low-data records, plus matching standard runs as fraction 1.0 where none was run."""
    low_data = [r for r in records if r["benchmark"] == "low-data"]
    recipes = {_recipe(r) for r in low_data}
    have_full = {_recipe(r) for r in low_data if r["low_data"]["fraction"] == 1.0}
    references = [
        as_full_fraction(r)
        for r in records
        if r["benchmark"] == "standard" and _recipe(r) in recipes - have_full
    ]
    return low_data + references
