"""One run: a frozen, typed configuration in, one record out.

A record stores the *effective* configuration (every benchmark option resolved,
defaults filled in, precision and augmentation as they ran), and its row key
(``eqdp.results.identity``) is a hash of that configuration without the seed.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import Field, field_validator

from eqdp.config.fields import as_plain_dict, config_class, option
from eqdp.config.train import TrainConfig
from eqdp.data.catalog import FLAGS_2D, SIZES

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
MAX_SEED = 2**32 - 1  # numpy's seed range

# Fields that only say where files are or how to check them: never part of an identity.
LOCATION_FIELDS: tuple[str, ...] = ("data_dir", "results_dir", "checkpoint_dir", "verify_md5")


@config_class
class TrainedBy:
    """How the weights an evaluation-only benchmark tests were trained.

    ``benchmark`` is the training benchmark (``standard`` when the evaluation
    trained its own model), ``options`` that benchmark's effective options. It
    is part of the row key, so attacks on a DP model and on a standard model,
    or on 10- and 100-epoch models, are different rows.
    """

    benchmark: str
    options: dict[str, Any] = Field(default_factory=dict)


@config_class
class RunConfig:
    """Everything that determines one run."""

    benchmark: str = option(help="Benchmark name: see `eqdp list benchmarks`.")
    model: str = option(help="Model name: see `eqdp list models`.")
    dataset: str = option(help="MedMNIST 2D flag, e.g. breastmnist.")
    size: int = option(28, "Image size: 28, 64, 128 or 224.", label="{}px")
    seed: int = option(
        0, "Seed of weights, batch order, augmentation and noise.", ge=0, le=MAX_SEED
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    device: Literal["auto", "cpu", "cuda"] = option("auto", "auto, cpu or cuda.", key=False)
    data_dir: str | None = option(None, "Folder with MedMNIST .npz files.", key=False)
    verify_md5: bool = option(True, "Check the data file's MD5 against medmnist.INFO.", key=False)
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)  # the benchmark's own, see its Options
    trained_by: TrainedBy | None = None  # evaluation benchmarks only; resolved, not given
    # Where records are written and --from-run sources are found (None: EQDP_RESULTS_DIR,
    # then ./runs), and where checkpoints go (None: EQDP_CHECKPOINT_DIR, then next to records).
    results_dir: str | None = option(None, "Records folder.", key=False)
    checkpoint_dir: str | None = option(None, "Checkpoints folder.", key=False)

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value not in FLAGS_2D:
            raise ValueError(f"unknown dataset; valid choices: {', '.join(FLAGS_2D)}")
        return value

    @field_validator("size")
    @classmethod
    def _known_size(cls, value: int) -> int:
        if value not in SIZES:
            raise ValueError(f"unknown size; valid choices: {', '.join(map(str, SIZES))}")
        return value

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The configuration a record stores: everything but file locations."""
        values = as_plain_dict(self)
        for name in ("data_dir", "results_dir", "checkpoint_dir"):
            values.pop(name)
        if values["trained_by"] is None:
            values.pop("trained_by")
        return values
