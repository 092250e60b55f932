"""Steerable kernel bases from escnn, extracted once as plain tensors.

escnn solves the kernel constraint for a group acting on the plane; eqdp only
needs the resulting basis. For one pair of field representations it is a
tensor of shape ``(d, out_size, in_size, k, k)``: any equivariant filter
between those fields is ``sum_d theta_d * basis[d]``.
"""

from __future__ import annotations

import re
import warnings
from functools import cache

import torch

from eqdp.errors import EqdpError

FIELD_KINDS: tuple[str, ...] = ("trivial", "regular")
_GROUP_PATTERN = re.compile(r"^([CD])(\d+)$")


def parse_group(group: str) -> tuple[str, int]:
    match = _GROUP_PATTERN.match(group)
    if match is None or int(match.group(2)) < 1:
        raise EqdpError(
            f"unknown symmetry group {group!r}; use C<N> (N rotations) or D<N> "
            "(N rotations and reflections), e.g. C4, C8, D4"
        )
    return match.group(1), int(match.group(2))


def group_order(group: str) -> int:
    family, n = parse_group(group)
    return n if family == "C" else 2 * n


def field_size(group: str, kind: str) -> int:
    return 1 if kind == "trivial" else group_order(group)


def _import_escnn():
    with warnings.catch_warnings():
        # escnn warns about py3nj (SO(3) only; eqdp drops it on purpose).
        warnings.filterwarnings("ignore", message=".*py3nj.*")
        import escnn.gspaces
        import escnn.nn  # slow import: only basis construction needs it
    return escnn


@cache
def _gspace(group: str):
    gspaces = _import_escnn().gspaces
    family, n = parse_group(group)
    return gspaces.flipRot2dOnR2(n) if family == "D" else gspaces.rot2dOnR2(n)


@cache
def steerable_basis(group: str, in_kind: str, out_kind: str, kernel_size: int) -> torch.Tensor:
    """Basis ``(d, out_size, in_size, k, k)`` (float32) of equivariant k x k filters.

    Computed once per process; torch's global random state is left as it was.
    escnn's ``R2Conv`` draws random initial weights, so without ``fork_rng`` the
    first model built in a process (cold cache) would get other initial weights
    and dropout masks than the same model built later: a run's numbers would
    depend on what its worker process had run before.
    """
    with torch.random.fork_rng(devices=[]):
        return _steerable_basis(group, in_kind, out_kind, kernel_size)


def _steerable_basis(group: str, in_kind: str, out_kind: str, kernel_size: int) -> torch.Tensor:
    enn = _import_escnn().nn
    gspace = _gspace(group)
    representations = {"trivial": gspace.trivial_repr, "regular": gspace.regular_repr}
    conv = enn.R2Conv(
        enn.FieldType(gspace, [representations[in_kind]]),
        enn.FieldType(gspace, [representations[out_kind]]),
        kernel_size,
        bias=False,
    )
    dimension = conv.weights.numel()
    elements = []
    with torch.no_grad():
        for index in range(dimension):
            conv.weights.zero_()
            conv.weights[index] = 1.0
            filter_, _ = conv.expand_parameters()
            elements.append(filter_.detach().clone())
    return torch.stack(elements).to(torch.float32)
