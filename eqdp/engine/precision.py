"""The numerical precision of a run: one policy for training, inference and attacks.

``fp32`` runs in float32 with TF32 switched off, also on a GPU (cuDNN's default
is TF32 on, which turns exact invariance into 1e-4..6e-3 errors); ``tf32`` keeps
float32 storage and accumulation but lets CUDA matmuls and convolutions round
their inputs to TF32; ``bf16`` runs the forward pass under CUDA bf16 autocast (no
loss scaler needed). ``auto`` is tf32 on CUDA and fp32 on CPU: the fastest policy
that keeps float32 weights, activations and accumulation (the protocol's numerics
up to TF32's input rounding), where bf16 would also store activations in 8 bits
of mantissa. Records store the resolved policy, for training
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

POLICIES: tuple[str, ...] = ("auto", "fp32", "tf32", "bf16")


def resolve_precision(requested: str, device_type: str) -> str:
    """``auto`` -> ``tf32`` on CUDA, ``fp32`` elsewhere; tf32/bf16 without CUDA are errors."""
    if requested not in POLICIES:
        raise EqdpError(f"unknown precision {requested!r}; valid choices: {', '.join(POLICIES)}")
    if requested == "auto":
        return "tf32" if device_type == "cuda" else "fp32"
    if requested in ("tf32", "bf16") and device_type != "cuda":
        raise EqdpError(
            f"precision {requested!r} needs a CUDA device, not {device_type!r}; use fp32"
        )
    return requested


@dataclass(frozen=True)
class Precision:
    name: str  # "fp32", "tf32" or "bf16"

    @classmethod
    def resolve(cls, requested: str, device: torch.device) -> Precision:
        return cls(resolve_precision(requested, device.type))

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """Where a forward pass runs: bf16 autocast, float32 with TF32, or strict float32."""
        if self.name == "bf16":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                yield
            return
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        allow = self.name == "tf32"
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allow
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


FP32 = Precision("fp32")
