"""Opacus grad samplers for eqdp's equivariant layers and a faster Conv2d one, one file each.

Importing this package registers them; ``import eqdp`` does.
"""

from eqdp.privacy.grad_sample.conv2d import compute_conv2d_grad_sample
from eqdp.privacy.grad_sample.equivariant_conv import compute_equivariant_conv_grad_sample
from eqdp.privacy.grad_sample.field_norm import compute_field_group_norm_grad_sample

__all__ = [
    "compute_conv2d_grad_sample",
    "compute_equivariant_conv_grad_sample",
    "compute_field_group_norm_grad_sample",
]
