"""nn.Conv2d, plain and grouped, as a linear layer over the output pixels.

With ``U_i = unfold(a_i)`` (im2col: ``T`` output pixels x ``q = C_in/groups * k_h * k_w``
patch entries per group) and ``B_i`` the output gradient (``T x o``, ``o = C_out/groups``),
group g's per-example filter gradient is ``B_ig^T U_ig``, so
``||g_W||_F^2 = sum_g <U_ig U_ig^T, B_ig B_ig^T>_F`` (ghost, cost ~ groups T^2 (q + o))
against instantiation (cost ~ groups T q o): the ghost norm wins on small maps with
many channels (ResNet stages at 7x7 and 4x4), instantiation on large maps and on
depthwise convolutions. ``g_bias = sum_t B_it``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eqdp.privacy.grad_sample.conv2d import compute_conv2d_grad_sample
from eqdp.privacy.norm_sample.rules import (
    Gradients,
    NormSampler,
    gram_product,
    register_norm_sampler,
)


def _ghost_capable(layer: nn.Conv2d) -> bool:
    return layer.padding_mode == "zeros" and not isinstance(layer.padding, str)


def _per_group_sizes(layer: nn.Conv2d) -> tuple[int, int]:
    kernel = layer.kernel_size[0] * layer.kernel_size[1]
    return layer.in_channels // layer.groups * kernel, layer.out_channels // layer.groups


def conv2d_prefers_ghost(
    layer: nn.Conv2d, activations: torch.Tensor, backprops: torch.Tensor
) -> bool:
    patch, outputs = _per_group_sizes(layer)
    positions = backprops.shape[-2] * backprops.shape[-1]
    return positions * (patch + outputs) < patch * outputs


def conv2d_ghost_squared_norms(
    layer: nn.Conv2d, activations: torch.Tensor, backprops: torch.Tensor, views: int
) -> torch.Tensor:
    rows, groups = backprops.shape[0], layer.groups
    n = rows // views
    patch, outputs = _per_group_sizes(layer)
    grads = backprops.reshape(n, views, groups, outputs, -1)  # (n, views, groups, o, T)
    squared = torch.zeros(n, dtype=backprops.dtype, device=backprops.device)
    if layer.weight.requires_grad:
        columns = F.unfold(
            activations, layer.kernel_size, dilation=layer.dilation, padding=layer.padding,
            stride=layer.stride,
        ).reshape(n, views, groups, patch, -1)  # fmt: skip

        def positions_first(tensor: torch.Tensor, width: int) -> torch.Tensor:
            # (n, views, groups, width, T) -> (n * groups, views * T, width)
            return tensor.permute(0, 2, 1, 4, 3).reshape(n * groups, -1, width)

        per_group = gram_product(positions_first(columns, patch), positions_first(grads, outputs))
        squared = squared + per_group.view(n, groups).sum(1)
    if layer.bias is not None and layer.bias.requires_grad:
        squared = squared + grads.sum(dim=(1, 4)).square().sum(dim=(1, 2))
    return squared


def conv2d_per_sample(
    layer: nn.Conv2d, activations: torch.Tensor, backprops: torch.Tensor
) -> Gradients:
    return compute_conv2d_grad_sample(layer, [activations], backprops)


def conv2d_weighted_sum(
    layer: nn.Conv2d, activations: torch.Tensor, weighted_backprops: torch.Tensor
) -> Gradients:
    """The batch gradient autograd would compute, for the weighted output gradients."""
    gradients: Gradients = {}
    if layer.weight.requires_grad:
        if _ghost_capable(layer):
            gradients[layer.weight] = torch.nn.grad.conv2d_weight(
                activations, layer.weight.shape, weighted_backprops, stride=layer.stride,
                padding=layer.padding, dilation=layer.dilation, groups=layer.groups,
            )  # fmt: skip
        else:  # other padding modes: sum the per-example gradients
            gradients[layer.weight] = conv2d_per_sample(layer, activations, weighted_backprops)[
                layer.weight
            ].sum(0)
    if layer.bias is not None and layer.bias.requires_grad:
        gradients[layer.bias] = weighted_backprops.sum(dim=(0, 2, 3))
    return gradients


CONV2D = register_norm_sampler(
    nn.Conv2d,
    NormSampler(
        per_sample=conv2d_per_sample,
        ghost_squared_norms=conv2d_ghost_squared_norms,
        ghost_applies=_ghost_capable,
        prefers_ghost=conv2d_prefers_ghost,
        weighted_sum=conv2d_weighted_sum,
    ),
)
