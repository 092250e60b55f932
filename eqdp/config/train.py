"""The training recipe of a run. Defaults are the MedMNIST v2 protocol.

Adam, lr 1e-3, batch 128, 100 epochs, lr x0.1 at 50% and 75% of the epochs,
cross-entropy (BCE for multi-label), no augmentation, model selection on
validation AUC.
"""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from eqdp.config.fields import config_class, option

AUGMENTATIONS: tuple[str, ...] = ("none", "d4")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "tf32", "bf16")


@config_class
class TrainConfig:
    """Optimiser, schedule, augmentation and numerical precision of a training run."""

    epochs: int = option(100, "Training epochs (MedMNIST v2: 100).", label="{}ep", gt=0)
    batch_size: int = option(
        128,
        "Batch size; under DP-SGD the logical batch, Poisson-sampled around this size.",
        label="bs{}",
        gt=0,
    )
    lr: float = option(1e-3, "Adam learning rate.", label="lr{:g}", gt=0, allow_inf_nan=False)
    weight_decay: float = option(
        0.0, "Adam weight decay.", label="wd{:g}", ge=0, allow_inf_nan=False
    )
    lr_milestones: tuple[float, ...] = option(
        (0.5, 0.75),
        "Fractions of the epochs after which the lr is multiplied by lr_gamma.",
        label="milestones={}",
    )
    lr_gamma: float = option(
        0.1, "Factor applied to the lr at each milestone.", label="gamma{:g}", gt=0
    )
    augment: Literal["none", "d4"] = option(
        "none",
        "Training augmentation: none, or d4 (a random rot90 x flip per image).",
        label="aug={}",
    )
    precision: Literal["auto", "fp32", "tf32", "bf16"] = option(
        "auto",
        "Numerics of training and evaluation: fp32 (TF32 off, also on a GPU); tf32 "
        "(fp32 with TF32 matmuls/convolutions, CUDA only); bf16 (autocast, CUDA only); "
        "auto = tf32 on CUDA, fp32 on CPU. Records store the resolved value.",
        label="{}",
    )
    engine: Literal["auto", "eager", "graph"] = option(
        "auto",
        "How a step executes: eager; graph (the whole step in one CUDA graph, CUDA, "
        "non-DP only); auto = graph where allowed, else eager. Same batches and update "
        "rule either way; records name the engine that ran.",
        key=False,
    )
    eval_batch_size: int = option(512, "Images per forward pass when evaluating.", key=False, gt=0)

    @field_validator("lr_milestones")
    @classmethod
    def _milestones_are_fractions(cls, milestones: tuple[float, ...]) -> tuple[float, ...]:
        # A milestone at or past 1 would fall after the last epoch: the schedule would
        # silently never change the lr, and the record would claim it did.
        outside = [m for m in milestones if not 0 < m < 1]
        if outside:
            raise ValueError(
                f"each milestone is a fraction of the epochs, strictly between 0 and 1 "
                f"(e.g. 0.5,0.75); got {', '.join(f'{m:g}' for m in outside)}"
            )
        return milestones
