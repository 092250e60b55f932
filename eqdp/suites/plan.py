"""From a suite file to resolved run configurations, with the finished ones split off."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eqdp.benchmarks.registry import BENCHMARKS, Benchmark
from eqdp.config.fields import field_names, parse_config
from eqdp.config.run import RunConfig
from eqdp.config.train import TrainConfig
from eqdp.errors import EqdpError, unknown_choice
from eqdp.suites.file import SuiteFile, dataset_overrides

SWEEP_SECTIONS = ("train", "options", "model_kwargs")


def sweep_target(path: str, benchmark: Benchmark) -> tuple[str, str]:
    """(section, field) a ``[sweep]`` key sets: section "" for top-level fields."""
    if path == "size":
        return "", "size"
    section, dot, name = path.partition(".")
    if dot:
        if section not in SWEEP_SECTIONS:
            raise EqdpError(
                f"suite sweep {path!r}: {section!r} is not a section; valid: size, "
                + ", ".join(f"{s}.<field>" for s in SWEEP_SECTIONS)
            )
        fields = {"train": field_names(TrainConfig), "options": field_names(benchmark.options)}
        if section in fields and name not in fields[section]:
            raise EqdpError(
                f"suite sweep {path!r}: {section} has no field {name!r}; valid: "
                + ", ".join(f"{section}.{field}" for field in fields[section])
            )
        return section, name
    if path in field_names(benchmark.options):
        return "options", path
    if path in field_names(TrainConfig):
        return "train", path
    raise EqdpError(
        f"suite sweep {path!r} is neither a {benchmark.name} option "
        f"({', '.join(field_names(benchmark.options)) or 'none'}) nor a training field; "
        "write size, train.<field>, options.<field> or model_kwargs.<option>"
    )


def _combinations(
    sweep: dict[str, list[Any]], benchmark: Benchmark
) -> list[dict[tuple[str, str], Any]]:
    targets = [sweep_target(path, benchmark) for path in sweep]
    if len(set(targets)) != len(targets):
        raise EqdpError(f"suite sweep sets one field twice: {list(sweep)}")
    products = itertools.product(*sweep.values())
    return [dict(zip(targets, values, strict=True)) for values in products]


def expand(
    suite: SuiteFile,
    data_dir: str | None = None,
    device: str = "auto",
    results_dir: str | None = None,
    checkpoint_dir: str | None = None,
    verify_md5: bool = True,
) -> Iterator[RunConfig]:
    """Run configurations in execution order: dataset, model, sweep values, seed (unresolved)."""
    benchmark = BENCHMARKS.get(suite.benchmark)
    sources = _source_records(suite, results_dir) if suite.from_benchmark else []
    for dataset, table in suite.datasets.items():
        train_fields, dataset_options, dataset_kwargs, dataset_sweep = dataset_overrides(
            dataset, table
        )
        combinations = _combinations({**suite.sweep, **dataset_sweep}, benchmark)
        for entry in suite.model_entries:
            for combination in combinations:
                sections: dict[str, dict[str, Any]] = {
                    "train": {**suite.train, **train_fields, **entry.train},
                    "options": {**suite.options, **dataset_options},
                    "model_kwargs": {**suite.model_kwargs, **dataset_kwargs, **entry.kwargs},
                }
                size = suite.size
                for (section, name), value in combination.items():
                    if section == "":
                        size = int(value)
                    else:
                        sections[section][name] = value
                train = parse_config(TrainConfig, sections["train"], f"suite dataset {dataset}")
                for seed in suite.seeds:
                    config = parse_config(
                        RunConfig,
                        {
                            "benchmark": benchmark.name,
                            "model": entry.name,
                            "dataset": dataset,
                            "size": size,
                            "seed": seed,
                            "train": train,
                            "device": device,
                            "data_dir": data_dir,
                            "verify_md5": verify_md5,
                            "model_kwargs": sections["model_kwargs"],
                            "options": sections["options"],
                            "results_dir": results_dir,
                            "checkpoint_dir": checkpoint_dir,
                        },
                        f"suite {dataset} {entry.name}",
                    )
                    if suite.from_benchmark is None:
                        yield config
                    else:
                        yield from _from_run_configs(config, suite.from_benchmark, sources)


def _source_records(suite: SuiteFile, results_dir: str | None) -> list[dict]:
    from eqdp.results.records import load_records

    BENCHMARKS.get(suite.from_benchmark)
    return load_records(results_dir, on_skip=None)


def _from_run_configs(config: RunConfig, source: str, records: list[dict]) -> Iterator[RunConfig]:
    """One from-run configuration per finished ``source`` record matching ``config``."""
    from eqdp.results.records import results_dir

    wanted = {"benchmark": source, "dataset": config.dataset, "size": config.size}
    wanted |= {"model": config.model, "seed": config.seed}
    matches = [r for r in records if all(r[k] == v for k, v in wanted.items())]
    if not matches:
        raise EqdpError(
            f"suite: no finished {source} record for {config.model} on {config.dataset} "
            f"({config.size}px) seed {config.seed} under {results_dir(config.results_dir)}"
        )
    for record in sorted(matches, key=lambda r: r["created_at"]):
        yield config.replace(options={**config.options, "from_run": record["run_id"]})


def narrowed(suite: SuiteFile, filters: dict[str, str | None]) -> SuiteFile:
    """The suite with only the wanted models, datasets and seeds, before anything is expanded.

    A from-run suite looks up the source record of every configuration it expands, so
    narrowing first lets ``--model X`` run on X's records while other models have none.
    """
    models, datasets = suite.models, suite.datasets
    if filters.get("model"):
        present = [entry.name for entry in suite.model_entries]
        wanted = _wanted("model", filters["model"], present)
        entries = zip(suite.models, suite.model_entries, strict=True)
        models = [model for model, entry in entries if entry.name in wanted]
    if filters.get("dataset"):
        wanted = _wanted("dataset", filters["dataset"], list(suite.datasets))
        datasets = {name: table for name, table in suite.datasets.items() if name in wanted}
    seeds = suite.seeds
    if filters.get("seed"):
        wanted = _wanted("seed", filters["seed"], [str(seed) for seed in suite.seeds])
        seeds = [seed for seed in suite.seeds if str(seed) in wanted]
    return replace(suite, models=models, datasets=datasets, seeds=seeds)


def _wanted(field_name: str, wanted: str, present: list[str]) -> set[str]:
    names = {name.strip() for name in wanted.split(",")}
    for name in sorted(names):
        if name not in present:
            raise unknown_choice(f"{field_name} in this suite", name, sorted(set(present)))
    return names


@dataclass
class Plan:
    """Resolved configurations of a suite, split into finished and pending runs."""

    configs: list[RunConfig]
    finished: list[RunConfig] = field(default_factory=list)
    pending: list[RunConfig] = field(default_factory=list)

    @property
    def results_dirs(self) -> list[Path]:
        from eqdp.results.records import results_dir

        return sorted({results_dir(c.results_dir) for c in self.configs})


def absolute(path: str | None) -> str | None:
    """Workers may start elsewhere (a Slurm node): every location they get is absolute."""
    return None if path is None else os.path.abspath(os.path.expanduser(path))


def plan_suite(
    suite: SuiteFile,
    *,
    data_dir: str | None = None,
    device: str = "auto",
    results_dir: str | None = None,
    checkpoint_dir: str | None = None,
    verify_md5: bool = True,
    filters: dict[str, str | None] | None = None,
) -> Plan:
    """Narrow, expand, resolve (every configuration checked before any runs), split off finished.

    ``filters`` (``model``, ``dataset``, ``seed``: comma lists) narrow the suite itself.
    """
    from eqdp.benchmarks.precheck import precheck
    from eqdp.data.catalog import resolve_data_dir
    from eqdp.results.identity import run_key
    from eqdp.results.records import results_dir as default_results

    results = absolute(str(default_results(results_dir or suite.results_dir)))
    checkpoints = absolute(checkpoint_dir or suite.checkpoint_dir)
    suite = narrowed(suite, filters or {})
    data = resolve_data_dir(data_dir)
    configs = list(
        expand(
            suite,
            absolute(str(data)) if data else None,
            device,
            results,
            checkpoints,
            verify_md5,
        )
    )
    for config in configs:  # before the seconds that importing torch and the models take
        precheck(config, runs_here=False)  # its workers check their device; check_ready below
    if not Path(results).exists():  # nothing recorded yet: every run will need to write there
        from eqdp.results.checkpoints import check_writable

        check_writable(Path(results), "results")

    from eqdp.benchmarks.execute import check_ready, resolve_config

    resolved = [resolve_config(config) for config in configs]
    keys = [run_key(config.as_dict()) for config in resolved]
    if len(set(keys)) != len(keys):
        raise EqdpError("suite: two of its configurations are the same run (check [sweep])")
    done = finished_run_keys(Path(results))
    plan = Plan(resolved)
    for config, key in zip(resolved, keys, strict=True):
        (plan.finished if key in done else plan.pending).append(config)
    for config in plan.pending:  # only runs that will run need checkpoints and writable folders
        check_ready(config)
    if plan.pending:
        from eqdp.results.provenance import refuse_dirty_code_for_committed_results

        refuse_dirty_code_for_committed_results({c.results_dir for c in plan.pending})
    return plan


def finished_run_keys(results: Path) -> set[str]:
    from eqdp.results.identity import run_key
    from eqdp.results.records import load_records

    return {run_key(record["config"]) for record in load_records(results, on_skip=None)}


def describe(config: RunConfig) -> str:
    """One line for progress output."""
    from eqdp.models import model_spec

    options = as_plain_dict_options(config)
    defaults = model_spec(config.model).option_defaults()
    # Model options and training fields that tell two runs of one model apart in a list.
    options |= {k: v for k, v in config.model_kwargs.items() if defaults.get(k, v) != v}
    if config.train.augment != "none":
        options["augment"] = config.train.augment
    extra = " ".join(f"{k}={v}" for k, v in options.items())
    return f"{config.benchmark} {config.model} {config.dataset} seed {config.seed}" + (
        f" {extra}" if extra else ""
    )


def as_plain_dict_options(config: RunConfig) -> dict[str, Any]:
    """The options worth showing in a progress line: those that differ from the defaults."""
    from eqdp.config.fields import option_specs
    from eqdp.results.identity import canonical

    benchmark = BENCHMARKS.get(config.benchmark)
    defaults = {s.name: s.default for s in option_specs(benchmark.options) if not s.required}
    shown = {}
    for name, value in config.options.items():
        if name in defaults and canonical(defaults[name]) == canonical(value):
            continue
        if name in ("delta", "physical_batch_size"):
            continue
        shown[name] = value
    return shown


__all__ = ["Plan", "describe", "expand", "narrowed", "plan_suite", "sweep_target"]
