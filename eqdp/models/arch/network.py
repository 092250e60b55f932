"""Networks built from an :class:`ArchSpec`.

Every convolution is an :class:`EquivariantConv2d` over regular fields, every
normalisation a :class:`FieldGroupNorm` (per-sample statistics, so the same
network trains under DP-SGD), downsampling an :class:`EquivariantAvgPool`. The
first convolution of a stage whose group is smaller than its input's reads the
input's regular fields restricted to the new group. The head pools over each
field's group channels, then over space: logits are invariant to the last group.
"""

from __future__ import annotations

import torch
from torch import nn

from eqdp.models.arch.spec import ArchSpec, StageSpec
from eqdp.models.equivariant.basis import group_order
from eqdp.models.equivariant.layers import (
    EquivariantAvgPool,
    EquivariantConv2d,
    FieldGroupNorm,
    GroupPool,
)


class _Convs:
    """Conv + norm factory for one block: group, basis, and the group its input has."""

    def __init__(self, group: str, basis: str, in_group: str) -> None:
        self.group, self.basis, self.in_group = group, basis, in_group

    def conv(self, in_fields: int, out_fields: int, k: int, *, first: bool, fieldwise=False):
        return EquivariantConv2d(
            self.group, in_fields, out_fields, k, bias=False, basis=self.basis,
            in_group=self.in_group if first else None, fieldwise=fieldwise,
        )  # fmt: skip

    def norm(self, fields: int) -> FieldGroupNorm:
        return FieldGroupNorm(fields, group_order(self.group))


class SpecBlock(nn.Module):
    """One residual block of a stage: basic, bottleneck or inverted residual."""

    def __init__(self, stage: StageSpec, in_fields: int, in_group: str, basis: str) -> None:
        super().__init__()
        convs = _Convs(stage.group, basis, in_group)
        k, out_fields = stage.kernel_size, stage.fields
        hidden = stage.hidden_fields(in_fields)
        layers: list[nn.Module] = []
        if stage.block == "basic":
            layers += [convs.conv(in_fields, out_fields, k, first=True), convs.norm(out_fields)]
            layers += [nn.ReLU(), convs.conv(out_fields, out_fields, k, first=False)]
        elif stage.block == "bottleneck":
            layers += [convs.conv(in_fields, hidden, 1, first=True), convs.norm(hidden), nn.ReLU()]
            layers += [convs.conv(hidden, hidden, k, first=False), convs.norm(hidden), nn.ReLU()]
            layers += [convs.conv(hidden, out_fields, 1, first=False)]
        else:  # inverted residual; the expansion 1x1 also does any group restriction
            expands = hidden != in_fields or in_group != stage.group
            first = True
            if expands:
                layers += [convs.conv(in_fields, hidden, 1, first=True), convs.norm(hidden)]
                layers += [nn.ReLU()]
                first = False
            layers += [convs.conv(hidden, hidden, k, first=first, fieldwise=True)]
            layers += [convs.norm(hidden), nn.ReLU()]
            layers += [convs.conv(hidden, out_fields, 1, first=False)]
        layers.append(convs.norm(out_fields))
        self.body = nn.Sequential(*layers)
        same_shape = in_fields == out_fields and in_group == stage.group
        self.shortcut: nn.Module | None = nn.Identity() if same_shape else None
        if not same_shape and stage.block != "inverted":  # MBConv has no projection shortcut
            self.shortcut = nn.Sequential(
                convs.conv(in_fields, out_fields, 1, first=True), convs.norm(out_fields)
            )
        # Inverted residuals are linear bottlenecks (no activation after the sum's branch).
        self.activation = nn.ReLU() if stage.block != "inverted" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.activation(out)


class SpecNetwork(nn.Module):
    """The network an :class:`ArchSpec` describes; ``group`` is its (exact) invariance."""

    def __init__(self, spec: ArchSpec, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.spec = spec
        # Invariance beyond translations: none for a network that ends in C1 (a twin).
        self.group = None if spec.final_group == "C1" else spec.final_group
        stem = spec.stem
        layers: list[nn.Module] = [
            EquivariantConv2d(
                stem.group, in_channels, stem.fields, stem.kernel_size, in_kind="trivial",
                bias=False, basis=spec.basis,
            ),
            FieldGroupNorm(stem.fields, group_order(stem.group)),
            nn.ReLU(),
        ]  # fmt: skip
        if stem.downsample == "avgpool":
            layers.append(EquivariantAvgPool())
        self.stem = nn.Sequential(*layers)
        stages: list[nn.Module] = []
        fields, group = stem.fields, stem.group
        for stage in spec.stages:
            blocks: list[nn.Module] = []
            if stage.downsample == "avgpool":
                blocks.append(EquivariantAvgPool())
            for _ in range(stage.blocks):
                blocks.append(SpecBlock(stage, fields, group, spec.basis))
                fields, group = stage.fields, stage.group
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.group_pool = GroupPool(group_order(group))
        self.dropout = nn.Dropout(spec.head.dropout)
        self.fc = nn.Linear(fields, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(x))
        pooled = self.group_pool(features).mean(dim=(2, 3))
        return self.fc(self.dropout(pooled))


def build_network(spec: ArchSpec, in_channels: int, num_classes: int) -> SpecNetwork:
    return SpecNetwork(spec, in_channels, num_classes)
