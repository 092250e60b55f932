"""Per-sample gradients of EquivariantConv2d: the filter gradient, projected onto the basis.

The filter is ``W = B theta`` (a linear map of the coefficients), so the
per-sample coefficient gradient is ``B^T g_W`` with ``g_W`` the ordinary
per-sample Conv2d filter gradient. Exact, no approximation.

Two exact routes, picked by feature-map size for speed on CPU
(``benchmarks/speed/dp_overhead.py`` measures the whole step):

* large maps: the per-sample filter gradients of the whole batch are one grouped
  convolution weight-gradient (one group per example, Rochette et al. 2019), which
  skips the im2col copy that dominates there; then the projection onto the basis;
* small maps: im2col, then for each output channel of a field one batched product
  and its projection, so the full per-sample filter gradient is never materialised.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from opacus.grad_sample import register_grad_sampler
from opacus.utils.tensor_utils import unfold2d
from torch import nn

from eqdp.models.equivariant.layers import EquivariantConv2d

# At and above this many pixels per feature map, im2col costs more than the grouped
# convolution route (measured on CPU at batch 256: 28x28 and 14x14 maps take the grouped
# route; 7x7 maps, where it was 1.5-2x slower than im2col, do not).
GROUPED_ROUTE_MIN_PIXELS = 196


def per_sample_filter_gradient(
    layer: EquivariantConv2d, activations: torch.Tensor, backprops: torch.Tensor
) -> torch.Tensor:
    """``(n, out_channels, in_channels * k * k)``: what Opacus computes for a stride-1 Conv2d."""
    n, in_channels, height, width = activations.shape
    k, padding = layer.kernel_size, layer.padding
    if height * width >= GROUPED_ROUTE_MIN_PIXELS:
        out_channels = backprops.shape[1]
        filters = torch.nn.grad.conv2d_weight(
            activations.reshape(1, n * in_channels, height, width),
            (n * out_channels, in_channels, k, k),
            backprops.reshape(1, n * out_channels, height, width),
            padding=padding,
            groups=n,
        )
        return filters.view(n, out_channels, in_channels * k * k)
    columns = unfold2d(
        activations, kernel_size=(k, k), padding=(padding, padding), stride=(1, 1), dilation=(1, 1)
    )
    return torch.einsum("noq,npq->nop", backprops.flatten(2), columns)


def _basis_per_output_channel(layer: EquivariantConv2d, dtype: torch.dtype) -> torch.Tensor:
    """``(out_size, in_size * k * k, d)``: the basis split by the output channel of a field."""
    basis = layer.basis.detach().to(dtype)
    dim = basis.shape[0]
    return basis.reshape(dim, layer.out_size, -1).permute(1, 2, 0).contiguous()


def per_sample_coefficient_gradient(
    layer: EquivariantConv2d, activations: torch.Tensor, backprops: torch.Tensor
) -> torch.Tensor:
    """``(n, out_fields, in_fields, d)``: per-sample gradients of the basis coefficients."""
    n, _, height, width = activations.shape
    out_fields, in_fields, out_size = layer.out_fields, layer.in_fields, layer.out_size
    basis = _basis_per_output_channel(layer, backprops.dtype)  # (out_size, q, d)
    q, dim = basis.shape[1:]
    coefficients = backprops.new_zeros(n * out_fields, in_fields, dim)
    if height * width >= GROUPED_ROUTE_MIN_PIXELS:
        filters = per_sample_filter_gradient(layer, activations, backprops)
        blocks = filters.view(n * out_fields, out_size, in_fields, q)
        for a in range(out_size):
            coefficients.baddbmm_(blocks[:, a], basis[a].expand(n * out_fields, q, dim))
        return coefficients.view(n, out_fields, in_fields, dim)
    k, padding = layer.kernel_size, layer.padding
    columns = unfold2d(
        activations, kernel_size=(k, k), padding=(padding, padding), stride=(1, 1), dilation=(1, 1)
    ).transpose(1, 2)  # (n, pixels, in_fields * q)
    per_channel = backprops.reshape(n, out_fields, out_size, height * width)
    flat = coefficients.view(n * out_fields * in_fields, dim)
    for a in range(out_size):
        filters_a = torch.bmm(per_channel[:, :, a], columns)  # (n, out_fields, in_fields * q)
        flat.addmm_(filters_a.view(-1, q), basis[a])
    return coefficients.view(n, out_fields, in_fields, dim)


@dataclass(frozen=True)
class _OneField:
    """A fieldwise layer seen as a 1 -> 1 field layer: what its grouped conv does per field."""

    basis: torch.Tensor
    out_size: int
    kernel_size: int
    padding: int
    in_fields: int = 1
    out_fields: int = 1


def fieldwise_coefficient_gradient(
    layer: EquivariantConv2d, activations: torch.Tensor, backprops: torch.Tensor
) -> torch.Tensor:
    """``(n, fields, 1, d)``: field f of example i is example (i, f) of a 1 -> 1 field conv."""
    n, fields, height, width = activations.shape[0], layer.in_fields, *activations.shape[2:]
    view = _OneField(layer.basis, layer.out_size, layer.kernel_size, layer.padding)
    per_field = per_sample_coefficient_gradient(
        view,  # type: ignore[arg-type]
        activations.reshape(n * fields, layer.in_size, height, width),
        backprops.reshape(n * fields, layer.out_size, height, width),
    )
    return per_field.view(n, fields, 1, -1)


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
            per_sample = (
                fieldwise_coefficient_gradient if layer.fieldwise
                else per_sample_coefficient_gradient
            )  # fmt: skip
            gradients[layer.weight] = per_sample(layer, inputs, backprops)
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
