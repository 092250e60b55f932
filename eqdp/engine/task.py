"""What depends on the task type: input scaling, loss, scores."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from eqdp.data.catalog import MULTI_LABEL


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float in [-1, 1], MedMNIST's Normalize(mean=.5, std=.5)."""
    return images.float().div_(255.0).sub_(0.5).div_(0.5)


def loss_for(task: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if task == MULTI_LABEL:
        return F.binary_cross_entropy_with_logits(logits, labels.float())
    return F.cross_entropy(logits, labels[:, 0])


def scores_from_logits(task: str, logits: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(logits) if task == MULTI_LABEL else torch.softmax(logits, dim=1)
