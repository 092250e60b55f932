"""Stratified training subsets for the low-data benchmark (and DP on little data).

Each stratum keeps ``max(1, round(fraction * n_stratum))`` examples, so class
proportions are kept up to rounding and no class disappears. Single-label tasks
stratify by class; multi-label tasks by the example's rarest positive label (or
"no positive label"), which keeps every label's rarest examples represented
without one stratum per label combination.
"""

from __future__ import annotations

import math

import torch

from eqdp.errors import EqdpError


def strata(labels: torch.Tensor) -> torch.Tensor:
    """One stratum id per example: the class, or for multi-label the rarest positive label."""
    labels = labels.reshape(len(labels), -1)
    if labels.shape[1] == 1:
        return labels[:, 0].long()
    positives = labels.bool()
    frequency = positives.sum(dim=0).float()
    # Rarer labels get larger keys; examples without a positive label go to stratum -1.
    rarity = torch.where(positives, -frequency, torch.tensor(-math.inf))
    stratum = rarity.argmax(dim=1)
    return torch.where(positives.any(dim=1), stratum, torch.full_like(stratum, -1))


def check_fraction(fraction: float) -> float:
    if not 0.0 < fraction <= 1.0:  # also rejects NaN
        raise EqdpError(f"fraction must be in (0, 1], got {fraction:g}")
    return fraction


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices of a stratified random subset; the same (labels, fraction, seed) -> same.

    Raises EqdpError for a fraction outside (0, 1] or one too small to keep one
    example of every class present in ``labels``.
    """
    check_fraction(fraction)
    labels = labels.cpu()
    n = len(labels)
    groups = strata(labels)
    present = torch.unique(groups)
    wanted = round(fraction * n)
    if wanted < len(present):
        raise EqdpError(
            f"fraction {fraction:g} keeps {wanted} of {n} training examples, fewer than "
            f"one per class ({len(present)} classes); use a fraction >= {len(present) / n:.2g}"
        )
    if fraction == 1.0:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for stratum in present.tolist():
        members = torch.nonzero(groups == stratum).flatten()
        keep = min(len(members), max(1, round(fraction * len(members))))
        order = torch.randperm(len(members), generator=generator)
        chosen.append(members[order[:keep]])
    return torch.cat(chosen).sort().values


def class_counts(labels: torch.Tensor, n_classes: int) -> list[int]:
    """Examples per class (single-label) or positives per label (multi-label)."""
    labels = labels.cpu().reshape(len(labels), -1)
    if labels.shape[1] == 1:
        return torch.bincount(labels[:, 0], minlength=n_classes).tolist()
    return labels.bool().sum(dim=0).tolist()
