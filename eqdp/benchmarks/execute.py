"""Resolve a configuration to its effective form, run it, write checkpoint and record."""

from __future__ import annotations

from pathlib import Path

from eqdp.benchmarks.registry import BENCHMARKS
from eqdp.config.fields import as_plain_dict, parse_config
from eqdp.config.run import RunConfig
from eqdp.config.train import TrainConfig
from eqdp.engine.progress import ProgressCallback
from eqdp.errors import EqdpError


def resolve_config(config: RunConfig) -> RunConfig:
    """The effective configuration: options typed and completed, data-dependent defaults
    filled in, model options completed from the builder, precision resolved, and for
    evaluations the source run's recipe. Raises EqdpError before any work for anything
    the run could not do. Idempotent.
    """
    from eqdp.data.medmnist_data import check_data_file
    from eqdp.engine.device import planned_device_type
    from eqdp.engine.precision import resolve_precision
    from eqdp.models import canonical_model, model_spec, resolve_model_kwargs

    benchmark = BENCHMARKS.get(config.benchmark)
    model, model_kwargs = canonical_model(config.model, dict(config.model_kwargs))
    config = config.replace(model=model, model_kwargs=model_kwargs)
    model_spec(config.model)  # an unknown model fails here, naming the valid ones
    check_data_file(config.dataset, config.size, config.data_dir, config.verify_md5)
    options = parse_config(benchmark.options, config.options, f"benchmark {benchmark.name}")
    device_type = planned_device_type(config.device)
    train = parse_config(TrainConfig, as_plain_dict(config.train), "train")
    train = train.__class__(
        **{**as_plain_dict(train), "precision": resolve_precision(train.precision, device_type)}
    )
    config = config.replace(
        options=as_plain_dict(options),
        model_kwargs=resolve_model_kwargs(config.model, dict(config.model_kwargs)),
        train=train,
    )
    if benchmark.resolve is not None:
        config = benchmark.resolve(config)
    return config


def output_locations(config: RunConfig) -> tuple[Path, Path]:
    """(records folder, checkpoints folder) of a run."""
    from eqdp.results.checkpoints import checkpoint_dir
    from eqdp.results.records import results_dir

    return results_dir(config.results_dir), checkpoint_dir(
        config.checkpoint_dir, config.results_dir
    )


def check_ready(config: RunConfig) -> None:
    """What a resolved run needs beyond its configuration, checked before any work:
    both output folders can be written, and a source run's checkpoint exists."""
    from eqdp.benchmarks.pretrained import source_record
    from eqdp.results.checkpoints import check_writable

    records, checkpoints = output_locations(config)
    check_writable(records, "results")
    check_writable(checkpoints, "checkpoint")
    if config.options.get("from_run") is not None:
        source_record(config, need_checkpoint=True)


def run_benchmark(
    config: RunConfig,
    results_root: str | Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[dict, Path]:
    """Run one configuration; write its checkpoint and then its record. Returns both.

    ``results_root`` is where the record goes when ``config.results_dir`` is unset;
    a source run (``options["from_run"]``) is looked up there too.
    """
    from eqdp.results.checkpoints import save_checkpoint
    from eqdp.results.records import write_record

    if config.results_dir is None and results_root is not None:
        config = config.replace(results_dir=str(results_root))
    config = resolve_config(config)
    check_ready(config)
    benchmark = BENCHMARKS.get(config.benchmark)
    record, state = benchmark.run(config, on_progress)
    _, checkpoints = output_locations(config)
    checkpoint = save_checkpoint(record["run_id"], state, checkpoints)
    record["checkpoint"] = checkpoint.name
    try:
        path = write_record(record, config.results_dir)
    except EqdpError:
        checkpoint.unlink(missing_ok=True)  # no orphan checkpoint without its record
        raise
    return record, path
