"""The one inference path: class probabilities of a batch of images, in eval mode."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from eqdp.data.medmnist_data import Split
from eqdp.engine.precision import FP32, Precision
from eqdp.engine.task import scores_from_logits, to_model_input
from eqdp.metrics import evaluate


@torch.no_grad()
def predict_scores(
    model: nn.Module,
    images: torch.Tensor | Split,
    task: str,
    batch_size: int = 512,
    precision: Precision = FP32,
) -> np.ndarray:
    """Probabilities ``(N, K)`` for uint8 images ``(N, C, H, W)`` (or a split's images).

    The model is put in eval mode for the pass and given back in the mode it had.
    """
    if isinstance(images, Split):
        images = images.images
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    try:
        with precision.context():
            for start in range(0, len(images), batch_size):
                logits = model(to_model_input(images[start : start + batch_size].to(device)))
                outputs.append(scores_from_logits(task, logits.float()).cpu())
    finally:
        model.train(was_training)
    if not outputs:
        return np.zeros((0, 0))
    return torch.cat(outputs).numpy()


def evaluate_split(
    model: nn.Module,
    split: Split,
    task: str,
    batch_size: int = 512,
    precision: Precision = FP32,
) -> dict[str, float]:
    scores = predict_scores(model, split, task, batch_size, precision)
    return evaluate(task, split.labels.cpu().numpy(), scores)
