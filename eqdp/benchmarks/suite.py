"""Declarative suites: a TOML file lists the runs; finished ones are skipped on re-run.

Example (benchmarks/standard-cpu.toml)::

    benchmark = "standard"
    models = ["cnn", "eq-nasnet"]
    seeds = [0, 1, 2]
    size = 28

    [train]            # TrainConfig fields shared by every run
    batch_size = 128

    [datasets.breastmnist]
    epochs = 10        # per-dataset TrainConfig overrides
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

from eqdp.benchmarks.base import BENCHMARKS, RunConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
from eqdp.errors import EqdpError
from eqdp.models import MODELS
from eqdp.train import TrainConfig

TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


def load_suite(path: str | Path) -> dict:
    try:
        suite = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise EqdpError(f"cannot read suite file {path}: {error}") from error
    for key in ("benchmark", "models", "seeds", "datasets"):
        if key not in suite:
            raise EqdpError(f"suite file {path} lacks the key {key!r}")
    return suite


def _train_config(values: dict, where: str) -> TrainConfig:
    unknown = set(values) - TRAIN_FIELDS
    if unknown:
        raise EqdpError(
            f"{where}: unknown training field(s) {sorted(unknown)}; valid: "
            f"{', '.join(sorted(TRAIN_FIELDS))}"
        )
    if "lr_milestones" in values:
        values = {**values, "lr_milestones": tuple(values["lr_milestones"])}
    return TrainConfig(**values)


def suite_configs(
    suite: dict, data_dir: str | None = None, device: str = "auto"
) -> Iterator[RunConfig]:
    """Run configurations in execution order: dataset, then model, then seed."""
    benchmark = BENCHMARKS.get(suite["benchmark"]).name
    shared = suite.get("train", {})
    for dataset, overrides in suite["datasets"].items():
        train = _train_config({**shared, **overrides}, f"suite dataset {dataset}")
        for model in suite["models"]:
            MODELS.get(model)
            for seed in suite["seeds"]:
                yield RunConfig(
                    benchmark=benchmark,
                    model=model,
                    dataset=dataset,
                    size=int(suite.get("size", 28)),
                    seed=int(seed),
                    train=train,
                    device=device,
                    data_dir=data_dir,
                    options=dict(suite.get("options", {})),
                )


def _run_key(record_like: dict) -> str:
    """What makes two runs the same run; JSON-normalised so records compare to configs."""
    config = record_like["config"]
    key = {k: record_like[k] for k in ("benchmark", "dataset", "size", "model", "seed")}
    key |= {
        "train": config["train"],
        "options": config.get("options", {}),
        "model_kwargs": config.get("model_kwargs", {}),
    }
    return json.dumps(key, sort_keys=True, default=list)


def is_finished(config: RunConfig, records: list[dict]) -> bool:
    as_record = {**config.as_dict(), "config": config.as_dict()}
    wanted = _run_key(as_record)
    return any(_run_key(record) == wanted for record in records)
