"""The adversarial benchmark: clean and robust test ACC/AUC under FGSM, PGD and AutoAttack.

Budgets are in [0, 1] pixel space. Per attack, budgets are evaluated in
increasing order and an example already misclassified at a smaller budget stays
counted as misclassified at the larger ones (its perturbation lies in the larger
ball too), starting from the clean images: robust accuracy never exceeds clean
accuracy and never increases with eps, whatever a single attack run does.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from eqdp.attacks import (
    ATTACKS,
    DEFAULT_ATTACKS,
    DEFAULT_EPS,
    NORMS,
    PGD_STEPS,
    STEP_SIZE_FACTOR,
    PixelSpaceModel,
    attack,
    wrongness,
)
from eqdp.attacks.autoattack import autoattack_params
from eqdp.benchmarks.base import RunConfig, accept_options, register_benchmark
from eqdp.benchmarks.pretrained import source_record, train_or_load
from eqdp.data import Split
from eqdp.data.medmnist_data import MULTI_LABEL, dataset_info
from eqdp.errors import EqdpError, unknown_choice
from eqdp.metrics import evaluate
from eqdp.train import ProgressCallback, StageProgress, autocast_for, scores_from_logits

OPTIONS: tuple[str, ...] = ("attacks", "attack_eps", "from_run")


def check_adversarial(config: RunConfig) -> None:
    accept_options(config, OPTIONS)
    for name in config.options.get("attacks", DEFAULT_ATTACKS):
        if name not in ATTACKS:
            raise unknown_choice("attack", name, ATTACKS)
        if name == "autoattack" and dataset_info(config.dataset)["task"] == MULTI_LABEL:
            raise EqdpError(
                f"autoattack needs a single-label task; {config.dataset} is multi-label"
            )
    for eps in config.options.get("attack_eps", ()):
        if not (eps >= 0 and math.isfinite(eps)):
            raise EqdpError(f"attack eps must be finite and >= 0, got {eps:g}")
    source_record(config)


def budgets(config: RunConfig, name: str) -> list[float]:
    """The given --eps for every attack, else the default budgets of the attack's norm."""
    chosen = config.options.get("attack_eps") or DEFAULT_EPS[NORMS[name]]
    return sorted({float(eps) for eps in chosen})


@torch.no_grad()
def _logits(model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    outputs = []
    for start in range(0, len(images), batch_size):
        with autocast_for(images.device):
            outputs.append(model(images[start : start + batch_size]).float())
    return torch.cat(outputs)


def robust_evaluation(
    model: nn.Module,
    split: Split,
    task: str,
    attacks: dict[str, list[float]],
    seed: int = 0,
    batch_size: int = 512,
    steps: int = PGD_STEPS,
    on_progress: ProgressCallback | None = None,
) -> list[dict]:
    """One ``{"attack", "norm", "eps", "acc", "auc"}`` per (attack, eps), eps ascending.

    ``on_progress`` gets a StageProgress after every attacked batch.
    """
    pixel_model = PixelSpaceModel(model).eval()
    device = next(model.parameters()).device
    # Same float ops as to_model_input, so eps 0 reproduces the clean predictions exactly.
    clean = split.images.to(device).float() / 255.0
    labels = split.labels.to(device)
    labels_np = split.labels.cpu().numpy()
    clean_logits = _logits(pixel_model, clean, batch_size)
    starts = range(0, len(clean), batch_size)
    total, done = len(starts) * sum(len(eps_list) for eps_list in attacks.values()), 0
    results = []
    for name, eps_list in attacks.items():
        generator = torch.Generator().manual_seed(seed)
        worst, worst_logits = clean, clean_logits
        worst_wrong = wrongness(task, clean_logits, labels)
        for eps in sorted(eps_list):
            batches = []
            for start in starts:
                batches.append(
                    attack(
                        name,
                        pixel_model,
                        clean[start : start + batch_size],
                        labels[start : start + batch_size],
                        eps,
                        task=task,
                        steps=steps,
                        generator=generator,
                    )
                )
                done += 1
                if on_progress is not None:
                    on_progress(StageProgress("attack", done, total, f"{name} eps {eps:.4g}"))
            adversarial = torch.cat(batches)
            logits = _logits(pixel_model, adversarial, batch_size)
            wrong = wrongness(task, logits, labels)
            better = wrong >= worst_wrong  # ties go to the new, larger-budget image
            worst = torch.where(better.view(-1, *[1] * (clean.dim() - 1)), adversarial, worst)
            worst_logits = torch.where(better[:, None], logits, worst_logits)
            worst_wrong = torch.maximum(wrong, worst_wrong)
            scores = scores_from_logits(task, worst_logits).cpu().numpy()
            metrics = evaluate(task, labels_np, scores)
            results.append({"attack": name, "norm": NORMS[name], "eps": eps, **metrics})
    return results


@register_benchmark(
    "adversarial",
    "train (or load --from-run) then test ACC/AUC under FGSM and PGD at several eps",
    check=check_adversarial,
)
def run_adversarial(
    config: RunConfig, on_progress: ProgressCallback | None = None
) -> tuple[dict, dict]:
    prepared = train_or_load(config, on_progress)
    context = prepared.context
    chosen = config.options.get("attacks", DEFAULT_ATTACKS)
    attacks = {name: budgets(config, name) for name in chosen}
    started = time.perf_counter()
    results = robust_evaluation(
        context.model,
        context.data.test,
        context.data.task,
        attacks,
        seed=config.seed,
        batch_size=config.train.eval_batch_size,
        on_progress=on_progress,
    )
    extra = {
        "adversarial": {
            "clean": prepared.fit.test,
            "attacks": list(attacks),
            "params": {
                "space": "[0,1] pixels before normalisation",
                "pgd_steps": PGD_STEPS,
                "step_size": f"{STEP_SIZE_FACTOR:g} * eps / steps",
                "random_start": True,
                "monotone_in_eps": True,
                **({"autoattack": autoattack_params()} if "autoattack" in attacks else {}),
            },
            "results": results,
        }
    }
    return prepared.record(extra, time.perf_counter() - started), prepared.fit.best_state
