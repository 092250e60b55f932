"""nn.GroupNorm and eqdp's FieldGroupNorm: per-example gradients are instantiated.

Their per-example gradients are one scale and one shift per channel (GroupNorm)
or per field (FieldGroupNorm), ``n x C`` numbers: already smaller than the layer's
input, so instantiating them and keeping them for the clipped sum is the cheapest
route, and a ghost norm would save nothing.
"""

from __future__ import annotations

import torch
from opacus.grad_sample.group_norm import compute_group_norm_grad_sample
from torch import nn

from eqdp.models.equivariant.layers import FieldGroupNorm
from eqdp.privacy.grad_sample.field_norm import compute_field_group_norm_grad_sample
from eqdp.privacy.norm_sample.rules import Gradients, NormSampler, register_norm_sampler


def group_norm_per_sample(
    layer: nn.GroupNorm, activations: torch.Tensor, backprops: torch.Tensor
) -> Gradients:
    return compute_group_norm_grad_sample(layer, [activations.to(backprops.dtype)], backprops)


def field_group_norm_per_sample(
    layer: FieldGroupNorm, activations: torch.Tensor, backprops: torch.Tensor
) -> Gradients:
    return compute_field_group_norm_grad_sample(layer, [activations], backprops)


GROUP_NORM = register_norm_sampler(nn.GroupNorm, NormSampler(per_sample=group_norm_per_sample))
FIELD_GROUP_NORM = register_norm_sampler(
    FieldGroupNorm, NormSampler(per_sample=field_group_norm_per_sample)
)
