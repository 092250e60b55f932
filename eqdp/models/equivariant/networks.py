"""Hand-designed equivariant networks over regular fields: ``eq-cnn`` and ``eq-resnet-d4``.

The searched Eq-NASNet family is built from specs: see ``eqdp.models.nasnet``.

Both end in group pooling, global average pooling and a linear layer, so their
logits are invariant to the group (exactly, for D4 acting by rot90 and flips).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from eqdp.models.equivariant.basis import group_order
from eqdp.models.equivariant.layers import (
    EquivariantAvgPool,
    EquivariantConv2d,
    FieldGroupNorm,
    GroupPool,
)
from eqdp.models.registry import register_model


class ConvNormAct(nn.Sequential):
    def __init__(self, group: str, in_fields: int, out_fields: int, in_kind: str = "regular"):
        super().__init__(
            EquivariantConv2d(group, in_fields, out_fields, 3, in_kind=in_kind, bias=False),
            FieldGroupNorm(out_fields, group_order(group)),
            nn.ReLU(),
        )


class InvariantHead(nn.Module):
    def __init__(self, group: str, fields: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.group_pool = GroupPool(group_order(group))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(fields, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.group_pool(x).mean(dim=(2, 3))
        return self.fc(self.dropout(pooled))


class EquivariantCNN(nn.Module):
    """Plain stack: two conv blocks per stage, equivariant pooling between stages."""

    def __init__(
        self, in_channels: int, num_classes: int, group: str, widths: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.group = group
        layers: list[nn.Module] = [ConvNormAct(group, in_channels, widths[0], in_kind="trivial")]
        fields = widths[0]
        for stage, width in enumerate(widths):
            if stage > 0:
                layers.append(EquivariantAvgPool())
            layers.append(ConvNormAct(group, fields, width))
            fields = width
        self.features = nn.Sequential(*layers)
        self.head = InvariantHead(group, fields, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model(
    "eq-cnn",
    family="equivariant",
    group="D4",
    description="small equivariant CNN over regular fields (group configurable, default D4)",
)
def eq_cnn(
    in_channels: int,
    num_classes: int,
    *,
    dp: bool = False,
    image_size: int = 28,
    group: str = "D4",
    widths: tuple[int, ...] = (8, 16, 32),
) -> nn.Module:
    # Normalisation is per-sample already, so the DP variant is the same network.
    return EquivariantCNN(in_channels, num_classes, group, tuple(widths))


class EquivariantResidualBlock(nn.Module):
    def __init__(self, group: str, in_fields: int, out_fields: int) -> None:
        super().__init__()
        size = group_order(group)
        self.conv1 = EquivariantConv2d(group, in_fields, out_fields, 3, bias=False)
        self.norm1 = FieldGroupNorm(out_fields, size)
        self.conv2 = EquivariantConv2d(group, out_fields, out_fields, 3, bias=False)
        self.norm2 = FieldGroupNorm(out_fields, size)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if in_fields != out_fields:
            self.shortcut = nn.Sequential(
                EquivariantConv2d(group, in_fields, out_fields, 1, bias=False),
                FieldGroupNorm(out_fields, size),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


# (fields per stage, blocks per stage); width/depth multipliers scale them.
EQ_RESNET_WIDTHS: tuple[int, ...] = (6, 12, 24)
EQ_RESNET_DEPTHS: tuple[int, ...] = (1, 1, 1)


class EqResNet(nn.Module):
    """Hand-designed residual equivariant network; stage i runs at resolution / 2**i.

    eqdp 0.1-0.2 called it ``eq-nasnet`` although no search had produced it; the
    committed records of that name were renamed (``eqdp.results.migrations``).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        group: str = "D4",
        width_multiplier: float = 1.0,
        depth_multiplier: float = 1.0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.group = group
        widths = [max(1, round(w * width_multiplier)) for w in EQ_RESNET_WIDTHS]
        depths = [max(1, math.ceil(d * depth_multiplier)) for d in EQ_RESNET_DEPTHS]
        self.stem = ConvNormAct(group, in_channels, widths[0], in_kind="trivial")
        stages: list[nn.Module] = []
        fields = widths[0]
        for stage, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            blocks: list[nn.Module] = [EquivariantAvgPool()] if stage > 0 else []
            for _ in range(depth):
                blocks.append(EquivariantResidualBlock(group, fields, width))
                fields = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = InvariantHead(group, fields, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


@register_model(
    "eq-resnet-d4",
    family="equivariant",
    group="D4",
    description="hand-designed residual D4 network, 6-12-24 regular fields (the pre-search "
    "'eq-nasnet' of eqdp 0.1-0.2)",
)
def eq_resnet_d4(
    in_channels: int,
    num_classes: int,
    *,
    dp: bool = False,
    image_size: int = 28,
    group: str = "D4",
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
    dropout: float = 0.1,
) -> nn.Module:
    return EqResNet(in_channels, num_classes, group, width_multiplier, depth_multiplier, dropout)
