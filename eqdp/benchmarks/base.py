"""Benchmark registry and the frozen run configuration every benchmark takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from eqdp.data.medmnist_data import check_flag, check_size
from eqdp.errors import EqdpError
from eqdp.registry import Registry
from eqdp.train import ProgressCallback, TrainConfig


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run; the record stores it verbatim."""

    benchmark: str
    model: str
    dataset: str
    size: int = 28
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    device: str = "auto"
    data_dir: str | None = None
    verify_md5: bool = True
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # benchmark-specific
    # Where --from-run looks up its source record (None: EQDP_RESULTS_DIR, then ./results).
    results_dir: str | None = None

    def __post_init__(self) -> None:
        check_flag(self.dataset)
        check_size(self.size)

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("data_dir")  # local paths say nothing about the result
        values.pop("results_dir")
        return values


def accept_no_options(config: RunConfig) -> None:
    if config.options:
        raise EqdpError(
            f"benchmark {config.benchmark!r} takes no option(s) {sorted(config.options)}"
        )


def accept_options(config: RunConfig, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(config.options) - set(allowed))
    if unknown:
        raise EqdpError(
            f"benchmark {config.benchmark!r} takes no option(s) {unknown}; "
            f"it takes: {', '.join(allowed)}"
        )


@dataclass(frozen=True)
class Benchmark:
    name: str
    # returns (record without checkpoint name, selected state dict)
    run: Callable[[RunConfig, ProgressCallback | None], tuple[dict, dict[str, torch.Tensor]]]
    description: str
    # raises EqdpError for a configuration the benchmark cannot run; called before any run
    check: Callable[[RunConfig], None] = accept_no_options


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


def register_benchmark(
    name: str, description: str = "", check: Callable[[RunConfig], None] = accept_no_options
) -> Callable:
    return BENCHMARKS.decorator(name, lambda fn: Benchmark(name, fn, description, check))


def list_benchmarks() -> list[str]:
    return BENCHMARKS.names()
