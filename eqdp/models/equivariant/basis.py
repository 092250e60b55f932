"""Steerable kernel bases, extracted once as plain tensors.

escnn solves the kernel constraint for a group acting on the plane; eqdp only
needs the resulting basis. For one pair of fields it is a tensor of shape
``(d, out_size, in_size, k, k)``: any equivariant filter between those fields
is ``sum_d theta_d * basis[d]``. Two bases are offered:

* ``bandlimited`` (default): escnn's harmonic basis, band-limited so that it is
  also (approximately) equivariant to rotations off the pixel grid;
* ``full``: every k x k filter that the exact pixel-grid action allows, the
  basis of a G-CNN (Cohen & Welling 2016). Only for groups that act on the grid
  by permutations (C1, C2, C4, D1, D2, D4).

A field may also be a regular field of a larger group restricted to the layer's
group (``in_group``): that is how a network steps down its subgroup chain.
"""

from __future__ import annotations

import re
import warnings
from functools import cache

import numpy as np
import torch

from eqdp.errors import EqdpError

FIELD_KINDS: tuple[str, ...] = ("trivial", "regular")
BASES: tuple[str, ...] = ("bandlimited", "full")
GRID_GROUPS: tuple[str, ...] = ("C1", "C2", "C4", "D1", "D2", "D4")
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


def is_subgroup(child: str, parent: str) -> bool:
    """``child <= parent`` with eqdp's embedding (reflections about the same axis)."""
    child_family, m = parse_group(child)
    parent_family, n = parse_group(parent)
    if n % m:
        return False
    return not (child_family == "D" and parent_family == "C")


def restriction_id(parent: str, child: str):
    """escnn's id of ``child`` as a subgroup of ``parent``."""
    if not is_subgroup(child, parent):
        raise EqdpError(
            f"{child} is not a subgroup of {parent}; a network can only restrict its "
            "symmetry downwards, e.g. D8 > D4 > C4 > C2 > C1 or D4 > D2 > D1"
        )
    child_family, m = parse_group(child)
    parent_family, _ = parse_group(parent)
    if parent_family == "C":
        return m
    return (0, m) if child_family == "D" else (None, m)


def _import_escnn():
    from eqdp.models.equivariant.escnn_determinism import make_deterministic
    from eqdp.models.equivariant.lie_learn_fallback import ensure_lie_learn

    ensure_lie_learn()  # numpy 2: lie_learn's numpy-1 binaries cannot load; SO(3) only
    with warnings.catch_warnings():
        # escnn warns about py3nj (SO(3) only; eqdp drops it on purpose).
        warnings.filterwarnings("ignore", message=".*py3nj.*")
        import escnn.gspaces
        import escnn.nn  # slow import: only basis construction needs it
    make_deterministic()  # the same bases in every install: see escnn_determinism
    return escnn


@cache
def _gspace(group: str):
    gspaces = _import_escnn().gspaces
    family, n = parse_group(group)
    return gspaces.flipRot2dOnR2(n) if family == "D" else gspaces.rot2dOnR2(n)


def _field_types(group: str, in_kind: str, out_kind: str, in_group: str | None):
    """escnn field types of one input and one output field, on one gspace."""
    enn = _import_escnn().nn
    if in_kind not in FIELD_KINDS or out_kind not in FIELD_KINDS:
        raise EqdpError(f"field kinds must be one of {FIELD_KINDS}, got {in_kind}, {out_kind}")
    if in_group is not None and in_group != group:
        if in_kind != "regular":
            raise EqdpError("only regular fields are restricted to a subgroup")
        parent = _gspace(in_group)
        in_type = enn.FieldType(parent, [parent.regular_repr]).restrict(
            restriction_id(in_group, group)
        )
        gspace = in_type.gspace
    else:
        gspace = _gspace(group)
        in_type = enn.FieldType(gspace, [_representation(gspace, in_kind)])
    out_type = enn.FieldType(gspace, [_representation(gspace, out_kind)])
    return in_type, out_type


def _representation(gspace, kind: str):
    return gspace.trivial_repr if kind == "trivial" else gspace.regular_repr


@cache
def steerable_basis(
    group: str,
    in_kind: str,
    out_kind: str,
    kernel_size: int,
    in_group: str | None = None,
    basis: str = "bandlimited",
) -> torch.Tensor:
    """Basis ``(d, out_size, in_size, k, k)`` (float32) of equivariant k x k filters.

    Computed once per process; torch's global random state is left as it was.
    escnn's ``R2Conv`` draws random initial weights, so without ``fork_rng`` the
    first model built in a process (cold cache) would get other initial weights
    and dropout masks than the same model built later: a run's numbers would
    depend on what its worker process had run before.
    """
    if basis not in BASES:
        raise EqdpError(f"unknown filter basis {basis!r}; valid choices: {', '.join(BASES)}")
    with torch.random.fork_rng(devices=[]):
        if basis == "bandlimited":
            return _bandlimited_basis(group, in_kind, out_kind, kernel_size, in_group)
        return _full_grid_basis(group, in_kind, out_kind, kernel_size, in_group)


def _bandlimited_basis(
    group: str, in_kind: str, out_kind: str, kernel_size: int, in_group: str | None
) -> torch.Tensor:
    enn = _import_escnn().nn
    in_type, out_type = _field_types(group, in_kind, out_kind, in_group)
    conv = enn.R2Conv(in_type, out_type, kernel_size, bias=False)
    dimension = conv.weights.numel()
    elements = []
    with torch.no_grad():
        for index in range(dimension):
            conv.weights.zero_()
            conv.weights[index] = 1.0
            filter_, _ = conv.expand_parameters()
            elements.append(filter_.detach().clone())
    return torch.stack(elements).to(torch.float32)


# The 8 symmetries of a square array: (quarter turns, then transpose or not).
_SQUARE_SYMMETRIES: tuple[tuple[int, bool], ...] = tuple(
    (turns, transpose) for transpose in (False, True) for turns in range(4)
)


def _apply_square_symmetry(array: np.ndarray, symmetry: tuple[int, bool]) -> np.ndarray:
    turns, transpose = symmetry
    out = np.rot90(array, turns, axes=(-2, -1))
    return np.swapaxes(out, -2, -1) if transpose else out


def _steer(filters: np.ndarray, rho_out: np.ndarray, rho_in: np.ndarray) -> np.ndarray:
    """``rho_out W rho_in^-1`` on the field axes of ``(..., out, in, k, k)`` filters."""
    return np.einsum("ab,...bckl,dc->...adkl", rho_out, filters, rho_in, optimize=True)


@cache
def grid_actions(group: str) -> tuple[tuple[int, bool], ...]:
    """For each element of ``group`` (escnn's order), the square-array symmetry it acts by.

    Read off escnn's own basis rather than assumed: the one array symmetry under which
    escnn's trivial -> regular filters transform like the regular representation. A
    group with an element that matches none (45 degree rotations) does not act on the
    pixel grid.
    """
    if group not in GRID_GROUPS:
        raise EqdpError(
            f"{group} does not act on the pixel grid by permutations; the full grid basis "
            f"and exact grid equivariance need one of {', '.join(GRID_GROUPS)}"
        )
    with torch.random.fork_rng(devices=[]):
        probe = _bandlimited_basis(group, "trivial", "regular", 3, None).double().numpy()
    in_type, out_type = _field_types(group, "trivial", "regular", None)
    actions = []
    for element in out_type.gspace.fibergroup.elements:
        steered = _steer(probe, out_type.representation(element), in_type.representation(element))
        matches = [
            s for s in _SQUARE_SYMMETRIES
            if np.allclose(_apply_square_symmetry(probe, s), steered, atol=1e-6)
        ]  # fmt: skip
        if len(matches) != 1:
            raise EqdpError(f"cannot identify the grid action of {element} in {group}")
        actions.append(matches[0])
    return tuple(actions)


def apply_grid_action(images: torch.Tensor, action: tuple[int, bool]) -> torch.Tensor:
    """The pixel-grid action of a group element (from :func:`grid_actions`) on images."""
    turns, transpose = action
    out = torch.rot90(images, turns, dims=(-2, -1))
    return out.transpose(-2, -1) if transpose else out


def _full_grid_basis(
    group: str, in_kind: str, out_kind: str, kernel_size: int, in_group: str | None
) -> torch.Tensor:
    """Orthonormal basis of all filters with ``g.W = rho_out(g) W rho_in(g)^-1`` on the grid."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread: these are small products, and OpenBLAS' spinning threads made them
    # ~30x slower on a machine whose cores were busy training.
    with threadpool_limits(1, user_api="blas"):
        return _solve_full_grid_basis(group, in_kind, out_kind, kernel_size, in_group)


def _solve_full_grid_basis(
    group: str, in_kind: str, out_kind: str, kernel_size: int, in_group: str | None
) -> torch.Tensor:
    actions = grid_actions(group)
    in_type, out_type = _field_types(group, in_kind, out_kind, in_group)
    shape = (out_type.size, in_type.size, kernel_size, kernel_size)
    units = np.eye(int(np.prod(shape))).reshape(-1, *shape)
    gram = None
    for element, action in zip(out_type.gspace.fibergroup.elements, actions, strict=True):
        steered = _steer(units, out_type.representation(element), in_type.representation(element))
        moved = _apply_square_symmetry(units, action)
        difference = (moved - steered).reshape(len(units), -1)  # row i: image of unit i
        gram = difference @ difference.T if gram is None else gram + difference @ difference.T
    # Null space of the stacked constraints = eigenvectors of their Gram matrix with
    # eigenvalue 0 (small and symmetric: much cheaper than an SVD of the stack).
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    null_space = eigenvectors[:, eigenvalues < 1e-8].T
    return torch.from_numpy(null_space.reshape(-1, *shape).copy()).to(torch.float32)
