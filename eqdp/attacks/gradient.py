"""Gradient attacks in [0, 1] pixel space: FGSM, PGD-Linf and PGD-L2.

Attacks take a model that maps [0, 1] images to logits (wrap a trained eqdp
model in ``PixelSpaceModel``), so budgets are in pixel units before the
MedMNIST normalisation, as in the robustness literature. PGD keeps, per
example, the worst iterate it visited (misclassified first, then highest loss),
starting from the clean image: PGD is never weaker than doing nothing, and more
steps can only find a worse point. These three fit in this file and are tested
against the invariants in tests/test_robustness.py; AutoAttack, far more code,
comes from the Adversarial Robustness Toolbox (``eqdp.attacks.autoattack``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eqdp.attacks.registry import ATTACKS, DEFAULT_EPS, Attack, register_attack
from eqdp.data.catalog import MULTI_LABEL
from eqdp.engine.precision import FP32, Precision
from eqdp.errors import unknown_choice

PGD_STEPS = 10
STEP_SIZE_FACTOR = 2.5  # step = 2.5 * eps / steps (Madry et al.): the ball is reachable


class PixelSpaceModel(nn.Module):
    """[0, 1] images -> logits: applies the [-1, 1] normalisation of ``to_model_input``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images - 0.5) / 0.5)


def per_example_loss(task: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if task == MULTI_LABEL:
        losses = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
        return losses.mean(dim=1)
    return F.cross_entropy(logits, labels[:, 0], reduction="none")


def wrongness(task: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of wrong labels per example, the same decision rule as eqdp.metrics.accuracy."""
    if task == MULTI_LABEL:
        return ((logits > 0).long() != labels).float().mean(dim=1)
    return (logits.argmax(dim=1) != labels[:, 0]).float()


def _loss_and_gradient(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, task: str, precision: Precision
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images = images.detach().requires_grad_(True)
    with precision.context():
        logits = model(images).float()
    losses = per_example_loss(task, logits, labels)
    (gradient,) = torch.autograd.grad(losses.sum(), images)
    return losses.detach(), wrongness(task, logits.detach(), labels), gradient


def _check_eps(eps: float) -> None:
    if not eps >= 0 or eps == float("inf"):
        raise ValueError(f"attack eps must be finite and >= 0, got {eps}")


def fgsm(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    *,
    task: str,
    precision: Precision = FP32,
    **_: object,
) -> torch.Tensor:
    """One signed-gradient step of size eps (Goodfellow et al. 2015), clipped to [0, 1]."""
    _check_eps(eps)
    if eps == 0:
        return images.clone()
    _, _, gradient = _loss_and_gradient(model, images, labels, task, precision)
    return (images + eps * gradient.sign()).clamp(0, 1).detach()


def _l2_norm(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (tensor.dim() - 1))


def _project(images: torch.Tensor, adversarial: torch.Tensor, eps: float, norm: str):
    delta = adversarial - images
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        delta = delta * (eps / _l2_norm(delta)).clamp(max=1.0)
    # Clipping to [0, 1] only shrinks each coordinate of delta, so it stays in the ball.
    return (images + delta).clamp(0, 1)


def pgd(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    *,
    task: str,
    norm: str = "linf",
    steps: int = PGD_STEPS,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    precision: Precision = FP32,
) -> torch.Tensor:
    """Projected gradient ascent on the loss (Madry et al. 2018), worst iterate per example."""
    _check_eps(eps)
    if norm not in DEFAULT_EPS:
        raise unknown_choice("norm", norm, tuple(DEFAULT_EPS))
    if eps == 0 or steps == 0:
        return images.clone()
    step = STEP_SIZE_FACTOR * eps / steps if step_size is None else step_size
    with torch.no_grad(), precision.context():
        clean_logits = model(images).float()
    best = images.clone()
    best_loss = per_example_loss(task, clean_logits, labels)
    best_wrong = wrongness(task, clean_logits, labels)

    def keep_worse(candidate: torch.Tensor, loss: torch.Tensor, wrong: torch.Tensor) -> None:
        worse = (wrong > best_wrong) | ((wrong == best_wrong) & (loss > best_loss))
        best[worse] = candidate[worse].detach()
        best_loss[worse], best_wrong[worse] = loss[worse], wrong[worse]

    current = images
    if random_start:
        noise = torch.rand(images.shape, generator=generator).to(images.device) * 2 - 1
        if norm == "l2":
            noise = (
                noise
                / _l2_norm(noise)
                * torch.rand(len(images), generator=generator)
                .to(images.device)
                .view(-1, *[1] * (images.dim() - 1))
            )
        current = _project(images, images + eps * noise, eps, norm)
    for _ in range(steps):
        loss, wrong, gradient = _loss_and_gradient(model, current, labels, task, precision)
        keep_worse(current, loss, wrong)
        direction = gradient.sign() if norm == "linf" else gradient / _l2_norm(gradient)
        current = _project(images, current.detach() + step * direction, eps, norm)
    with torch.no_grad(), precision.context():
        logits = model(current).float()
    keep_worse(current, per_example_loss(task, logits, labels), wrongness(task, logits, labels))
    return best


def attack(
    name: str,
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    *,
    task: str,
    steps: int = PGD_STEPS,
    generator: torch.Generator | None = None,
    precision: Precision = FP32,
) -> torch.Tensor:
    """Adversarial versions of ``images`` (in [0, 1]) under the named attack and budget."""
    if name not in ATTACKS:
        raise unknown_choice("attack", name, ATTACKS.names_in_order())
    _check_eps(eps)
    return ATTACKS.get(name).run(
        model, images, labels, eps, task=task, steps=steps, generator=generator, precision=precision
    )


def _pgd_params(steps: int) -> dict:
    return {"pgd_steps": steps, "step_size": f"{STEP_SIZE_FACTOR:g} * eps / steps"}


def _pgd_with_norm(norm: str):
    def run(model, images, labels, eps, *, task, steps, generator, precision):
        return pgd(
            model, images, labels, eps, task=task, norm=norm, steps=steps,
            generator=generator, precision=precision,
        )  # fmt: skip

    return run


register_attack(Attack("fgsm", "linf", "one signed-gradient step of size eps", fgsm))
register_attack(
    Attack(
        "pgd-linf",
        "linf",
        "PGD: steps of 2.5 eps/steps on the gradient's sign, random start, Linf ball",
        _pgd_with_norm("linf"),
        params=_pgd_params,
    )
)
register_attack(
    Attack(
        "pgd-l2",
        "l2",
        "PGD with normalised gradients in the L2 ball",
        _pgd_with_norm("l2"),
        params=_pgd_params,
    )
)
