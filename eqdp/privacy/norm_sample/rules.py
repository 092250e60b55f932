"""What a layer kind provides for norm-only clipping, and the registry of kinds.

Shapes: ``activations`` is the layer's input and ``backprops`` the gradient of
the loss with respect to its output, both with one row per forward row (an
example's ``views`` augmented copies are consecutive rows, and the example's
gradient is the sum over them, up to the one scale of Opacus' mean-loss convention
that ``NormSampleModule`` applies to the results).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from eqdp.errors import EqdpError

Gradients = dict[nn.Parameter, torch.Tensor]


@dataclass(frozen=True)
class NormSampler:
    """The rules of one layer kind; every function is pure (no state on the layer).

    per_sample: per-row gradients of the layer's trainable parameters (the
        instantiation route; eqdp's and Opacus' exact grad samplers).
    ghost_squared_norms: ``(layer, activations, backprops, views) -> (n,)``, each
        example's squared gradient norm over all the layer's trainable parameters,
        without forming per-example gradients; None where instantiation is always
        the cheaper route.
    ghost_applies: ``layer -> bool``, whether ``ghost_squared_norms`` is exact for this
        layer (e.g. zero padding); None: always.
    prefers_ghost: ``(layer, activations, backprops) -> bool``, whether the ghost
        norm costs less than instantiation for this call's shapes.
    weighted_sum: ``(layer, activations, weighted_backprops) -> gradients``: the
        batch gradient (sum over rows) for backprops already scaled per row, which
        is ``sum_i c_i g_i`` when row i's backprops were scaled by ``c_i``; None
        where the per-example gradients are always kept instead.
    """

    per_sample: Callable[[nn.Module, torch.Tensor, torch.Tensor], Gradients]
    ghost_squared_norms: (
        Callable[[nn.Module, torch.Tensor, torch.Tensor, int], torch.Tensor] | None
    ) = None
    ghost_applies: Callable[[nn.Module], bool] | None = None
    prefers_ghost: Callable[[nn.Module, torch.Tensor, torch.Tensor], bool] | None = None
    weighted_sum: Callable[[nn.Module, torch.Tensor, torch.Tensor], Gradients] | None = None


NORM_SAMPLERS: dict[type[nn.Module], NormSampler] = {}


def takes_ghost(sampler: NormSampler, layer: nn.Module) -> bool:
    """Whether the layer has an exact ghost norm."""
    if sampler.ghost_squared_norms is None:
        return False
    return sampler.ghost_applies is None or sampler.ghost_applies(layer)


def register_norm_sampler(kind: type[nn.Module], sampler: NormSampler) -> NormSampler:
    NORM_SAMPLERS[kind] = sampler
    return sampler


def norm_sampler_for(layer: nn.Module) -> NormSampler:
    """The rule of the layer's exact type (a subclass may change what the gradient is)."""
    sampler = NORM_SAMPLERS.get(type(layer))
    if sampler is None:
        kinds = ", ".join(sorted(kind.__name__ for kind in NORM_SAMPLERS))
        raise EqdpError(
            f"--clipping ghost has no norm rule for {type(layer).__name__} (it covers {kinds}); "
            "use --clipping instantiate"
        )
    return sampler


def fold_views(rows: torch.Tensor, views: int) -> torch.Tensor:
    """``(n * views, T, d) -> (n, views * T, d)``: an example's views become more positions.

    The example's gradient is the sum over its rows' ``sum_t b_t a_t^T``, i.e. one sum
    over all (view, position) pairs, so the ghost norm treats them as positions.
    """
    if views == 1:
        return rows
    n_rows, positions, width = rows.shape
    return rows.reshape(n_rows // views, views * positions, width)


def gram_product(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``<L L^T, R R^T>_F`` per example for ``L: (n, T, p)``, ``R: (n, T, q)``.

    Equal to ``||L^T R||_F^2`` (the squared norm of ``sum_t l_t r_t^T``); computed
    from the two T x T Gram matrices, the cheaper side when ``T (p + q) < p q``.
    """
    return (torch.bmm(left, left.transpose(1, 2)) * torch.bmm(right, right.transpose(1, 2))).sum(
        dim=(1, 2)
    )
