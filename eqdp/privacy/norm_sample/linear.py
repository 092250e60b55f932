"""nn.Linear over any number of positions (``(n, ..., d_in) -> (n, ..., d_out)``).

Per example, ``g_W = sum_t b_t a_t^T`` over the positions t (all dimensions between
the batch and the features: E4's fibrewise linear maps run over group elements and
pixels), and ``g_bias = sum_t b_t``. Ghost norm:
``||g_W||_F^2 = <A A^T, B B^T>_F`` (``A: T x d_in``, ``B: T x d_out``); at one position
it is ``||a||^2 ||b||^2``.
"""

from __future__ import annotations

import torch
from opacus.grad_sample.linear import compute_linear_grad_sample
from torch import nn

from eqdp.privacy.norm_sample.rules import (
    Gradients,
    NormSampler,
    fold_views,
    gram_product,
    register_norm_sampler,
)


def _positions(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(tensor.shape[0], -1, tensor.shape[-1])


def linear_prefers_ghost(
    layer: nn.Linear, activations: torch.Tensor, backprops: torch.Tensor
) -> bool:
    positions = _positions(backprops).shape[1]
    return (
        positions * (layer.in_features + layer.out_features)
        < layer.in_features * layer.out_features
    )


def linear_ghost_squared_norms(
    layer: nn.Linear, activations: torch.Tensor, backprops: torch.Tensor, views: int
) -> torch.Tensor:
    inputs = fold_views(_positions(activations), views)
    outputs = fold_views(_positions(backprops), views)
    squared = torch.zeros(inputs.shape[0], dtype=backprops.dtype, device=backprops.device)
    if layer.weight.requires_grad:
        if inputs.shape[1] == 1:
            squared = squared + inputs.square().sum((1, 2)) * outputs.square().sum((1, 2))
        else:
            squared = squared + gram_product(inputs, outputs)
    if layer.bias is not None and layer.bias.requires_grad:
        squared = squared + outputs.sum(1).square().sum(1)
    return squared


def linear_per_sample(
    layer: nn.Linear, activations: torch.Tensor, backprops: torch.Tensor
) -> Gradients:
    return compute_linear_grad_sample(layer, [activations], backprops)


def linear_weighted_sum(
    layer: nn.Linear, activations: torch.Tensor, weighted_backprops: torch.Tensor
) -> Gradients:
    outputs = weighted_backprops.reshape(-1, layer.out_features)
    gradients: Gradients = {}
    if layer.weight.requires_grad:
        gradients[layer.weight] = outputs.t() @ activations.reshape(-1, layer.in_features)
    if layer.bias is not None and layer.bias.requires_grad:
        gradients[layer.bias] = outputs.sum(0)
    return gradients


LINEAR = register_norm_sampler(
    nn.Linear,
    NormSampler(
        per_sample=linear_per_sample,
        ghost_squared_norms=linear_ghost_squared_norms,
        prefers_ghost=linear_prefers_ghost,
        weighted_sum=linear_weighted_sum,
    ),
)
