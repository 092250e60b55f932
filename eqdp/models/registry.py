"""Model registry: ``@register_model("name")`` on a builder, ``create_model`` to build.

Every builder takes ``(in_channels, num_classes, *, dp=False, image_size=28, **kwargs)``;
``dp=True`` asks for the DP-SGD-compatible variant (per-sample normalisation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from eqdp.errors import EqdpError
from eqdp.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., nn.Module]
    family: str  # "equivariant" or "baseline"
    group: str | None  # symmetry group beyond translations, None for plain CNNs
    description: str
    dp_refusal: str | None = None  # why the model cannot be trained under DP, if it cannot


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(
    name: str,
    *,
    family: str = "baseline",
    group: str | None = None,
    description: str = "",
    dp_refusal: str | None = None,
) -> Callable:
    return MODELS.decorator(
        name, lambda fn: ModelSpec(name, fn, family, group, description, dp_refusal)
    )


def list_models() -> list[str]:
    return MODELS.names()


def model_spec(name: str) -> ModelSpec:
    return MODELS.get(name)


def create_model(
    name: str, in_channels: int, num_classes: int, *, dp: bool = False, **kwargs: object
) -> nn.Module:
    spec = MODELS.get(name)
    if in_channels < 1 or num_classes < 1:
        raise EqdpError(
            f"in_channels and num_classes must be >= 1, got {in_channels}, {num_classes}"
        )
    if dp and spec.dp_refusal:
        raise EqdpError(f"model {name!r} cannot be trained under DP-SGD: {spec.dp_refusal}")
    return spec.builder(in_channels, num_classes, dp=dp, **kwargs)
