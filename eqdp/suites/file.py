"""Suite files (TOML): which runs, typed and validated; any config field can be swept.

Example (``benchmarks/dp-cpu.toml``)::

    benchmark = "dp"
    models = ["eq-nasnet", "cnn"]
    seeds = [0, 1, 2]
    results_dir = "results"      # committed suites name the committed folder

    [train]                      # TrainConfig fields shared by every run
    batch_size = 256

    [sweep]                      # one run per value (per combination if several)
    epsilon = [1.0, 2.0, 4.0, 8.0, inf]

    [datasets.breastmnist]
    epochs = 5                   # per-dataset TrainConfig fields

Keys:

- ``benchmark``, ``models``, ``seeds``, ``datasets`` (required). A model is a
  name or ``{name = "eq-nasnet", kwargs = {group = "C4"}, train = {lr = 0.003}}``
  (model options, and TrainConfig fields that win over ``[train]`` and the dataset's:
  a per-model tuned learning rate).
- ``size`` (28), ``[train]``, ``[options]`` (the benchmark's options),
  ``[model_kwargs]`` (model options for every model).
- ``[datasets.NAME]``: TrainConfig fields, and ``options``/``model_kwargs``/``sweep``
  tables; a dataset's ``sweep`` replaces the values of the keys it names (e.g.
  resolutions below each dataset's own file size).
- ``[sweep]``: ``"path" = [values]`` for any config field: ``size``,
  ``train.lr``, ``options.epsilon``, ``model_kwargs.width_multiplier``; a bare
  name is a benchmark option, else a training field.
- ``from_benchmark = "standard"``: no training; one ``--from-run`` evaluation per
  finished record of that benchmark with the suite's dataset, size, model and seed.
- ``results_dir``, ``checkpoint_dir``: where records and checkpoints go
  (relative to the working directory; the CLI's options win).
- ``[executor]``: defaults for ``eqdp suite`` (workers, threads, Slurm partition,
  time limit, GPUs, CPUs, memory); the CLI's options win.

Unknown keys anywhere are errors, so a typo never silently changes a suite.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import Field

from eqdp.config.fields import config_class, field_names, option, parse_config
from eqdp.config.train import TrainConfig
from eqdp.errors import EqdpError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXECUTORS: tuple[str, ...] = ("local", "slurm", "inline")


@config_class
class ModelEntry:
    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)  # wins over [train] and the dataset's


@config_class
class ExecutorSettings:
    """How ``eqdp suite`` runs the pending configurations (the CLI's options win)."""

    executor: str = option("local", "local processes, slurm jobs, or inline (this process).")
    workers: int | None = option(
        None, "Worker processes or Slurm array tasks [default: local 1; slurm: one per run].", gt=0
    )
    threads: int | None = option(
        None, "Torch threads per worker [default: cores / workers; slurm: its CPUs].", gt=0
    )
    partition: str | None = option(None, "Slurm partition.")
    time_min: int | None = option(
        None, "Time limit per worker, minutes [default: slurm 240; local a week].", gt=0
    )
    gpus: int = option(0, "GPUs per Slurm task.", ge=0)
    cpus: int | None = option(None, "CPUs per Slurm task [default: threads or 1].", gt=0)
    mem_gb: float | None = option(None, "Memory per Slurm task, GB.", gt=0)
    array_parallelism: int | None = option(None, "Slurm array tasks running at once.", gt=0)


@config_class
class SuiteFile:
    benchmark: str
    models: list[str | ModelEntry]
    seeds: list[int]
    datasets: dict[str, dict[str, Any]]
    size: int = 28
    train: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    from_benchmark: str | None = None
    results_dir: str | None = None
    checkpoint_dir: str | None = None
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)

    @property
    def model_entries(self) -> list[ModelEntry]:
        return [m if isinstance(m, ModelEntry) else ModelEntry(m) for m in self.models]


def load_suite(path: str | Path) -> SuiteFile:
    """Read and validate a suite file; any problem is one EqdpError line naming the key."""
    try:
        values = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise EqdpError(f"cannot read suite file {path}: {error}") from error
    for key in ("benchmark", "models", "seeds", "datasets"):
        if key not in values:
            raise EqdpError(f"suite file {path} lacks the key {key!r}")
    suite = parse_config(SuiteFile, values, f"suite file {path}")
    if suite.executor.executor not in EXECUTORS:
        valid = ", ".join(EXECUTORS)
        raise EqdpError(f"suite file {path}: executor {suite.executor.executor!r}; valid: {valid}")
    if not suite.models or not suite.seeds or not suite.datasets:
        raise EqdpError(f"suite file {path}: models, seeds and datasets must not be empty")
    if len(set(suite.seeds)) != len(suite.seeds):
        raise EqdpError(f"suite file {path}: seeds {suite.seeds} repeat a seed")
    for name, values_ in suite.sweep.items():
        if not values_:
            raise EqdpError(f"suite sweep {name!r} must be a non-empty list")
    return suite


DATASET_SECTIONS = ("options", "model_kwargs", "sweep")


def dataset_overrides(name: str, values: dict[str, Any]) -> tuple[dict, dict, dict, dict]:
    """(train fields, options, model kwargs, sweep) of one ``[datasets.NAME]`` table."""
    train = {k: v for k, v in values.items() if k not in DATASET_SECTIONS}
    unknown = sorted(set(train) - set(field_names(TrainConfig)))
    if unknown:
        valid = ", ".join([*field_names(TrainConfig), *DATASET_SECTIONS])
        raise EqdpError(f"suite dataset {name}: unknown field(s) {unknown}; valid: {valid}")
    sweep = dict(values.get("sweep", {}))
    for key, sweep_values in sweep.items():
        if not isinstance(sweep_values, list) or not sweep_values:
            raise EqdpError(f"suite dataset {name}: sweep {key!r} must be a non-empty list")
    options, kwargs = dict(values.get("options", {})), dict(values.get("model_kwargs", {}))
    return train, options, kwargs, sweep
