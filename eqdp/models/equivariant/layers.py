"""Equivariant building blocks as plain tensor-in / tensor-out modules.

A feature map is a stack of fields; a regular field of group G occupies |G|
consecutive channels that G permutes. Every module here keeps that layout and
commutes with the group action, and only holds parameters Opacus can train
(the escnn basis is a frozen parameter, never a buffer: see docs/design.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from eqdp.models.equivariant.basis import field_size, steerable_basis


class EquivariantConv2d(nn.Module):
    """Group-equivariant convolution between fields, parametrised in a steerable basis.

    ``weight`` holds the basis coefficients ``(out_fields, in_fields, d)``; the
    dense filter is rebuilt from them on each forward and run by ``F.conv2d``.

    ``stride=2`` halves the resolution and stays exactly equivariant when the
    sampled windows form a lattice that rot90 and flips map onto itself. An odd
    kernel is centred on a pixel: on an odd map (size N) the centres 0, 2, ..., N-1
    are symmetric, on an even map they are not. An even kernel is centred between
    pixels: on an even map its centres 0.5, 2.5, ..., N-1.5 are symmetric. So a
    strided layer needs the kernel's parity to match the map's (see
    :func:`strided_kernel_size`), and refuses a map of the other parity. Padding is
    ``(k - 1) // 2``: the output has ``ceil(N / 2)`` pixels, as a ResNet's 3x3
    stride-2 convolution.

    ``in_group`` (a supergroup of ``group``) reads regular fields of that larger
    group restricted to ``group``: the layer where a network gives up symmetry.
    ``fieldwise`` makes it the equivariant analogue of a depthwise convolution:
    each field only sees itself (weight ``(fields, 1, d)``, ``groups=fields``).
    """

    def __init__(
        self,
        group: str,
        in_fields: int,
        out_fields: int,
        kernel_size: int = 3,
        in_kind: str = "regular",
        out_kind: str = "regular",
        bias: bool = True,
        in_group: str | None = None,
        basis: str = "bandlimited",
        fieldwise: bool = False,
        stride: int = 1,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"equivariant convolutions take stride 1 or 2, got {stride}")
        if stride == 1 and kernel_size % 2 != 1:
            # An even kernel at stride 1 shifts the map by half a pixel.
            raise ValueError("equivariant convolutions at stride 1 need an odd kernel size")
        in_group = None if in_group == group else in_group
        if fieldwise and (in_fields != out_fields or in_group or in_kind != out_kind):
            raise ValueError("a fieldwise convolution maps each field to a field of its kind")
        self.group, self.in_group, self.basis_name = group, in_group, basis
        self.in_fields, self.out_fields = in_fields, out_fields
        self.in_kind, self.out_kind = in_kind, out_kind
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = (kernel_size - 1) // 2
        self.fieldwise = fieldwise
        self.groups = in_fields if fieldwise else 1
        self.in_size = field_size(in_group or group, in_kind)
        self.out_size = field_size(group, out_kind)
        basis_ = steerable_basis(group, in_kind, out_kind, kernel_size, in_group, basis).clone()
        # Frozen parameter, not a buffer: Opacus refuses trainable layers with buffers.
        self.basis = nn.Parameter(basis_, requires_grad=False)
        weight_in = 1 if fieldwise else in_fields
        self.weight = nn.Parameter(torch.empty(out_fields, weight_in, basis_.shape[0]))
        self.bias = nn.Parameter(torch.zeros(out_fields)) if bias else None
        self.reset_parameters()

    @property
    def in_channels(self) -> int:
        return self.in_fields * self.in_size

    @property
    def out_channels(self) -> int:
        return self.out_fields * self.out_size

    def reset_parameters(self) -> None:
        # He initialisation of the expanded filter: Var(W) = 2 / fan_in.
        energy = self.basis.detach().pow(2).sum(0).mean().item()
        fan_in = self.in_channels // self.groups * self.kernel_size**2
        nn.init.normal_(self.weight, std=math.sqrt(2.0 / (fan_in * energy)))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def expanded_filter(self) -> torch.Tensor:
        filter_ = torch.einsum("oid,dabkl->oaibkl", self.weight, self.basis.to(self.weight.dtype))
        k = self.kernel_size
        return filter_.reshape(self.out_channels, self.in_channels // self.groups, k, k)

    def expanded_bias(self) -> torch.Tensor | None:
        # One bias per field, shared by its channels: the only equivariant choice for
        # regular and trivial fields.
        return None if self.bias is None else self.bias.repeat_interleave(self.out_size)

    # Set by DP training (see eqdp.privacy.grad_sample): the coefficients' gradient then
    # comes only from the per-sample grad sampler, so autograd skips the batch filter
    # gradient it would otherwise compute and throw away.
    per_sample_gradients_only: bool = False

    def _check_map(self, x: torch.Tensor) -> None:
        height, width = x.shape[-2:]
        if self.stride == 2 and (height != width or height % 2 != self.kernel_size % 2):
            raise ValueError(
                f"a stride-2 equivariant convolution with a {self.kernel_size}x"
                f"{self.kernel_size} kernel needs a square map of "
                f"{'odd' if self.kernel_size % 2 else 'even'} size to stay equivariant, got "
                f"{height}x{width}; build it with strided_kernel_size(k, map_size)"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_map(x)
        options = {"stride": self.stride, "padding": self.padding, "groups": self.groups}
        if not (self.per_sample_gradients_only and self.training and torch.is_grad_enabled()):
            return F.conv2d(x, self.expanded_filter(), self.expanded_bias(), **options)
        with torch.no_grad():
            filter_ = self.expanded_filter()
        bias = self.expanded_bias()
        output = F.conv2d(x, filter_, bias, **options)
        if x.requires_grad or output.requires_grad:
            return output
        # The first layer's input needs no gradient: a zero that depends on the
        # coefficients keeps its output in the graph, so Opacus' backward hook still fires.
        return output + 0.0 * self.weight.sum()

    def extra_repr(self) -> str:
        source = f"{self.in_group}->{self.group}" if self.in_group else self.group
        return (
            f"{source}, {self.in_fields} {self.in_kind} -> {self.out_fields} {self.out_kind}"
            f" fields, kernel_size={self.kernel_size}"
            f"{', stride=2' if self.stride == 2 else ''}, basis={self.basis_name}"
            f" (dim {self.weight.shape[-1]}){', fieldwise' if self.fieldwise else ''}"
        )


def strided_kernel_size(kernel_size: int, map_size: int) -> int:
    """A stride-2 layer's kernel on a ``map_size`` map: the map's parity, at least ``kernel_size``.

    An odd map keeps an odd kernel; an even map takes the next even size (3 -> 4),
    whose centre lies between pixels (see :class:`EquivariantConv2d`).
    """
    return kernel_size if kernel_size % 2 == map_size % 2 else kernel_size + 1


class FieldBatchNorm(nn.Module):
    """BatchNorm with one mean, variance, scale and shift per field (G-CNN batch norm).

    Statistics pool the batch, the pixels and the |G| channels of each field, so the
    layer commutes with the group's permutations. Batch statistics: not for DP-SGD.
    """

    def __init__(self, fields: int, field_size_: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.fields, self.field_size = fields, field_size_
        self.norm = nn.BatchNorm3d(fields, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = x.shape
        grouped = x.reshape(n, self.fields, self.field_size, height, width)
        return self.norm(grouped).reshape(n, channels, height, width)

    def extra_repr(self) -> str:
        return f"{self.fields} fields of size {self.field_size}"


class FieldGroupNorm(nn.Module):
    """GroupNorm whose groups hold whole fields, with one scale and shift per field.

    Statistics are per sample (valid under DP-SGD) and invariant to the channel
    permutations of each field, so the layer is equivariant.
    """

    def __init__(self, fields: int, field_size_: int, max_groups: int = 8, eps: float = 1e-5):
        super().__init__()
        self.fields, self.field_size, self.eps = fields, field_size_, eps
        self.num_groups = max(g for g in range(1, min(fields, max_groups) + 1) if fields % g == 0)
        self.weight = nn.Parameter(torch.ones(fields))
        self.bias = nn.Parameter(torch.zeros(fields))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normalized = F.group_norm(x, self.num_groups, eps=self.eps)
        scale = self.weight.repeat_interleave(self.field_size)[None, :, None, None]
        shift = self.bias.repeat_interleave(self.field_size)[None, :, None, None]
        return normalized * scale + shift

    def extra_repr(self) -> str:
        return f"{self.fields} fields, num_groups={self.num_groups}"


class EquivariantAvgPool(nn.Module):
    """Halves the resolution with a window that is symmetric under rot90 and flips.

    Even sizes: 2x2 blocks tile the grid exactly. Odd sizes: 3x3 windows at
    stride 2 centred on even indices, which include both borders.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height != width:
            raise ValueError("equivariant pooling needs square feature maps")
        if height % 2 == 0:
            return F.avg_pool2d(x, 2)
        return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


class GroupPool(nn.Module):
    """Max over each regular field's |G| channels: an invariant feature per field."""

    def __init__(self, field_size_: int) -> None:
        super().__init__()
        self.field_size = field_size_

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = x.shape
        grouped = x.reshape(n, channels // self.field_size, self.field_size, height, width)
        return grouped.amax(dim=2)
