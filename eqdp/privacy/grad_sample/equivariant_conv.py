"""Per-sample gradients of EquivariantConv2d: the filter gradient, projected onto the basis.

The filter is ``W = B theta`` (a linear map of the coefficients), so the
per-sample coefficient gradient is ``B^T g_W`` with ``g_W`` the ordinary
per-sample Conv2d filter gradient. Exact, no approximation.

Three exact routes, picked by layer kind for speed on CPU
(``benchmarks/speed/dp_overhead.py`` measures the whole step; together they cut
eq-nasnet-b0's per-sample gradient time at batch 256 from about 230 ms to 105 ms
per step, against about 65 ms for the non-private batch gradients):

* fieldwise layers: every (example, field) pair's filter gradient is one group of a
  grouped convolution weight-gradient (Rochette et al. 2019), in the basis' own
  layout, so the projection is one matrix product;
* 1x1 layers: the basis is applied to the inputs (or to the output gradients,
  whichever side has fewer fields) and one batched product over (channel of a
  field, pixel) gives the coefficients, never forming a filter gradient;
* other layers: the grouped weight-gradient on large maps, im2col on small ones,
  then the projection onto the basis per output channel of a field.
"""

from __future__ import annotations

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
    """``(n, out_channels, in_channels * k * k)``: what Opacus computes for a Conv2d."""
    n, in_channels, height, width = activations.shape
    k, padding, stride = layer.kernel_size, layer.padding, layer.stride
    if height * width >= GROUPED_ROUTE_MIN_PIXELS:
        out_channels = backprops.shape[1]
        filters = torch.nn.grad.conv2d_weight(
            activations.reshape(1, n * in_channels, height, width),
            (n * out_channels, in_channels, k, k),
            backprops.reshape(1, n * out_channels, *backprops.shape[2:]),
            stride=stride,
            padding=padding,
            groups=n,
        )
        return filters.view(n, out_channels, in_channels * k * k)
    columns = unfold2d(
        activations, kernel_size=(k, k), padding=(padding, padding), stride=(stride, stride),
        dilation=(1, 1),
    )  # fmt: skip
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
    out_pixels = backprops.shape[2] * backprops.shape[3]
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
    k, padding, stride = layer.kernel_size, layer.padding, layer.stride
    columns = unfold2d(
        activations, kernel_size=(k, k), padding=(padding, padding), stride=(stride, stride),
        dilation=(1, 1),
    ).transpose(1, 2)  # (n, output pixels, in_fields * q)  # fmt: skip
    per_channel = backprops.reshape(n, out_fields, out_size, out_pixels)
    flat = coefficients.view(n * out_fields * in_fields, dim)
    for a in range(out_size):
        filters_a = torch.bmm(per_channel[:, :, a], columns)  # (n, out_fields, in_fields * q)
        flat.addmm_(filters_a.view(-1, q), basis[a])
    return coefficients.view(n, out_fields, in_fields, dim)


def fieldwise_coefficient_gradient(
    layer: EquivariantConv2d, activations: torch.Tensor, backprops: torch.Tensor
) -> torch.Tensor:
    """``(n, fields, 1, d)``: field f of example i is group (i, f) of one grouped convolution.

    Every (example, field) pair's filter gradient is one group of a grouped weight
    gradient, whose layout ``(S_out, S_in, k, k)`` is the basis' own, so the projection
    onto the basis is a single matrix product. At every map size this beats im2col,
    whose copies of 4-pixel rows dominate on small maps (measured on CPU at batch 256
    for eq-nasnet-b0: 4x4 maps 38 -> 35 ms, 7x7 maps 43 -> 18 ms per layer).
    """
    n, fields, height, width = activations.shape[0], layer.in_fields, *activations.shape[2:]
    k, groups = layer.kernel_size, n * fields
    filters = torch.nn.grad.conv2d_weight(
        activations.reshape(1, groups * layer.in_size, height, width),
        (groups * layer.out_size, layer.in_size, k, k),
        backprops.reshape(1, groups * layer.out_size, *backprops.shape[2:]),
        stride=layer.stride,
        padding=layer.padding,
        groups=groups,
    )
    basis = layer.basis.detach().to(backprops.dtype).reshape(layer.basis.shape[0], -1)
    return (filters.view(groups, -1) @ basis.t()).view(n, fields, 1, -1)


def response_coefficient_gradient(
    layer: EquivariantConv2d, activations: torch.Tensor, backprops: torch.Tensor
) -> torch.Tensor:
    """``(n, out_fields, in_fields, d)`` of a 1x1 layer without forming filter gradients.

    A 1x1 basis is a set of d matrices ``B_d`` (``S_out x S_in``), and
    ``dL/dtheta[o, j, d] = sum_p g[o, p]^T B_d x[j, p]``. The basis goes to the
    smaller side first (the inputs' responses ``B_d x``, or the output gradients'
    ``B_d^T g``), then one batched product over (channel of a field, pixel) gives the
    coefficients: a contraction of 64 or more, where the per-sample filter gradient's
    is the 16 pixels of a 4x4 map.
    """
    if layer.stride > 1:  # a strided 1x1 layer only reads the pixels it samples
        activations = activations[:, :, :: layer.stride, :: layer.stride]
    n, _, height, width = activations.shape
    dim, out_size, in_size = layer.basis.shape[0], layer.out_size, layer.in_size
    pixels = height * width
    basis = layer.basis.detach().to(backprops.dtype).reshape(dim, out_size, in_size)
    out_fields, in_fields = layer.out_fields, layer.in_fields
    if out_fields >= in_fields:
        responses = torch.matmul(  # (n * in_fields, d * S_out, pixels)
            basis.reshape(dim * out_size, in_size),
            activations.reshape(n * in_fields, in_size, pixels),
        ).reshape(n, in_fields * dim, out_size * pixels)
        per_field = backprops.reshape(n, out_fields, out_size * pixels)
        coefficients = torch.bmm(per_field, responses.transpose(1, 2))
        return coefficients.view(n, out_fields, in_fields, dim)
    pulled_back = torch.matmul(  # (n * out_fields, d * S_in, pixels)
        basis.transpose(1, 2).reshape(dim * in_size, out_size),
        backprops.reshape(n * out_fields, out_size, pixels),
    ).reshape(n, out_fields * dim, in_size * pixels)
    per_field = activations.reshape(n, in_fields, in_size * pixels)
    coefficients = torch.bmm(pulled_back, per_field.transpose(1, 2))  # (n, out * d, in)
    return coefficients.view(n, out_fields, dim, in_fields).transpose(2, 3).contiguous()


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
            if layer.fieldwise:
                per_sample = fieldwise_coefficient_gradient
            elif layer.kernel_size == 1:
                per_sample = response_coefficient_gradient
            else:
                per_sample = per_sample_coefficient_gradient
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
