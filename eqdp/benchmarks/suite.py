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

Optional keys:

- ``[options]``: benchmark options shared by every run (e.g. ``attacks = ["fgsm"]``).
- ``[sweep]``: options given as lists, one run per value (per combination if
  several), e.g. ``fraction = [0.01, 0.1, 1.0]`` for the low-data benchmark.
- ``from_benchmark = "standard"``: instead of training, evaluate the checkpoint
  of every finished record of that benchmark with the same dataset, size, model
  and seed (one ``--from-run`` run each; ``[train]`` is then the source's). A
  (dataset, model, seed) without such a record is an error.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path

from eqdp.benchmarks.base import BENCHMARKS, RunConfig
from eqdp.benchmarks.pretrained import train_config_of

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
from eqdp.errors import EqdpError, unknown_choice
from eqdp.models import MODELS
from eqdp.results.records import json_safe, load_records, results_dir
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


def _sweep(suite: dict) -> list[dict]:
    """Every combination of the ``[sweep]`` option lists (one empty dict without a sweep)."""
    sweep = suite.get("sweep", {})
    for name, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise EqdpError(f"suite sweep {name!r} must be a non-empty list, got {values!r}")
    return [
        dict(zip(sweep, combination, strict=True))
        for combination in itertools.product(*sweep.values())
    ]


def suite_configs(
    suite: dict,
    data_dir: str | None = None,
    device: str = "auto",
    results_root: str | Path | None = None,
    verify_md5: bool = True,
) -> Iterator[RunConfig]:
    """Run configurations in execution order: dataset, model, sweep values, seed."""
    benchmark = BENCHMARKS.get(suite["benchmark"]).name
    shared = suite.get("train", {})
    options = dict(suite.get("options", {}))
    swept = _sweep(suite)
    source = suite.get("from_benchmark")
    records = load_records(results_root, on_skip=None) if source else []
    for dataset, overrides in suite["datasets"].items():
        train = _train_config({**shared, **overrides}, f"suite dataset {dataset}")
        for model in suite["models"]:
            MODELS.get(model)
            for values in swept:
                for seed in suite["seeds"]:
                    config = RunConfig(
                        benchmark=benchmark,
                        model=model,
                        dataset=dataset,
                        size=int(suite.get("size", 28)),
                        seed=int(seed),
                        train=train,
                        device=device,
                        data_dir=data_dir,
                        verify_md5=verify_md5,
                        options={**options, **values},
                        results_dir=str(results_root) if results_root else None,
                    )
                    if source is None:
                        yield config
                    else:
                        yield from _from_run_configs(config, source, records, results_root)


def _from_run_configs(
    config: RunConfig, source: str, records: list[dict], results_root: str | Path | None
) -> Iterator[RunConfig]:
    """One from-run configuration per finished ``source`` record matching ``config``."""
    wanted = {"benchmark": source, "dataset": config.dataset, "size": config.size}
    wanted |= {"model": config.model, "seed": config.seed}
    matches = [r for r in records if all(r[k] == v for k, v in wanted.items())]
    if not matches:
        raise EqdpError(
            f"suite: no finished {source} record for {config.model} on {config.dataset} "
            f"({config.size}px) seed {config.seed} under {results_dir(results_root)}"
        )
    for record in sorted(matches, key=lambda r: r["created_at"]):
        yield replace(
            config,
            train=train_config_of(record),
            model_kwargs=dict(record["config"].get("model_kwargs", {})),
            options={**config.options, "from_run": record["run_id"]},
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
    # As stored: a config's epsilon = inf is null in its record.
    return json.dumps(json_safe(key), sort_keys=True, default=list)


def is_finished(config: RunConfig, records: list[dict]) -> bool:
    as_record = {**config.as_dict(), "config": config.as_dict()}
    wanted = _run_key(as_record)
    return any(_run_key(record) == wanted for record in records)


def only_those(configs: list[RunConfig], field: str, wanted: str) -> list[RunConfig]:
    """The configurations whose ``field`` is in the comma list; values the suite lacks fail."""
    present = sorted({str(getattr(config, field)) for config in configs})
    names = [name.strip() for name in wanted.split(",")]
    for name in names:
        if name not in present:
            raise unknown_choice(f"{field} in this suite", name, present)
    return [config for config in configs if str(getattr(config, field)) in names]
