"""EfficientNet's compound scaling of B0 into B1-B3.

Depth x alpha, width x beta, resolution x gamma per step phi, with the grid
searched under alpha * beta^2 * gamma^2 ~ 2 (one step about doubles the FLOPs),
as Tan & Le (2019) did: each candidate is B0 scaled once (phi = 1), proxy-trained
on one dataset, scored on its validation split (never test). The best candidate's
coefficients give B_phi = B0 scaled by (alpha^phi, beta^phi, gamma^phi).

Resolutions above 28 px need a larger real file: the candidates train on the
dataset's 64 px file downsampled (antialiased) to round(28 * gamma), so only
datasets with a 64 px file (here BreastMNIST) can run the grid.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from pathlib import Path
from typing import Any

from eqdp.errors import EqdpError
from eqdp.models.arch.spec import ArchSpec, scaled

ALPHAS = (1.0, 1.1, 1.2, 1.4)  # depth
BETAS = (1.0, 1.1, 1.2)  # width
GAMMAS = (1.0, 1.15, 1.3)  # resolution
FLOPS_PER_STEP = 2.0
TOLERANCE = 0.2  # alpha * beta^2 * gamma^2 within 2 +- this
SOURCE_SIZE = 64


def candidates(
    alphas=ALPHAS, betas=BETAS, gammas=GAMMAS, tolerance: float = TOLERANCE
) -> list[tuple[float, float, float]]:
    return [
        (a, b, g)
        for a, b, g in itertools.product(alphas, betas, gammas)
        if abs(a * b * b * g * g - FLOPS_PER_STEP) <= tolerance
    ]


def member(b0: ArchSpec, phi: int, coefficients: tuple[float, float, float], name: str) -> ArchSpec:
    alpha, beta, gamma = coefficients
    return scaled(b0, width=beta**phi, depth=alpha**phi, resolution=gamma**phi, name=name)


def resized(data, size: int):
    """The data at ``size`` px by antialiased bilinear downsampling of a larger real file."""
    import torch
    import torch.nn.functional as F

    from eqdp.data.medmnist_data import Split

    if size > data.size:
        raise EqdpError(f"cannot train at {size} px from the {data.size} px file (no upsampling)")

    def shrink(split: Split) -> Split:
        if size == data.size or len(split) == 0:
            return split
        images = F.interpolate(
            split.images.float(), size=(size, size), mode="bilinear", antialias=True,
            align_corners=False,
        )  # fmt: skip
        return Split(images.round().clamp(0, 255).to(torch.uint8), split.labels)

    return dataclasses.replace(
        data, size=size, train=shrink(data.train), val=shrink(data.val), test=shrink(data.test)
    )


def evaluate_candidate(
    spec: ArchSpec, flag: str, epochs: int, seeds: tuple[int, ...], data_dir: str | None,
    verify_md5: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Mean best val AUC of the spec over seeds, trained at ``spec.resolution``."""
    from eqdp.config.train import TrainConfig
    from eqdp.data.medmnist_data import load_dataset
    from eqdp.engine import fit, seed_everything, select_device
    from eqdp.models.arch.network import build_network

    data = resized(load_dataset(flag, SOURCE_SIZE, data_dir, verify_md5), spec.resolution)
    data = data.without_test()
    aucs, started = [], time.perf_counter()
    for seed in seeds:
        seed_everything(seed)
        model = build_network(spec, data.n_channels, data.n_classes)
        train = TrainConfig(epochs=epochs, batch_size=128, lr=1e-3)
        result = fit(model, data, train, seed, select_device("auto"), evaluate_test=False)
        aucs.append(result.val["auc"])
    return {
        "val_auc": sum(aucs) / len(aucs),
        "val_aucs": aucs,
        "seconds": round(time.perf_counter() - started, 1),
    }


def grid_search(
    b0: ArchSpec, flag: str = "breastmnist", epochs: int = 20, seeds: tuple[int, ...] = (0, 1),
    data_dir: str | None = None, verify_md5: bool = True, on_result=None,
) -> dict[str, Any]:  # fmt: skip
    """Score every candidate (phi = 1); the best by mean val AUC, ties to fewer MACs."""
    from eqdp.search.objective import measure

    rows = []
    for alpha, beta, gamma in candidates():
        spec = member(b0, 1, (alpha, beta, gamma), f"{b0.name}-candidate")
        params, macs = measure(spec, spec.resolution)
        outcome = evaluate_candidate(spec, flag, epochs, seeds, data_dir, verify_md5)
        row = {
            "alpha": alpha, "beta": beta, "gamma": gamma,
            "flops_factor": round(alpha * beta**2 * gamma**2, 3),
            "resolution": spec.resolution, "params": params, "mmacs": macs / 1e6, **outcome,
        }  # fmt: skip
        rows.append(row)
        if on_result is not None:
            on_result(row)
    valid = [r for r in rows if not math.isnan(r["val_auc"])]
    if not valid:
        raise EqdpError("every compound-scaling candidate gave a NaN validation AUC")
    best = max(valid, key=lambda r: (r["val_auc"], -r["mmacs"]))
    return {
        "rule": "EfficientNet compound scaling: depth alpha^phi, width beta^phi, resolution "
        "gamma^phi, alpha*beta^2*gamma^2 ~ 2; coefficients = best mean val AUC at phi = 1",
        "dataset": flag, "source_size": SOURCE_SIZE, "epochs": epochs, "seeds": list(seeds),
        "candidates": rows, "chosen": {k: best[k] for k in ("alpha", "beta", "gamma")},
    }  # fmt: skip


def write_family(b0: ArchSpec, grid: dict, spec_dir: Path, members: int = 3) -> list[Path]:
    chosen = grid["chosen"]
    coefficients = (chosen["alpha"], chosen["beta"], chosen["gamma"])
    paths = []
    for phi in range(1, members + 1):
        name = f"eq-nasnet-b{phi}"
        spec = member(b0, phi, coefficients, name)
        description = (
            f"B0 compound-scaled, phi={phi}: depth x{coefficients[0] ** phi:.3g}, "
            f"width x{coefficients[1] ** phi:.3g}, resolution {spec.resolution} px"
        )
        spec = ArchSpec.from_dict({**spec.as_dict(), "description": description})
        paths.append(spec.save(spec_dir / f"{name}.json"))
    return paths


def save_grid(grid: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(grid, indent=2) + "\n")
    return path
