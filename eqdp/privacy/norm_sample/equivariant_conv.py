"""eqdp's EquivariantConv2d, in coefficient space.

The layer's parameters are the basis coefficients theta, and its filter is
``W = B theta`` (``B``: the frozen steerable basis, one column per coefficient).
By the chain rule each example's coefficient gradient is ``B^T vec(g_W,i)`` with
``g_W,i`` its ordinary filter gradient, and DP-SGD clips the norm of *that*
vector, ``||B^T vec(g_W,i)||``, not ``||g_W,i||`` (they differ unless ``B`` is
orthogonal). Two routes, both in coefficient space:

* **instantiate** (every layer): eqdp's exact grad sampler
  (``eqdp.privacy.grad_sample.equivariant_conv``) gives the per-example coefficient
  gradients directly (never a per-example filter gradient for 1x1 layers). They hold
  ``n * |theta|`` numbers, ``|G|^2`` times fewer than per-example filter gradients.
* **ghost** (1x1 layers whose basis is one number ``c`` per pair of fields, i.e.
  trivial fields on both sides: the non-equivariant twins' pointwise layers): then
  ``theta_grad,i = c * g_W,i`` with ``g_W,i = sum_t b_it x_it^T`` over the output pixels
  t (the input sampled at the stride), so
  ``||theta_grad,i||^2 = c^2 <X_i X_i^T, B_i B_i^T>_F``, as for a plain 1x1 convolution.

The clipped sum is the layer's batch coefficient gradient for the weighted output
gradients: the filter's weight gradient ``g_W`` (one convolution weight-gradient,
grouped as the layer) projected onto the basis, ``theta_grad = B^T vec(g_W)``.
"""

from __future__ import annotations

import torch

from eqdp.models.equivariant.layers import EquivariantConv2d
from eqdp.privacy.grad_sample.equivariant_conv import compute_equivariant_conv_grad_sample
from eqdp.privacy.norm_sample.rules import (
    Gradients,
    NormSampler,
    fold_views,
    gram_product,
    register_norm_sampler,
)


def equivariant_conv_per_sample(
    layer: EquivariantConv2d, activations: torch.Tensor, backprops: torch.Tensor
) -> Gradients:
    return compute_equivariant_conv_grad_sample(layer, [activations], backprops)


def scalar_pointwise(layer: EquivariantConv2d) -> bool:
    """A 1x1 layer whose basis is one scalar: its filter is ``c * theta``."""
    return layer.kernel_size == 1 and not layer.fieldwise and layer.basis.numel() == 1


def equivariant_conv_prefers_ghost(
    layer: EquivariantConv2d, activations: torch.Tensor, backprops: torch.Tensor
) -> bool:
    positions = backprops.shape[-2] * backprops.shape[-1]
    inputs, outputs = layer.in_fields, layer.out_fields
    return positions * (inputs + outputs) < inputs * outputs


def equivariant_conv_ghost_squared_norms(
    layer: EquivariantConv2d, activations: torch.Tensor, backprops: torch.Tensor, views: int
) -> torch.Tensor:
    if layer.stride > 1:  # a strided 1x1 layer only reads the pixels it samples
        activations = activations[:, :, :: layer.stride, :: layer.stride]
    inputs = fold_views(activations.flatten(2).transpose(1, 2), views)  # (n, T, in_fields)
    outputs = fold_views(backprops.flatten(2).transpose(1, 2), views)  # (n, T, out_fields)
    squared = torch.zeros(inputs.shape[0], dtype=backprops.dtype, device=backprops.device)
    if layer.weight.requires_grad:
        scalar = layer.basis.detach().reshape(()).to(backprops.dtype)
        squared = squared + scalar.square() * gram_product(inputs, outputs)
    if layer.bias is not None and layer.bias.requires_grad:
        squared = squared + outputs.sum(1).square().sum(1)
    return squared


def equivariant_conv_weighted_sum(
    layer: EquivariantConv2d, activations: torch.Tensor, weighted_backprops: torch.Tensor
) -> Gradients:
    """``B^T vec(g_W)`` for the batch filter gradient of the weighted output gradients."""
    gradients: Gradients = {}
    k, out_fields = layer.kernel_size, layer.out_fields
    if layer.weight.requires_grad:
        filters = torch.nn.grad.conv2d_weight(
            activations,
            (layer.out_channels, layer.in_channels // layer.groups, k, k),
            weighted_backprops,
            stride=layer.stride,
            padding=layer.padding,
            groups=layer.groups,
        )
        blocks = filters.view(
            out_fields, layer.out_size, layer.weight.shape[1], layer.in_size, k, k
        )
        basis = layer.basis.detach().to(filters.dtype)
        gradients[layer.weight] = torch.einsum("oaibkl,dabkl->oid", blocks, basis)
    if layer.bias is not None and layer.bias.requires_grad:
        per_channel = weighted_backprops.sum(dim=(0, 2, 3))
        gradients[layer.bias] = per_channel.view(out_fields, layer.out_size).sum(-1)
    return gradients


EQUIVARIANT_CONV = register_norm_sampler(
    EquivariantConv2d,
    NormSampler(
        per_sample=equivariant_conv_per_sample,
        ghost_squared_norms=equivariant_conv_ghost_squared_norms,
        ghost_applies=scalar_pointwise,
        prefers_ghost=equivariant_conv_prefers_ghost,
        weighted_sum=equivariant_conv_weighted_sum,
    ),
)
