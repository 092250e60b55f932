"""``ArchSpec``: a typed, serialisable description of an equivariant network.

A spec fixes everything a network is: the stem, each stage's block type, depth,
width (in fields), kernel size, expansion and symmetry group, the head, and the
filter basis. Groups may only shrink along the network (D8 > D4 > C4 > C2 > C1,
D4 > D2 > D1, ...): a stage restricts the previous stage's regular fields to its
own group, so the network stays exactly equivariant to its *last* group. Specs
are JSON files (``ArchSpec.load`` / ``save``); searched ones live in
``eqdp/models/specs/``.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import Field

from eqdp.config.fields import as_plain_dict, config_class, parse_config
from eqdp.errors import EqdpError
from eqdp.models.equivariant.basis import GRID_GROUPS, group_order, is_subgroup, parse_group

BlockType = Literal["basic", "bottleneck", "inverted"]
Downsample = Literal["none", "avgpool"]
Basis = Literal["bandlimited", "full"]


@config_class
class StemSpec:
    fields: int = Field(ge=1, description="regular fields out of the stem convolution")
    group: str = Field(description="symmetry group of the stem, the network's largest")
    kernel_size: int = Field(3, ge=1, le=9, description="odd kernel size")
    downsample: Downsample = Field("none", description="halve the resolution after the stem")


@config_class
class StageSpec:
    block: BlockType = Field(
        description="basic residual (two k x k convs), bottleneck (1x1, k x k, 1x1) or "
        "inverted residual (1x1 expand, fieldwise k x k, 1x1 project)"
    )
    blocks: int = Field(ge=1, le=16)
    fields: int = Field(ge=1, description="regular fields out of each block")
    group: str = Field(description="subgroup of the previous stage's group")
    kernel_size: int = Field(3, ge=1, le=9)
    expansion: float = Field(
        1.0,
        gt=0,
        le=8,
        description="inverted: hidden = fields x expansion; "
        "bottleneck: hidden = fields / expansion; basic: unused",
    )
    downsample: Downsample = Field("avgpool", description="halve the resolution first")

    def hidden_fields(self, in_fields: int) -> int:
        if self.block == "inverted":
            return max(1, round(in_fields * self.expansion))
        if self.block == "bottleneck":
            return max(1, round(self.fields / self.expansion))
        return self.fields


@config_class
class HeadSpec:
    dropout: float = Field(0.0, ge=0, lt=1)


@config_class
class ArchSpec:
    name: str
    stem: StemSpec
    stages: tuple[StageSpec, ...] = Field(min_length=1)
    head: HeadSpec = HeadSpec()
    basis: Basis = "bandlimited"
    resolution: int = Field(28, ge=8, description="input size the spec was designed for")
    description: str = ""

    def __post_init__(self) -> None:
        previous = self.stem.group
        for kernel in [self.stem.kernel_size, *(s.kernel_size for s in self.stages)]:
            if kernel % 2 != 1:
                raise EqdpError(f"spec {self.name!r}: kernel sizes must be odd, got {kernel}")
        for index, stage in enumerate(self.stages):
            parse_group(stage.group)
            if not is_subgroup(stage.group, previous):
                raise EqdpError(
                    f"spec {self.name!r}: stage {index} group {stage.group} is not a subgroup "
                    f"of {previous}; groups may only shrink (D8 > D4 > C4 > C2 > C1, "
                    "D4 > D2 > D1)"
                )
            previous = stage.group
        if self.basis == "full":
            bad = sorted({g for g in self.groups if g not in GRID_GROUPS})
            if bad:
                raise EqdpError(
                    f"spec {self.name!r}: the full grid basis needs groups acting on the "
                    f"pixel grid ({', '.join(GRID_GROUPS)}), got {', '.join(bad)}"
                )

    @property
    def groups(self) -> list[str]:
        return [self.stem.group, *(s.group for s in self.stages)]

    @property
    def final_group(self) -> str:
        return self.stages[-1].group

    def as_dict(self) -> dict:
        return as_plain_dict(self)

    @classmethod
    def from_dict(cls, values: dict, where: str = "spec") -> ArchSpec:
        return parse_config(cls, values, where)

    @classmethod
    def load(cls, path: str | Path) -> ArchSpec:
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except OSError as error:
            raise EqdpError(f"cannot read spec file {path}: {error.strerror}") from None
        except json.JSONDecodeError as error:
            raise EqdpError(f"spec file {path} is not valid JSON: {error}") from None
        return cls.from_dict(values, where=str(path))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        return path

    def describe(self) -> str:
        """One line: stem, then each stage as ``block x depth @ fields group k``."""
        stages = "; ".join(
            f"{s.block}x{s.blocks} {s.fields}f {s.group} k{s.kernel_size}"
            + (f" e{s.expansion:g}" if s.block != "basic" else "")
            + (" /2" if s.downsample == "avgpool" else "")
            for s in self.stages
        )
        stem = f"stem {self.stem.fields}f {self.stem.group} k{self.stem.kernel_size}"
        stem += " /2" if self.stem.downsample == "avgpool" else ""
        return f"{stem}; {stages} ({self.basis}, {self.resolution}px)"


def scaled(
    spec: ArchSpec, width: float = 1.0, depth: float = 1.0, resolution: float = 1.0, name: str = ""
) -> ArchSpec:
    """EfficientNet-style compound scaling: fields x width, blocks x depth (ceil), size x res."""

    def widen(fields: int) -> int:
        return max(1, round(fields * width))

    stages = tuple(
        replace(s, fields=widen(s.fields), blocks=max(1, math.ceil(s.blocks * depth)))
        for s in spec.stages
    )
    return replace(
        spec,
        name=name or spec.name,
        stem=replace(spec.stem, fields=widen(spec.stem.fields)),
        stages=stages,
        resolution=max(8, round(spec.resolution * resolution)),
    )


def with_group(spec: ArchSpec, group: str, width: float = 1.0, name: str = "") -> ArchSpec:
    """The same network with every group (stem and stages) set to ``group``.

    Channels are what is kept: a stage of ``fields`` regular fields of ``G`` has
    ``fields x |G|`` channels, and gets ``fields x |G| x width / |group|`` fields of
    the new group (at least one). At ``width=1`` full convolutions cost the same MACs;
    fieldwise ones and the parameter count do not, which is what matching a width
    factor is for (``eqdp.models.nasnet.matched_group``). C1 means plain convolutions,
    so it gets the full basis (every k x k filter); other groups keep the spec's basis.
    """
    parse_group(group)
    size = group_order(group)

    def fields_of(fields: int, old_group: str) -> int:
        return max(1, round(fields * group_order(old_group) * width / size))

    stages = tuple(
        replace(s, group=group, fields=fields_of(s.fields, s.group)) for s in spec.stages
    )
    stem = replace(spec.stem, group=group, fields=fields_of(spec.stem.fields, spec.stem.group))
    return replace(
        spec, name=name or f"{spec.name}-{group.lower()}", stem=stem, stages=stages,
        basis="full" if group == "C1" else spec.basis,
        description=f"{spec.name} with every group {group}",
    )  # fmt: skip


def trivial_twin(spec: ArchSpec, width: float = 1.0, name: str = "") -> ArchSpec:
    """The same network with every group set to C1 (plain convolutions): ``with_group``.

    Fields become channels: ``width=1`` gives each stage as many channels as the
    equivariant stage had (``fields x |G|``), so the two networks cost the same
    MACs; other widths trade that for parameters (``eqdp.models.nasnet.matched_twin``).
    The C1 filter basis is the full one: every k x k filter.
    """
    twin = with_group(spec, "C1", width, name=name)
    return replace(twin, description=f"non-equivariant twin of {spec.name}")
