"""Model facts for records and ``eqdp info``: parameters, MACs, symmetry group."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from eqdp.models.registry import create_model, model_spec


@dataclass(frozen=True)
class ModelInfo:
    name: str
    params: int
    macs: int
    group: str | None
    input_shape: tuple[int, int, int]

    def as_dict(self) -> dict:
        return asdict(self)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters only: frozen steerable bases are constants, not weights."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates of one forward pass per image (FLOPs / 2).

    Counted as the cost of a batch of two minus a batch of one, so work done once
    per batch whatever its size (expanding an equivariant layer's filter from its
    basis coefficients, which inference does once and caches) is not charged to
    every image.
    """
    was_training = model.training
    model.eval()
    parameter = next(model.parameters())
    # torch's counter sees matrix products and convolutions only; a module whose work is
    # elementwise (E4's per-pixel kernels) reports it through ``elementwise_macs(output)``.
    elementwise: list[int] = []
    hooks = [
        module.register_forward_hook(
            lambda module, inputs, output: elementwise.append(module.elementwise_macs(output))
        )
        for module in model.modules()
        if hasattr(module, "elementwise_macs")
    ]
    totals = []
    try:
        for batch in (1, 2):
            sample = torch.zeros(
                batch, *input_shape, dtype=parameter.dtype, device=parameter.device
            )
            counter = FlopCounterMode(display=False)
            elementwise.clear()
            with counter, torch.no_grad():
                model(sample)
            totals.append(counter.get_total_flops() // 2 + sum(elementwise))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return int(totals[1] - totals[0])


def describe_model(
    name: str,
    in_channels: int = 1,
    num_classes: int = 2,
    image_size: int = 28,
    model: nn.Module | None = None,
) -> ModelInfo:
    spec = model_spec(name)
    if model is None:
        model = create_model(name, in_channels, num_classes, image_size=image_size)
    input_shape = (in_channels, image_size, image_size)
    group = getattr(model, "group", spec.group)
    return ModelInfo(
        name, count_parameters(model), count_macs(model, input_shape), group, input_shape
    )
