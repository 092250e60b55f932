"""Per-sample gradients of EquivariantConv2d: the filter gradient, projected onto the basis.

The filter is ``W = B theta`` (a linear map of the coefficients), so the
per-sample coefficient gradient is ``B^T g_W`` with ``g_W`` the ordinary
per-sample Conv2d filter gradient. Exact, no approximation.
"""

from __future__ import annotations

import torch
from opacus.grad_sample import register_grad_sampler
from opacus.utils.tensor_utils import unfold2d
from torch import nn

from eqdp.models.equivariant.layers import EquivariantConv2d


def per_sample_filter_gradient(
    layer: EquivariantConv2d, activations: torch.Tensor, backprops: torch.Tensor
) -> torch.Tensor:
    """``(n, out_channels, in_channels * k * k)``: what Opacus computes for a stride-1 Conv2d."""
    k, padding = layer.kernel_size, layer.padding
    columns = unfold2d(
        activations, kernel_size=(k, k), padding=(padding, padding), stride=(1, 1), dilation=(1, 1)
    )
    return torch.einsum("noq,npq->nop", backprops.flatten(2), columns)


@register_grad_sampler(EquivariantConv2d)
def compute_equivariant_conv_grad_sample(
    layer: EquivariantConv2d, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    inputs = activations[0].to(backprops.dtype)
    n = inputs.shape[0]
    gradients: dict[nn.Parameter, torch.Tensor] = {}
    if layer.weight.requires_grad:
        if n == 0:
            gradients[layer.weight] = layer.weight.new_zeros((0, *layer.weight.shape))
        else:
            filter_gradient = per_sample_filter_gradient(layer, inputs, backprops)
            k = layer.kernel_size
            blocks = filter_gradient.reshape(
                n, layer.out_fields, layer.out_size, layer.in_fields, layer.in_size, k, k
            )
            basis = layer.basis.to(backprops.dtype)
            gradients[layer.weight] = torch.einsum("noaibkl,dabkl->noid", blocks, basis)
    if layer.bias is not None and layer.bias.requires_grad:
        per_channel = backprops.sum(dim=(2, 3))
        gradients[layer.bias] = per_channel.reshape(n, layer.out_fields, layer.out_size).sum(-1)
    return gradients


def skip_batch_filter_gradients(model: nn.Module, enabled: bool = True) -> None:
    """Let every EquivariantConv2d of ``model`` skip autograd's batch filter gradient.

    Only valid while Opacus computes per-sample gradients for the model: the
    coefficients' ``.grad`` from autograd becomes 0 and the DP optimizer replaces
    it with the clipped, noised sum of per-sample gradients.
    """
    for module in model.modules():
        if isinstance(module, EquivariantConv2d):
            module.per_sample_gradients_only = enabled
