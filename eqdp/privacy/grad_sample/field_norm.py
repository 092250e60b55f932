"""Per-sample gradients of FieldGroupNorm: one scale and one shift per field."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from opacus.grad_sample import register_grad_sampler
from torch import nn

from eqdp.models.equivariant.layers import FieldGroupNorm


@register_grad_sampler(FieldGroupNorm)
def compute_field_group_norm_grad_sample(
    layer: FieldGroupNorm, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    inputs = activations[0].to(backprops.dtype)
    n = inputs.shape[0]
    gradients: dict[nn.Parameter, torch.Tensor] = {}
    if layer.weight.requires_grad:
        normalized = F.group_norm(inputs, layer.num_groups, eps=layer.eps)
        # einsum contracts the pixels without materialising the product.
        per_channel = torch.einsum("nchw,nchw->nc", normalized, backprops)
        gradients[layer.weight] = per_channel.reshape(n, layer.fields, layer.field_size).sum(-1)
    if layer.bias.requires_grad:
        per_channel = backprops.sum(dim=(2, 3))
        gradients[layer.bias] = per_channel.reshape(n, layer.fields, layer.field_size).sum(-1)
    return gradients
