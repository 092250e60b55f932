"""DP-SGD: options, accounting, per-sample-gradient samplers and the DP-SGD training strategy.

Names are imported on first use; importing ``eqdp.privacy.dp_sgd`` (or
``eqdp.privacy.grad_sample``) registers eqdp's Opacus grad samplers.
"""

from __future__ import annotations

from eqdp.lazy import lazy_exports

_EXPORTS = {
    "ACCOUNTANTS": "eqdp.privacy.budget",
    "default_delta": "eqdp.privacy.budget",
    "DPOptions": "eqdp.privacy.options",
    "calibrate_noise": "eqdp.privacy.accounting",
    "rdp_epsilon": "eqdp.privacy.accounting",
    "spent_epsilon": "eqdp.privacy.accounting",
    "DPSGD": "eqdp.privacy.dp_sgd",
    "Schedule": "eqdp.privacy.dp_sgd",
    "average_over_views": "eqdp.privacy.dp_sgd",
    "poisson_loader": "eqdp.privacy.dp_sgd",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = sorted(_EXPORTS)
