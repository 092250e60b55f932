"""G-CNN ResNet-18s of the E4-Net seed: ``p4-resnet18``, ``p4m-resnet18`` and their E4 variants.

The layout is ``resnet18``'s (CIFAR stem: 3x3 convolution, no max-pool; four
stages of two basic blocks; global pooling; linear head) over regular fields of
C4 (p4) or D4 (p4m), ending in group pooling so the logits are exactly invariant
to rot90 and (p4m) flips.

* **Width convention** (E4-Net's code and paper): fields per stage are
  ``floor(64 / sqrt|G|)`` doubled per stage, so a 3x3 layer has about as many
  coefficients as ``resnet18``'s (p4: 32-64-128-256 fields, p4m: 22-44-88-176)
  while it carries ``sqrt|G|`` times the channels and so about ``|G|`` times the
  MACs.
* **Basis**: ``full`` by default, every filter the rot90/flip action allows (a
  G-CNN's); ``bandlimited`` gives escnn's smoother basis instead.
* **Downsampling** stays exactly equivariant: the first convolution of stages 2-4
  is a true stride-2 convolution whose kernel parity follows the map's (3x3 on odd
  maps, 4x4 centred between pixels on even maps; see ``EquivariantConv2d``), and
  the shortcut average-pools before its 1x1 convolution (ResNet-D style), where
  ``resnet18`` uses a strided 1x1.
* **E4 variants** replace each block's second convolution by :class:`E4Conv2d`
  (reduction 2, 2 channels per slice, as the seed's CIFAR ResNet-18s).
* Dropout 0.2 after each block's first convolution, the seed's setting for every
  model of its table (eqdp's ``resnet18`` has none).
* Norm: batch norm per field (:class:`FieldBatchNorm`), or per-sample group norm
  over whole fields for DP-SGD (:class:`FieldGroupNorm`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from eqdp.models.equivariant.basis import group_order
from eqdp.models.equivariant.e4 import E4Conv2d
from eqdp.models.equivariant.layers import (
    EquivariantAvgPool,
    EquivariantConv2d,
    FieldBatchNorm,
    FieldGroupNorm,
    strided_kernel_size,
)
from eqdp.models.equivariant.networks import InvariantHead
from eqdp.models.registry import register_model


def field_norm(fields: int, group: str, dp: bool) -> nn.Module:
    size = group_order(group)
    return FieldGroupNorm(fields, size) if dp else FieldBatchNorm(fields, size)


class GroupBasicBlock(nn.Module):
    """ResNet basic block over regular fields; ``e4`` holds E4Conv2d's options or None."""

    def __init__(
        self,
        group: str,
        in_fields: int,
        out_fields: int,
        *,
        map_size: int,
        stride: int,
        dp: bool,
        basis: str,
        dropout: float,
        e4: dict | None,
    ) -> None:
        super().__init__()
        kernel = strided_kernel_size(3, map_size) if stride == 2 else 3
        self.conv1 = EquivariantConv2d(
            group, in_fields, out_fields, kernel, bias=False, basis=basis, stride=stride
        )
        self.dropout = nn.Dropout(dropout)
        self.norm1 = field_norm(out_fields, group, dp)
        if e4 is None:
            self.conv2: nn.Module = EquivariantConv2d(
                group, out_fields, out_fields, 3, bias=False, basis=basis
            )
        else:
            self.conv2 = E4Conv2d(group, out_fields, out_fields, 3, basis=basis, **e4)
        self.norm2 = field_norm(out_fields, group, dp)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_fields != out_fields:
            self.shortcut = nn.Sequential(
                EquivariantAvgPool() if stride == 2 else nn.Identity(),
                EquivariantConv2d(group, in_fields, out_fields, 1, bias=False, basis=basis),
                field_norm(out_fields, group, dp),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.dropout(self.conv1(x))))
        out = self.norm2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class GroupResNet18(nn.Module):
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        group: str,
        *,
        image_size: int,
        dp: bool,
        width: int = 64,
        basis: str = "full",
        dropout: float = 0.2,
        e4: dict | None = None,
    ) -> None:
        super().__init__()
        self.group = group
        base = max(1, int(width / math.sqrt(group_order(group))))
        self.stem = nn.Sequential(
            EquivariantConv2d(
                group, in_channels, base, 3, in_kind="trivial", bias=False, basis=basis
            ),
            field_norm(base, group, dp),
            nn.ReLU(),
        )
        options = {"dp": dp, "basis": basis, "dropout": dropout, "e4": e4}
        blocks: list[nn.Module] = []
        fields, map_size = base, image_size
        for stage in range(4):
            out_fields = base * 2**stage
            for index in range(2):
                stride = 2 if stage > 0 and index == 0 else 1
                block = GroupBasicBlock(
                    group, fields, out_fields, map_size=map_size, stride=stride, **options
                )
                blocks.append(block)
                fields, map_size = out_fields, (map_size + 1) // 2 if stride == 2 else map_size
        self.blocks = nn.Sequential(*blocks)
        self.head = InvariantHead(group, fields, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def g_cnn_builder(group: str) -> Callable[..., nn.Module]:
    """The registry builder of the G-CNN ResNet-18 over ``group``: its options are its signature."""

    def build(
        in_channels: int,
        num_classes: int,
        *,
        dp: bool = False,
        image_size: int = 28,
        width: int = 64,
        basis: str = "full",
        dropout: float = 0.2,
    ) -> nn.Module:
        options = {"width": width, "basis": basis, "dropout": dropout}
        return GroupResNet18(
            in_channels, num_classes, group, image_size=image_size, dp=dp, **options
        )

    return build


def e4_builder(group: str) -> Callable[..., nn.Module]:
    """The registry builder of the E4-Net ResNet-18 over ``group``."""

    def build(
        in_channels: int,
        num_classes: int,
        *,
        dp: bool = False,
        image_size: int = 28,
        width: int = 64,
        basis: str = "full",
        dropout: float = 0.2,
        reduction: float = 2.0,
        slice_channels: int = 2,
    ) -> nn.Module:
        options = {"width": width, "basis": basis, "dropout": dropout}
        e4 = {"reduction": reduction, "slice_channels": slice_channels}
        return GroupResNet18(
            in_channels, num_classes, group, image_size=image_size, dp=dp, e4=e4, **options
        )

    return build


for _name, _group, _fields in (("p4", "C4", "32-64-128-256"), ("p4m", "D4", "22-44-88-176")):
    register_model(
        f"{_name}-resnet18",
        family="equivariant",
        group=_group,
        description=f"G-CNN ResNet-18 over {_group} regular fields ({_fields}), full grid basis",
    )(g_cnn_builder(_group))
    register_model(
        f"e4-{_name}-resnet18",
        family="equivariant",
        group=_group,
        description=f"E4-Net {_name}-E4R18: {_name}-resnet18 with E4 convolutions "
        "(reduction 2, 2 ch/slice)",
    )(e4_builder(_group))
