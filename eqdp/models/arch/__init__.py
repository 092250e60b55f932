"""Architecture specs (``ArchSpec``) and the networks built from them."""

from eqdp.models.arch.network import SpecNetwork, build_network
from eqdp.models.arch.spec import (
    ArchSpec,
    HeadSpec,
    StageSpec,
    StemSpec,
    scaled,
    trivial_twin,
    with_group,
)

__all__ = [
    "ArchSpec",
    "HeadSpec",
    "SpecNetwork",
    "StageSpec",
    "StemSpec",
    "build_network",
    "scaled",
    "trivial_twin",
    "with_group",
]
