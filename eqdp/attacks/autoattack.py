"""AutoAttack (Croce & Hein 2020) through the Adversarial Robustness Toolbox (ART).

A gradient attack like PGD can be fooled by a model whose gradients are
uninformative (gradient masking); AutoAttack adds a step-size-free gradient attack
(APGD) and a gradient-free one (Square), so a model that only masks gradients
still falls. The components follow the original "standard" version, without its
targeted attacks: APGD on the cross-entropy (100 iterations, one restart),
APGD on the difference-of-logits ratio when there are three or more classes (DLR
is undefined for two), then Square with ``square_queries`` queries (5000 in the
original). Each component only attacks the images still classified correctly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from eqdp.attacks.registry import Attack, register_attack
from eqdp.data.catalog import MULTI_LABEL
from eqdp.errors import EqdpError

APGD_ITERATIONS = 100
SQUARE_QUERIES = 5000


def autoattack_params(steps: int = 0) -> dict:
    """What a record needs to say about the AutoAttack it ran."""
    from importlib.metadata import version

    return {
        "library": f"adversarial-robustness-toolbox {version('adversarial-robustness-toolbox')}",
        "components": "apgd-ce, apgd-dlr (3+ classes), square",
        "apgd_iterations": APGD_ITERATIONS,
        "apgd_restarts": 1,
        "square_queries": SQUARE_QUERIES,
    }


def autoattack(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    *,
    task: str,
    seed: int = 0,
    square_queries: int = SQUARE_QUERIES,
    batch_size: int = 128,
) -> torch.Tensor:
    """Adversarial versions of ``images`` ([0, 1], Linf ball of radius eps)."""
    from art.attacks.evasion import AutoProjectedGradientDescent, SquareAttack
    from art.estimators.classification import PyTorchClassifier

    if task == MULTI_LABEL:
        raise EqdpError("autoattack needs a single-label task; this dataset is multi-label")
    if eps == 0:
        return images.clone()
    device = images.device
    with torch.no_grad():
        n_classes = model(images[:1]).shape[1]
    classifier = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(images.shape[1:]),
        nb_classes=n_classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if device.type == "cuda" else "cpu",
    )
    apgd = dict(norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=APGD_ITERATIONS)
    apgd |= dict(nb_random_init=1, batch_size=batch_size, verbose=False)
    losses = ["cross_entropy"] + (["difference_logits_ratio"] if n_classes >= 3 else [])
    components = [
        AutoProjectedGradientDescent(classifier, loss_type=loss, **apgd) for loss in losses
    ]
    components.append(
        SquareAttack(
            classifier,
            norm=np.inf,
            eps=eps,
            max_iter=square_queries,
            p_init=0.8,
            nb_restarts=1,
            batch_size=batch_size,
            verbose=False,
        )  # fmt: skip
    )
    x = images.detach().cpu().numpy().astype(np.float32)
    y = labels[:, 0].cpu().numpy()
    adversarial = x.copy()
    # ART draws its random starts and squares from numpy's global generator.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        robust = classifier.predict(x, batch_size=batch_size).argmax(1) == y
        for component in components:  # each attacks only what the previous ones left standing
            if not robust.any():
                break
            candidates = component.generate(x[robust], y=y[robust])
            fooled = classifier.predict(candidates, batch_size=batch_size).argmax(1) != y[robust]
            index = np.flatnonzero(robust)[fooled]
            adversarial[index] = candidates[fooled]
            robust[index] = False
    finally:
        np.random.set_state(state)
    result = torch.from_numpy(adversarial).to(device=device, dtype=images.dtype)
    # Keep the ball exact despite float32 round-off inside ART.
    return torch.minimum(torch.maximum(result, images - eps), images + eps).clamp(0, 1)


def _run(model, images, labels, eps, *, task, steps, generator, precision) -> torch.Tensor:
    # ART runs float32 numpy; the seed for its numpy draws comes from the attack's stream.
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator)) if generator else 0
    return autoattack(model, images, labels, eps, task=task, seed=seed)


register_attack(
    Attack(
        "autoattack",
        "linf",
        "APGD-CE, APGD-DLR (3+ classes) and the gradient-free Square attack, via ART (slow)",
        _run,
        default=False,
        params=lambda steps: {"autoattack": autoattack_params()},
        single_label_only=True,
    )
)
