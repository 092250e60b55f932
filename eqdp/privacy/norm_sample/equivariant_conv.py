"""eqdp's EquivariantConv2d, in coefficient space.

The layer's parameters are the basis coefficients theta, and its filter is
``W = B theta`` (``B``: the frozen steerable basis, one column per coefficient).
By the chain rule each example's coefficient gradient is ``B^T vec(g_W,i)`` with
``g_W,i`` its ordinary filter gradient, and DP-SGD clips the norm of *that*
vector, ``||B^T vec(g_W,i)||``, not ``||g_W,i||`` (they differ unless ``B`` has
orthonormal columns). So the layer's rule works in coefficient space: it
instantiates the per-example coefficient gradients with eqdp's exact grad
sampler (``eqdp.privacy.grad_sample.equivariant_conv``, which never forms a
per-example filter gradient for 1x1 layers and projects grouped weight gradients
otherwise) and keeps them for the clipped sum. They hold ``n * |theta|`` numbers,
``|G|^2`` (64 for D4) times fewer than per-example filter gradients and fewer than
the layer's input on every layer of the registered models, so a ghost norm (whose
Gram matrices would also need ``B^T B`` between them) would save nothing.
"""

from __future__ import annotations

import torch

from eqdp.models.equivariant.layers import EquivariantConv2d
from eqdp.privacy.grad_sample.equivariant_conv import compute_equivariant_conv_grad_sample
from eqdp.privacy.norm_sample.rules import Gradients, NormSampler, register_norm_sampler


def equivariant_conv_per_sample(
    layer: EquivariantConv2d, activations: torch.Tensor, backprops: torch.Tensor
) -> Gradients:
    return compute_equivariant_conv_grad_sample(layer, [activations], backprops)


EQUIVARIANT_CONV = register_norm_sampler(
    EquivariantConv2d, NormSampler(per_sample=equivariant_conv_per_sample)
)
