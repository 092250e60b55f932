"""E4-Net's equivariant convolution (He et al., NeurIPS 2021), written from the paper.

A G-CNN layer aggregates a k x k neighbourhood with one static filter per
(output, input, group element). E4-Net splits it in two:

* an **encoder**: a 1x1 group convolution that mixes fields (the "values");
* a **kernel generator**: from the features at each pixel and group element it
  generates a k x k spatial kernel per *slice* (a set of ``slice_channels``
  output fields that share it): 1x1 group convolution to ``in_fields / reduction``
  fields, norm, ReLU, then a linear map applied to each group element's channel
  alike. The kernel generated for element g is turned by g^-1's grid action
  (escnn's regular-field convention) before use, which makes the layer exactly
  equivariant (the dynamic kernel of an involution, put into each group
  element's frame).

Out(x, c, g) = sum_u K_g(x, slice(c))(u) * V(x + u, c, g): a per-pixel, per-element
depthwise aggregation. Every trainable weight sits in an ``EquivariantConv2d``, a
``FieldGroupNorm`` or an ``nn.Linear``, all with exact per-sample gradient rules,
so the dynamic kernel needs no grad sampler of its own and the layer trains
under DP-SGD.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eqdp.errors import EqdpError
from eqdp.models.equivariant.basis import apply_grid_action, grid_actions, group_order
from eqdp.models.equivariant.layers import EquivariantConv2d, FieldGroupNorm


class FiberwiseLinear(nn.Module):
    """The same linear map on every group element's channel of regular fields.

    ``(n, in_fields * |G|, h, w) -> (n, out_fields * |G|, h, w)``; output channel
    ``(o, g)`` reads only input channels ``(i, g)``. Commutes with the permutations
    of regular fields, and its bias (one per output field) is shared by the field.
    """

    def __init__(self, in_fields: int, out_fields: int, field_size: int) -> None:
        super().__init__()
        self.field_size = field_size
        self.linear = nn.Linear(in_fields, out_fields)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = x.shape
        fibres = x.reshape(n, channels // self.field_size, self.field_size, height, width)
        mapped = self.linear(fibres.permute(0, 2, 3, 4, 1))  # (n, |G|, h, w, out_fields)
        channels = self.linear.out_features * self.field_size  # explicit: batches may be empty
        return mapped.permute(0, 4, 1, 2, 3).reshape(n, channels, height, width)


def kernel_frames(group: str, kernel_size: int) -> torch.Tensor:
    """``(|G|, k * k)`` gather indices: row g puts a flattened k x k kernel into g's frame.

    That is g's *inverse* grid action: in escnn's regular representation the filter
    of a field's channel g is the first channel's filter moved by g^-1 (read off the
    trivial -> regular basis; the layer's equivariance test checks it for C4 and D4).
    """
    positions = torch.arange(kernel_size * kernel_size).view(kernel_size, kernel_size)
    moved = [apply_grid_action(positions, action).reshape(-1) for action in grid_actions(group)]
    # apply_grid_action(positions) lists, per position, where g's action takes it from;
    # its inverse permutation (argsort) gathers by g^-1.
    return torch.stack([torch.argsort(row) for row in moved])


class E4Conv2d(nn.Module):
    """E4-Net convolution between regular fields of a grid group (C4, D4, ...), stride 1.

    ``reduction`` shrinks the generator's hidden fields (``in_fields // reduction``);
    ``slice_channels`` output fields share one generated kernel (the seed's ``groups``),
    so ``out_fields`` must be a multiple of it.
    """

    def __init__(
        self,
        group: str,
        in_fields: int,
        out_fields: int,
        kernel_size: int = 3,
        reduction: float = 2,
        slice_channels: int = 2,
        basis: str = "full",
    ) -> None:
        super().__init__()
        # Model options reach these checks: one-line errors, not tracebacks.
        if kernel_size % 2 != 1:
            raise EqdpError(f"E4 convolutions need an odd kernel size, got {kernel_size}")
        if slice_channels < 1 or out_fields % slice_channels:
            raise EqdpError(
                f"slice_channels={slice_channels} must divide the E4 layer's {out_fields} "
                "fields; choose a width whose fields it divides"
            )
        if reduction <= 0:
            raise EqdpError(f"reduction must be > 0, got {reduction}")
        self.group, self.kernel_size = group, kernel_size
        self.out_fields, self.slice_channels = out_fields, slice_channels
        self.slices = out_fields // slice_channels
        self.field_size = group_order(group)
        hidden = max(1, int(in_fields // reduction))
        self.encoder = EquivariantConv2d(group, in_fields, out_fields, 1, bias=False, basis=basis)
        self.generator = nn.Sequential(
            EquivariantConv2d(group, in_fields, hidden, 1, bias=False, basis=basis),
            FieldGroupNorm(hidden, self.field_size, max_groups=hidden),  # one group per field
            nn.ReLU(),
            FiberwiseLinear(hidden, self.slices * kernel_size * kernel_size, self.field_size),
        )
        # A constant index that moves with the module; not saved (checkpoints hold weights).
        # Opacus allows it: only layers with trainable weights of their own must lack buffers.
        frames = kernel_frames(group, kernel_size).t().contiguous()  # (k*k, |G|)
        self.register_buffer("frames", frames, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, height, width = x.shape
        k2, size = self.kernel_size**2, self.field_size
        raw = self.generator(x).view(n, self.slices, k2, size, height, width)
        index = self.frames.view(1, 1, k2, size, 1, 1).expand_as(raw)
        kernels = torch.gather(raw, 2, index)  # element g's kernel, turned by g^-1
        values = self.encoder(x)
        patches = F.unfold(values, self.kernel_size, padding=self.kernel_size // 2).view(
            n, self.slices, self.slice_channels, size, k2, height, width
        )
        weights = kernels.permute(0, 1, 3, 2, 4, 5).unsqueeze(2)  # (n, S, 1, |G|, k2, h, w)
        out = (weights * patches).sum(dim=4)
        return out.reshape(n, self.out_fields * size, height, width)

    def elementwise_macs(self, output: torch.Tensor) -> int:
        """The aggregation's multiply-adds (k*k per output value): torch's counter misses them."""
        return output.numel() * self.kernel_size**2

    def extra_repr(self) -> str:
        return (
            f"{self.group}, {self.out_fields} fields in {self.slices} slices, "
            f"kernel_size={self.kernel_size}"
        )
