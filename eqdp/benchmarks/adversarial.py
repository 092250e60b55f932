"""The adversarial benchmark: clean and robust test ACC/AUC under attacks from the registry.

Budgets are in [0, 1] pixel space. Per attack, budgets are evaluated in
increasing order and an example already misclassified at a smaller budget stays
counted as misclassified at the larger ones (its perturbation lies in the larger
ball too), starting from the clean images: robust accuracy never exceeds clean
accuracy and never increases with eps, whatever a single attack run does.

Which attacks at which budgets are measurement axes, not part of the row key:
attacks run on one checkpoint in separate runs (FGSM and PGD now, AutoAttack
later) are one row, their results merged.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from eqdp.benchmarks.pretrained import resolve_evaluation
from eqdp.benchmarks.registry import Benchmark, Column, PlotSpec, register_benchmark
from eqdp.config.fields import config_class, option
from eqdp.errors import EqdpError

if TYPE_CHECKING:
    from torch import nn

    from eqdp.config.run import RunConfig
    from eqdp.data.medmnist_data import Split
    from eqdp.engine import Precision, ProgressCallback
    from eqdp.results.rows import Row


@config_class
class AdversarialOptions:
    attacks: tuple[str, ...] | None = option(
        None,
        "Attacks, comma list (see `eqdp list attacks`) [default: every attack but the slow "
        "autoattack].",
        flags=("--attack",),
    )
    attack_eps: tuple[float, ...] | None = option(
        None,
        "Attack budgets in [0,1] pixel space, comma list; 8/255 allowed [default: 1,2,4,8 /255 "
        "for Linf attacks, 0.1,0.25,0.5,1 for L2].",
        flags=("--eps",),
    )
    pgd_steps: int = option(10, "PGD iterations (step size 2.5 eps / steps).", label="pgd{}", gt=0)
    from_run: str | None = option(
        None, "Evaluate the checkpoint of this finished run instead of training.", key=False
    )


def chosen_attacks(options: dict) -> tuple[str, ...]:
    from eqdp.attacks import default_attacks

    return tuple(options.get("attacks") or default_attacks())


def budgets(options: dict, name: str) -> list[float]:
    """The given budgets for every attack, else the default budgets of the attack's norm."""
    from eqdp.attacks import ATTACKS, DEFAULT_EPS

    chosen = options.get("attack_eps") or DEFAULT_EPS[ATTACKS.get(name).norm]
    return sorted({float(eps) for eps in chosen})


def eps_limit(norm: str, channels: int, size: int) -> float:
    """The largest budget that still constrains anything: the [0, 1] pixel cube's radius
    in the attack's norm (1 for Linf, its diagonal sqrt(C*H*W) for L2). A larger eps
    is a typo for a smaller one (2 for 2/255), not a stronger attack."""
    return 1.0 if norm == "linf" else math.sqrt(channels * size * size)


def resolve_adversarial(config: RunConfig) -> RunConfig:
    from eqdp.attacks import ATTACKS
    from eqdp.data.catalog import dataset_info

    options = dict(config.options)
    options["attacks"] = list(chosen_attacks(options))
    for name in options["attacks"]:
        ATTACKS.get(name).check_task(dataset_info(config.dataset)["task"], config.dataset)
    info = dataset_info(config.dataset)
    for eps in options.get("attack_eps") or ():
        if not (eps >= 0 and math.isfinite(eps)):
            raise EqdpError(f"attack eps must be finite and >= 0, got {eps:g}")
        for name in options["attacks"]:
            limit = eps_limit(ATTACKS.get(name).norm, int(info["n_channels"]), config.size)
            if eps > limit:
                raise EqdpError(
                    f"attack eps {eps:g} is above {limit:g}, the largest {name} budget in [0, 1] "
                    f"pixel space at {config.size}px (valid: 0 <= eps <= {limit:g}; "
                    "8/255 style fractions allowed)"
                )
    return resolve_evaluation(config.replace(options=options))


def robust_evaluation(
    model: nn.Module,
    split: Split,
    task: str,
    attacks: dict[str, list[float]],
    seed: int = 0,
    batch_size: int = 512,
    steps: int = 10,
    on_progress: ProgressCallback | None = None,
    precision: Precision | None = None,
) -> list[dict]:
    """One ``{"attack", "norm", "eps", "acc", "auc"}`` per (attack, eps), eps ascending.

    ``on_progress`` gets a StageProgress after every attacked batch.
    """
    import torch

    from eqdp.attacks import ATTACKS, PixelSpaceModel, attack, wrongness
    from eqdp.engine import StageProgress, scores_from_logits
    from eqdp.engine.precision import FP32
    from eqdp.metrics import evaluate

    precision = precision or FP32
    pixel_model = PixelSpaceModel(model).eval()
    device = next(model.parameters()).device

    @torch.no_grad()
    def logits_of(images: torch.Tensor) -> torch.Tensor:
        outputs = []
        with precision.context():
            for start in range(0, len(images), batch_size):
                outputs.append(pixel_model(images[start : start + batch_size]).float())
        return torch.cat(outputs)

    # Same float ops as to_model_input, so eps 0 reproduces the clean predictions exactly.
    clean = split.images.to(device).float() / 255.0
    labels = split.labels.to(device)
    labels_np = split.labels.cpu().numpy()
    clean_logits = logits_of(clean)
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
                        precision=precision,
                    )
                )
                done += 1
                if on_progress is not None:
                    on_progress(StageProgress("attack", done, total, f"{name} eps {eps:.4g}"))
            adversarial = torch.cat(batches)
            logits = logits_of(adversarial)
            wrong = wrongness(task, logits, labels)
            better = wrong >= worst_wrong  # ties go to the new, larger-budget image
            worst = torch.where(better.view(-1, *[1] * (clean.dim() - 1)), adversarial, worst)
            worst_logits = torch.where(better[:, None], logits, worst_logits)
            worst_wrong = torch.maximum(wrong, worst_wrong)
            scores = scores_from_logits(task, worst_logits).cpu().numpy()
            metrics = evaluate(task, labels_np, scores)
            norm = ATTACKS.get(name).norm
            results.append({"attack": name, "norm": norm, "eps": eps, **metrics})
    return results


def run_adversarial(config: RunConfig, on_progress: ProgressCallback | None = None):
    from eqdp.attacks import ATTACKS, STEP_SIZE_FACTOR
    from eqdp.benchmarks.pretrained import train_or_load

    prepared = train_or_load(config, on_progress)
    context = prepared.context
    options = config.options
    attacks = {name: budgets(options, name) for name in chosen_attacks(options)}
    steps = int(options["pgd_steps"])
    started = time.perf_counter()
    results = robust_evaluation(
        context.model,
        context.data.test,
        context.data.task,
        attacks,
        seed=config.seed,
        batch_size=config.train.eval_batch_size,
        steps=steps,
        on_progress=on_progress,
        precision=context.precision,
    )
    params = {
        "space": "[0,1] pixels before normalisation",
        "pgd_steps": steps,
        "step_size": f"{STEP_SIZE_FACTOR:g} * eps / steps",
        "random_start": True,
        "monotone_in_eps": True,
    }
    for name in attacks:
        params |= ATTACKS.get(name).params(steps)
    extra = {
        "adversarial": {
            "clean": prepared.fit.test,
            "attacks": list(attacks),
            "params": params,
            "results": results,
        }
    }
    record = prepared.record(extra, time.perf_counter() - started)
    return record, prepared.fit.best_state


def merge_attacks(records: list[dict]) -> dict:
    """One record per attacked checkpoint, its results the union of its runs (newest wins)."""
    results: dict[tuple[str, float], dict] = {}
    for record in records:
        results |= {(r["attack"], r["eps"]): r for r in record["adversarial"]["results"]}
    newest = records[-1]
    attacks = sorted({a for record in records for a in record["adversarial"]["attacks"]})
    block = newest["adversarial"] | {"attacks": attacks, "results": list(results.values())}
    return newest | {"adversarial": block}


def pixel_budget_label(eps: float) -> str:
    """An attack budget in [0,1] pixels, written k/255 where it is one."""
    if 0 < eps < 1 and abs(eps * 255 - round(eps * 255)) < 1e-6:
        return f"{round(eps * 255)}/255"
    return f"{eps:g}"


def adversarial_columns(rows: list[Row]) -> list[Column]:
    """Clean test ACC, then robust ACC at every (attack, eps) present in the rows."""
    seen = {
        (r["attack"], r["eps"])
        for row in rows
        for record in row.members
        for r in record.get("adversarial", {}).get("results", [])
    }

    def robust_acc(attack: str, eps: float):
        def value(record: dict) -> float | None:
            for result in record.get("adversarial", {}).get("results", []):
                if result["attack"] == attack and math.isclose(result["eps"], eps):
                    return result["acc"]
            return None

        return value

    columns: list[Column] = [("clean ACC", lambda r: r["adversarial"]["clean"]["acc"], False)]
    columns += [(f"{a} {pixel_budget_label(e)}", robust_acc(a, e), False) for a, e in sorted(seen)]
    return columns


def adversarial_table(rows: list[Row]) -> str:
    from eqdp.report.tables import metric_table

    return metric_table(rows, adversarial_columns(rows))


def _points(record: dict, metric: str):
    adversarial = record["adversarial"]
    clean = adversarial["clean"].get(metric)
    points = [(f" {a}", None, clean) for a in adversarial["attacks"]]
    points += [(f" {r['attack']}", r["eps"], r.get(metric)) for r in adversarial["results"]]
    return [
        (panel, x, float(y))
        for panel, x, y in points
        if y is not None and (x is None or x > 0)  # eps 0 is the clean line
    ]


ADVERSARIAL = register_benchmark(
    Benchmark(
        name="adversarial",
        description="train (or load --from-run) then test ACC/AUC under FGSM, PGD or "
        "AutoAttack at several eps",
        options=AdversarialOptions,
        run=run_adversarial,
        resolve=resolve_adversarial,
        evaluates_trained_model=True,
        section="adversarial",
        axes=("attacks", "attack_eps"),
        table=adversarial_table,
        columns=adversarial_columns,
        plot=PlotSpec(
            x_label="attack eps ([0,1] pixels)",
            points=_points,
            reference="clean",
            tick_label=pixel_budget_label,
        ),
        merge=merge_attacks,
    )
)
