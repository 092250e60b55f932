"""The Eq-NASNet family from its committed specs, its non-equivariant twin, and spec files.

``eqdp/models/specs/eq-nasnet-b<N>.json`` is registered as ``eq-nasnet-b<N>``
(``eq-nasnet`` is another name of b0) and, with every group set to C1, as
``nasnet-b<N>``. ``eq-nasnet-b0-group`` is B0's group ablation: every group set
to one ``-k group=G``, MACs matched. ``arch-spec`` builds any spec given as a model
option, which is what ``--model my-spec.json`` and ``create_model("my-spec.json", ...)``
use.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from torch import nn

from eqdp.errors import EqdpError
from eqdp.models.arch.network import build_network
from eqdp.models.arch.spec import ArchSpec, scaled, with_group
from eqdp.models.registry import MODELS, register_model

SPEC_DIR = Path(__file__).parent / "specs"
_FAMILY_FILE = re.compile(r"^eq-nasnet-b(\d+)\.json$")
TWIN_MATCHES = ("macs", "params")
# The group ablation's groups: the searched chain's groups, and C8 (exact on the pixel
# grid only for its rotations by multiples of 90 degrees; see ``ablation_member``).
ABLATION_GROUPS = ("C1", "C2", "C4", "D4", "C8")


@cache
def family_spec(name: str) -> ArchSpec:
    return ArchSpec.load(SPEC_DIR / f"{name}.json")


def with_dropout(spec: ArchSpec, dropout: float | None) -> ArchSpec:
    if dropout is None:
        return spec
    return ArchSpec.from_dict({**spec.as_dict(), "head": {"dropout": dropout}})


def member_spec(name: str, dropout: float | None, width: float, depth: float) -> ArchSpec:
    """A family member, fields x ``width`` and blocks x ``depth`` (``scaled``'s rounding)."""
    for label, factor in (("width_multiplier", width), ("depth_multiplier", depth)):
        if not factor > 0:
            raise EqdpError(f"model option {label}={factor!r} must be > 0")
    spec = with_dropout(family_spec(name), dropout)
    return spec if (width, depth) == (1.0, 1.0) else scaled(spec, width=width, depth=depth)


def matched_twin(spec: ArchSpec, match: str) -> ArchSpec:
    """The C1 twin with as many MACs or as many parameters as ``spec``: ``matched_group``.

    At width factor 1 every stage keeps its channels (fields x |G|); that already
    matches the MACs of full convolutions, but a fieldwise convolution of a regular
    field mixes its |G| channels while the twin's depthwise one does not, and an
    equivariant layer has fewer free weights than a plain one, so both matches need
    their own factor.
    """
    return matched_group(spec, "C1", match)


def matched_group(spec: ArchSpec, group: str, match: str = "macs") -> ArchSpec:
    """``spec`` with every group ``group`` (``with_group``), as many MACs or parameters.

    One width factor on all channels, found by bisection (the cost grows with it).
    """
    import torch

    if match not in TWIN_MATCHES:
        raise EqdpError(f"unknown twin match {match!r}; valid choices: {', '.join(TWIN_MATCHES)}")
    # The bisection builds (randomly initialised) candidates. Outside the caller's RNG
    # stream: else the network's initial weights would depend on whether this process had
    # matched the spec before (a cold cache draws numbers, a warm one does not).
    with torch.random.fork_rng(devices=[]):
        return _matched_group(json.dumps(spec.as_dict(), sort_keys=True), group, match)


@cache
def _matched_group(spec_json: str, group: str, match: str) -> ArchSpec:
    from eqdp.models.info import count_macs, count_parameters

    spec = ArchSpec.from_dict(json.loads(spec_json))
    shape = (1, spec.resolution, spec.resolution)

    def size(candidate: ArchSpec) -> int:
        model = build_network(candidate, 1, 2)
        return count_parameters(model) if match == "params" else count_macs(model, shape)

    target = size(spec)
    low, high = 0.05, 4.0
    for _ in range(16):
        middle = (low + high) / 2
        smaller = size(with_group(spec, group, middle)) < target
        low, high = (middle, high) if smaller else (low, middle)
    candidates = [with_group(spec, group, low), with_group(spec, group, high)]
    return min(candidates, key=lambda candidate: abs(size(candidate) - target))


_matched_twin = _matched_group  # its earlier name; tests clear this cache through it


def ablation_member(spec: ArchSpec, group: str | None) -> ArchSpec:
    """``spec`` with every group ``group`` at its MACs; ``None``: ``spec`` itself.

    C8 is built with escnn's band-limited basis: the network is exactly invariant to
    rotations by multiples of 90 degrees (the C4 inside C8), and only approximately to
    the 45 degree ones, which move pixels off the grid.
    """
    if group is None:
        return spec
    if group not in ABLATION_GROUPS:
        raise EqdpError(
            f"unknown ablation group {group!r}; valid choices: {', '.join(ABLATION_GROUPS)}"
        )
    return matched_group(spec, group, "macs")


def _register_family() -> None:
    for path in sorted(SPEC_DIR.glob("eq-nasnet-b*.json")):
        match = _FAMILY_FILE.match(path.name)
        if match is None:
            continue
        _register_member(int(match.group(1)))
    if "eq-nasnet-b0" in MODELS:
        MODELS.alias("eq-nasnet", "eq-nasnet-b0")


def _register_member(index: int) -> None:
    name = f"eq-nasnet-b{index}"
    spec = family_spec(name)
    dropout = spec.head.dropout

    def equivariant(
        in_channels: int, num_classes: int, *, dp: bool = False, image_size: int = 28,
        dropout: float = dropout, width_multiplier: float = 1.0,
        depth_multiplier: float = 1.0,
    ) -> nn.Module:  # fmt: skip
        # FieldGroupNorm is per sample: the DP variant is the same network.
        spec = member_spec(name, dropout, width_multiplier, depth_multiplier)
        return build_network(spec, in_channels, num_classes)

    def twin(
        in_channels: int, num_classes: int, *, dp: bool = False, image_size: int = 28,
        dropout: float = dropout, match: str = "macs", width_multiplier: float = 1.0,
        depth_multiplier: float = 1.0,
    ) -> nn.Module:  # fmt: skip
        # The twin of the scaled member, matched again: at every width and depth the
        # two networks cost the same MACs (or parameters).
        spec = member_spec(name, dropout, width_multiplier, depth_multiplier)
        return build_network(matched_twin(spec, match), in_channels, num_classes)

    groups = " > ".join(dict.fromkeys(spec.groups))
    register_model(
        name, family="equivariant", group=spec.final_group,
        description=f"Eq-NASNet B{index} (searched, {groups}): {spec.description}".rstrip(": "),
    )(equivariant)  # fmt: skip
    register_model(
        f"nasnet-b{index}", family="baseline", group=None,
        description=f"non-equivariant twin of eq-nasnet-b{index}: every group C1, "
        "channels matched for MACs (-k match=params: for parameters)",
    )(twin)  # fmt: skip
    if index == 0:
        _register_ablation(name, spec)


def _register_ablation(name: str, spec: ArchSpec) -> None:
    """``<name>-group``: the group ablation of a member, a model of its own.

    Not an option of ``<name>`` itself: records store every option's value, so a new
    ``group`` option would give new runs of the searched network another row key than
    the committed records (which lack it).
    """
    dropout = spec.head.dropout

    def ablation(
        in_channels: int, num_classes: int, *, dp: bool = False, image_size: int = 28,
        dropout: float = dropout, group: str | None = None,
    ) -> nn.Module:  # fmt: skip
        member = ablation_member(with_dropout(family_spec(name), dropout), group)
        return build_network(member, in_channels, num_classes)

    register_model(
        f"{name}-group", family="equivariant", group=spec.final_group,
        description=f"group ablation of {name}: every group set to -k group="
        f"{'|'.join(ABLATION_GROUPS)}, channels matched for MACs (default: the searched groups)",
    )(ablation)  # fmt: skip


@register_model(
    "arch-spec",
    family="equivariant",
    description="any ArchSpec: --model FILE.json, or -k spec=FILE.json",
)
def arch_spec(
    in_channels: int, num_classes: int, *, dp: bool = False, image_size: int = 28,
    spec: Any = None,
) -> nn.Module:  # fmt: skip
    return build_network(load_spec(spec), in_channels, num_classes)


def load_spec(spec: Any) -> ArchSpec:
    """A spec from a file path, a plain dict or an ArchSpec."""
    if isinstance(spec, ArchSpec):
        return spec
    if isinstance(spec, dict):
        return ArchSpec.from_dict(spec)
    if isinstance(spec, (str, Path)) and str(spec):
        return ArchSpec.load(spec)
    raise EqdpError("model 'arch-spec' needs a spec: --model FILE.json or -k spec=FILE.json")


def is_spec_file(name: str) -> bool:
    return name.endswith(".json")


_register_family()
