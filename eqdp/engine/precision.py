"""The numerical precision of a run: one policy for training, inference and attacks.

``fp32`` runs in float32 with TF32 switched off, also on a GPU; ``bf16`` runs
the forward pass under CUDA bf16 autocast (no loss scaler needed). ``auto`` is
bf16 on CUDA and fp32 on CPU. Records store the resolved policy, for training
and for evaluation: the geometric benchmark evaluates in fp32 whatever the
training precision, because bf16 or TF32 rounding differs between an image and
its rotation and would hide exact D4 invariance behind ~1e-3 of noise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from eqdp.errors import EqdpError


def resolve_precision(requested: str, device_type: str) -> str:
    """``auto`` -> ``bf16`` on CUDA, ``fp32`` elsewhere; ``bf16`` without CUDA is an error."""
    if requested == "auto":
        return "bf16" if device_type == "cuda" else "fp32"
    if requested == "bf16" and device_type != "cuda":
        raise EqdpError(f"precision 'bf16' needs a CUDA device, not {device_type!r}; use fp32")
    if requested not in ("fp32", "bf16"):
        raise EqdpError(f"unknown precision {requested!r}; valid choices: auto, fp32, bf16")
    return requested


@dataclass(frozen=True)
class Precision:
    name: str  # "fp32" or "bf16"

    @classmethod
    def resolve(cls, requested: str, device: torch.device) -> Precision:
        return cls(resolve_precision(requested, device.type))

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """Where a forward pass runs: bf16 autocast, or float32 without TF32."""
        if self.name == "bf16":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                yield
            return
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


FP32 = Precision("fp32")
