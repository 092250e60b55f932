"""The model wrapper of norm-only clipping: one forward, one backward, no per-example model copy.

``NormSampleModule(model)`` runs the forward pass with every trainable parameter
marked as not needing a gradient (the first layer's output joins the graph by
adding a zero leaf that needs one), so the backward pass computes only the
gradients with respect to activations (what backpropagation needs anyway): no
batch weight gradient that would be thrown away, no gradient of the images. A
forward hook keeps each parameterised layer's input, a hook on its output
receives the output gradient, and the layer's rule (``eqdp.privacy.norm_sample``)
turns the pair into that layer's per-example squared gradient norms. The DP
optimizer (``NormOnlyDPOptimizer``) then asks for the per-example norms and for
the clipped sum ``sum_i c_i g_i``.

What makes this exact, and is checked (an error, never a silent approximation):

* each parameterised layer runs once per forward pass and owns its parameters
  alone, so a parameter's per-example gradient is that one layer's;
* the input a layer saw is not modified in place before its output gradient
  arrives (tensor version counters);
* Opacus' ``loss_reduction="mean"`` convention: per-example gradients are those of
  the batch-mean loss times the number of rows, and an example's ``views``
  consecutive rows (augmentation multiplicity) are averaged, exactly as
  ``average_over_views`` does to per-sample gradients.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from eqdp.errors import EqdpError
from eqdp.privacy.norm_sample.rules import Gradients, NormSampler, norm_sampler_for, takes_ghost


@contextlib.contextmanager
def strict_float32() -> Iterator[None]:
    """No TF32 in CUDA matmuls and convolutions (no effect on CPU).

    A ghost norm and the clipped sum reach an example's gradient through different
    kernels; in full float32 they agree to rounding, as instantiation's norm and sum do,
    where TF32's 10-bit products could let a clipped contribution exceed C by ~1e-3.
    """
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@dataclass
class LayerCall:
    """One layer's pass: its input, then what its rule made of the output gradient."""

    activations: torch.Tensor | None
    version: int
    squared_norms: torch.Tensor | None = None  # (n,), over all the layer's parameters
    per_example: Gradients | None = None  # kept when they are the smaller thing to keep
    backprops: torch.Tensor | None = None  # kept (with activations) for the weighted sum
    route: str = ""  # ghost, instantiate (kept) or instantiate-norm (norm only)


def parameterised_layers(model: nn.Module) -> list[tuple[nn.Module, NormSampler]]:
    """Every module with trainable parameters of its own, with its rule; refuses sharing."""
    layers, owner = [], {}
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        for parameter in own:
            if id(parameter) in owner:
                raise EqdpError(
                    f"a parameter is shared by {type(owner[id(parameter)]).__name__} and "
                    f"{type(module).__name__}: --clipping ghost needs one layer per parameter"
                )
            owner[id(parameter)] = module
        layers.append((module, norm_sampler_for(module)))
    return layers


ROUTES: tuple[str, ...] = ("cheaper", "ghost", "instantiate", "instantiate-norm")


class NormSampleModule(nn.Module):
    """Wraps ``model`` for norm-only clipping; see the module docstring.

    ``route`` is for tests: ``cheaper`` (training) picks per layer call; the others force
    the ghost norm, instantiation with the per-example gradients kept, or instantiation
    for the norm only (the clipped sum then from the weighted output gradients) on every
    layer whose rule offers that route.
    """

    def __init__(self, model: nn.Module, views: int = 1, route: str = "cheaper") -> None:
        super().__init__()
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; valid: {', '.join(ROUTES)}")
        self._module = model
        self.views, self.route = views, route
        self.scale: float | None = None  # rows / views of the pass being clipped
        self.layers = dict(parameterised_layers(model))
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.calls: dict[nn.Module, LayerCall] = {}
        self.capturing = False
        self.handles = [layer.register_forward_hook(self._capture) for layer in self.layers]
        self.route_counts: dict[str, int] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.is_grad_enabled()):
            return self._module(x)
        if self.calls:
            raise EqdpError(
                "a second forward pass before the optimizer step: --clipping ghost clips one "
                "forward/backward pass per physical batch"
            )
        self.capturing = True
        for parameter in self.trainable:
            parameter.requires_grad_(False)
        try:
            # Autograd then computes only activation gradients; each layer's weight
            # gradient comes from its rule (the clipped sum), none is thrown away.
            return self._module(x)
        finally:
            self.capturing = False
            for parameter in self.trainable:
                parameter.requires_grad_(True)

    def _capture(
        self, layer: nn.Module, inputs: tuple, output: torch.Tensor
    ) -> torch.Tensor | None:
        if not self.capturing:
            return None
        if layer in self.calls:
            raise EqdpError(
                f"{type(layer).__name__} ran twice in one forward pass: --clipping ghost needs "
                "each parameterised layer to run once; use --clipping instantiate"
            )
        activations = inputs[0].detach()
        self.calls[layer] = LayerCall(activations, activations._version)
        if not output.requires_grad:
            # The first layer (its input needs no gradient and, here, neither do its
            # parameters): adding a zero leaf that needs one puts its output in the graph,
            # so its output gradient arrives and the backward pass stops at the leaf
            # instead of computing the gradient of the images.
            output = output + output.new_zeros(()).requires_grad_()
        if output.requires_grad:  # not under no_grad: there its gradient is zero
            output.register_hook(functools.partial(self._on_output_gradient, layer))
        return output

    def _on_output_gradient(self, layer: nn.Module, gradient: torch.Tensor) -> None:
        call = self.calls[layer]
        activations = call.activations
        if activations is None or activations._version != call.version:
            raise EqdpError(
                f"the input of {type(layer).__name__} was modified in place after the layer "
                "read it; --clipping ghost cannot use it (use --clipping instantiate)"
            )
        with torch.no_grad(), strict_float32():
            self._measure(layer, call, activations, gradient.detach())

    def _measure(
        self, layer: nn.Module, call: LayerCall, activations: torch.Tensor, gradient: torch.Tensor
    ) -> None:
        rows, views = gradient.shape[0], self.views
        if rows % views:
            raise EqdpError(f"{rows} rows are not whole examples of {views} views")
        n = rows // views
        dtype = next(p.dtype for p in layer.parameters(recurse=False) if p.requires_grad)
        activations = activations.to(dtype)
        # Opacus' mean-loss convention (backprops times the rows), then the mean over an
        # example's views: the example's gradient is the sum over its rows' gradients
        # times rows / views. Norms and clipped sums are linear in the output gradient,
        # so that scale is applied to them at the end, not to every layer's gradient.
        scale = rows / views
        if self.scale is not None and scale != self.scale:
            raise EqdpError(f"layers saw {rows} and {self.scale * views:g} rows in one pass")
        self.scale = scale
        backprops = gradient.to(dtype)
        sampler = self.layers[layer]
        call.activations = None
        if n == 0:
            call.squared_norms = backprops.new_zeros(0)
            trainable = [p for p in layer.parameters(recurse=False) if p.requires_grad]
            call.per_example = {p: p.new_zeros((0, *p.shape)) for p in trainable}
            return
        ghost = takes_ghost(sampler, layer) and (
            self.route == "ghost"
            or (self.route == "cheaper" and sampler.prefers_ghost(layer, activations, backprops))
        )
        if ghost:
            call.squared_norms = sampler.ghost_squared_norms(layer, activations, backprops, views)
            call.activations, call.backprops, call.route = activations, backprops, "ghost"
        else:
            per_row = sampler.per_sample(layer, activations, backprops)
            per_example = {
                p: g.reshape(n, views, *g.shape[1:]).sum(1) if views > 1 else g
                for p, g in per_row.items()
            }
            call.squared_norms = sum(g.reshape(n, -1).square().sum(1) for g in per_example.values())
            kept = sum(g.numel() for g in per_example.values())
            # Keeping them saves recomputing the layer's weight gradient; holding the
            # layer's input and output gradient instead saves memory where they are
            # less than half as large.
            inputs_smaller = kept > 2 * (activations.numel() + backprops.numel())
            if sampler.weighted_sum is not None and (
                self.route == "instantiate-norm" or (self.route == "cheaper" and inputs_smaller)
            ):
                call.activations, call.backprops, call.route = (
                    activations,
                    backprops,
                    "instantiate-norm",
                )
            else:
                call.per_example, call.route = per_example, "instantiate"
        self.route_counts[call.route] = self.route_counts.get(call.route, 0) + 1

    def per_example_norms(self) -> torch.Tensor:
        """``||g_i||`` over all parameters: the root of the sum of the layers' squares."""
        measured = [c.squared_norms for c in self.calls.values() if c.squared_norms is not None]
        if not measured:
            raise EqdpError("no layer received an output gradient: was backward() called?")
        sizes = {len(s) for s in measured}
        if len(sizes) > 1:
            raise EqdpError(f"layers disagree on the number of examples: {sorted(sizes)}")
        return torch.stack(measured).sum(0).sqrt() * self.scale

    def clipped_sum(self, factors: torch.Tensor) -> Gradients:
        """``sum_i factors_i g_i`` per trainable parameter (absent: a zero gradient)."""
        with torch.no_grad(), strict_float32():
            return self._clipped_sum(factors * self.scale)

    def _clipped_sum(self, factors: torch.Tensor) -> Gradients:
        sums: Gradients = {}
        for layer, call in self.calls.items():
            if call.per_example is not None:
                for parameter, per_example in call.per_example.items():
                    weights = factors.to(per_example.dtype)
                    sums[parameter] = torch.einsum("i,i...->...", weights, per_example)
            elif call.backprops is not None:
                weights = factors.to(call.backprops.dtype)
                if self.views > 1:
                    weights = weights.repeat_interleave(self.views)
                shape = (-1,) + (1,) * (call.backprops.dim() - 1)
                weighted = call.backprops * weights.view(shape)
                sums.update(self.layers[layer].weighted_sum(layer, call.activations, weighted))
        return sums

    def clear(self) -> None:
        self.calls, self.scale = {}, None

    def remove_hooks(self) -> None:
        """Detach from the model (as Opacus' ``GradSampleModule.remove_hooks``)."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self.clear()
