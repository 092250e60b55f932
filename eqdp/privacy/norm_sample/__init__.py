"""Per-example gradient norms and clipped sums without holding every per-example gradient.

Norm-only clipping (``--clipping ghost``): DP-SGD needs, per example i, the norm
``||g_i||`` of its whole gradient (to get the clipping factor
``c_i = min(1, C / (||g_i|| + 1e-6))``, Opacus' formula) and then only the sum
``sum_i c_i g_i``, never the ``g_i`` themselves. Both come from what one
backward pass already has at every layer: its input ``a_i`` and the gradient
``b_i`` of the loss with respect to its output.

* **Norms.** ``||g_i||^2 = sum over layers of ||g_i^layer||^2``; each layer kind
  has a rule that gets its per-example squared norms either by the **ghost norm**
  (for a layer that is linear in its weight over positions t,
  ``g_i = sum_t b_it a_it^T`` and ``||g_i||_F^2 = <A_i A_i^T, B_i B_i^T>``, the
  Frobenius product of the two T x T Gram matrices, cost ~ T^2 (d_in + d_out)) or
  by **instantiating** that layer's per-example gradients (cost ~ T d_in d_out) and
  taking their norm, whichever is cheaper for the layer's shape (Bu et al. 2022,
  mixed ghost clipping).
* **Clipped sum (book-keeping, no second backward pass).** ``sum_i c_i g_i`` is the
  layer's ordinary batch weight gradient with each example's output gradient scaled
  by ``c_i`` (the weight gradient is linear in the output gradient), or, where the
  layer's per-example gradients were instantiated and are the smaller thing to keep,
  ``einsum(c, per-example gradients)``.

Each layer kind is one module here with pure functions; ``NORM_SAMPLERS`` maps a
module type to its rule. Importing this package registers the rules.
"""

# Importing the layer modules registers their rules.
from eqdp.privacy.norm_sample import conv2d, equivariant_conv, linear, normalization
from eqdp.privacy.norm_sample.rules import NORM_SAMPLERS, NormSampler, norm_sampler_for

__all__ = ["NORM_SAMPLERS", "NormSampler", "conv2d", "equivariant_conv", "linear",
           "norm_sampler_for", "normalization"]  # fmt: skip
