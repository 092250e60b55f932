"""DP-SGD: grad samplers for equivariant layers, accounting, the private training loop."""

from eqdp.privacy import grad_sample as _grad_sample  # noqa: F401  (registers grad samplers)
from eqdp.privacy.accounting import (
    ACCOUNTANTS,
    calibrate_noise,
    default_delta,
    rdp_epsilon,
    spent_epsilon,
)
from eqdp.privacy.config import DP_OPTION_KEYS, DPConfig, dp_config_from_options
from eqdp.privacy.training import fit_private, poisson_loader

__all__ = [
    "ACCOUNTANTS",
    "DPConfig",
    "DP_OPTION_KEYS",
    "calibrate_noise",
    "default_delta",
    "dp_config_from_options",
    "fit_private",
    "poisson_loader",
    "rdp_epsilon",
    "spent_epsilon",
]
