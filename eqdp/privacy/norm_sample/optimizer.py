"""Opacus' DPOptimizer with the per-sample-gradient clipping replaced by norm-only clipping.

Only ``clip_and_accumulate`` changes: the per-example norms and the clipped sum
come from ``NormSampleModule`` instead of ``p.grad_sample``. The clipping factor
is Opacus' own formula, ``min(1, C / (||g_i|| + 1e-6))``, and noise
(``add_noise``: std ``noise_multiplier * max_grad_norm`` on the summed clipped
gradient, the same generator drawing in the same parameter order), the
normalisation (``scale_grad``: by ``expected_batch_size``), the skipped steps of
physical batches (``BatchMemoryManager``) and the accountant's step hook are
Opacus' code, inherited unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from opacus.optimizers import DPOptimizer
from opacus.optimizers.optimizer import _check_processed_flag

from eqdp.privacy.norm_sample.module import NormSampleModule


class NormOnlyDPOptimizer(DPOptimizer):
    def __init__(self, optimizer: torch.optim.Optimizer, *, module: NormSampleModule, **kwargs):
        super().__init__(optimizer, **kwargs)
        self.norm_module = module

    @property
    def accumulated_iterations(self) -> int:
        """1, as for Opacus' hooks here: every physical batch is clipped on its own step call
        and ``zero_grad`` runs before each, so a step never holds two batches' gradients."""
        return 1

    def clip_and_accumulate(self) -> None:
        norms = self.norm_module.per_example_norms()
        factors = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)  # Opacus' formula
        sums = self.norm_module.clipped_sum(factors)
        self.norm_module.clear()
        for parameter in self.params:
            grad = sums.get(parameter)
            grad = torch.zeros_like(parameter) if grad is None else grad.to(parameter.dtype)
            if parameter.summed_grad is not None:
                _check_processed_flag(parameter.summed_grad)  # not yet noised: same logical step
                parameter.summed_grad += grad
            else:
                parameter.summed_grad = grad

    def pre_step(self, closure: Callable[[], float] | None = None) -> bool:
        """DPOptimizer.pre_step without its check for ``p.grad_sample`` (there is none)."""
        self.clip_and_accumulate()
        if self._check_skip_next_step():
            self._is_last_step_skipped = True
            return False
        self.add_noise()
        self.scale_grad()
        if self.step_hook:
            self.step_hook(self)
        self._is_last_step_skipped = False
        return True

    def zero_grad(self, set_to_none: bool = False) -> None:
        self.norm_module.clear()
        super().zero_grad(set_to_none)
