"""Equivariant layers and networks built on escnn's steerable bases."""

from eqdp.models.equivariant.basis import group_order, parse_group, steerable_basis
from eqdp.models.equivariant.layers import (
    EquivariantAvgPool,
    EquivariantConv2d,
    FieldGroupNorm,
    GroupPool,
)
from eqdp.models.equivariant.networks import EqResNet, EquivariantCNN

__all__ = [
    "EqResNet",
    "EquivariantAvgPool",
    "EquivariantCNN",
    "EquivariantConv2d",
    "FieldGroupNorm",
    "GroupPool",
    "group_order",
    "parse_group",
    "steerable_basis",
]
