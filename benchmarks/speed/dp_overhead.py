"""Seconds per non-private step vs per DP-SGD step (Opacus), and their ratio.

    uv run python benchmarks/speed/dp_overhead.py [--models eq-nasnet,resnet18,cnn]
        [--batch-size 256] [--device cpu|cuda] [--steps 5] [--json]

Times are medians over the timed steps. Both steps use the DP variant of the
model (GroupNorm) and the same batch, so the ratio is the price of per-sample
gradients, clipping and noise alone. Peak memory
is the process' peak RSS on CPU (monotone over the run, so later models inherit
earlier peaks) and torch's peak allocation on CUDA.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

# isort: off
import eqdp  # first, as in the CLI: it turns on torch's huge pages, read once at torch's import
import torch
import torch.nn.functional as F
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, TensorDataset

# isort: on
from eqdp.privacy.grad_sample.equivariant_conv import skip_batch_filter_gradients
from eqdp.runtime import reuse_freed_memory


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_steps(step, steps: int, device: torch.device) -> float:
    """Median seconds per step after one warm-up step: robust to a busy neighbour."""
    step()
    durations = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def measure(name: str, batch_size: int, steps: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    images = torch.randn(batch_size, 1, 28, 28, device=device)
    labels = torch.randint(0, 2, (batch_size,), device=device)

    model = eqdp.create_model(name, 1, 2, dp=True).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def plain_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()

    nonprivate = time_steps(plain_step, steps, device)

    private_model = eqdp.create_model(name, 1, 2, dp=True).to(device)
    skip_batch_filter_gradients(private_model)
    loader = DataLoader(TensorDataset(images.cpu(), labels.cpu()), batch_size=batch_size)
    engine = PrivacyEngine()
    private_model, dp_optimizer, _ = engine.make_private(
        module=private_model,
        optimizer=torch.optim.Adam(private_model.parameters(), lr=1e-3),
        data_loader=loader,
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        poisson_sampling=False,
    )

    def dp_step() -> None:
        dp_optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(private_model(images), labels).backward()
        dp_optimizer.step()

    private = time_steps(dp_step, steps, device)
    return {
        "model": name,
        "device": device.type,
        "batch_size": batch_size,
        "nonprivate_s": round(nonprivate, 4),
        "dp_s": round(private, 4),
        "ratio": round(private / nonprivate, 3),
        "peak_mem_mb": round(peak_memory_mb(device), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="eq-nasnet,resnet18,cnn")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="serve all allocations from a never-trimmed heap, as EQDP_KEEP_FREED_MEMORY=1 "
        "does for the CLI (see eqdp/runtime.py); applies to both steps",
    )
    args = parser.parse_args()
    if args.keep_freed_memory:
        reuse_freed_memory()
    device = torch.device(args.device)
    if not args.json:
        header = ("model", "device", "non-private s", "DP s", "ratio", "peak MB")
        print("{:<12} {:<6} {:>13} {:>8} {:>6} {:>8}".format(*header))
    for name in args.models.split(","):
        row = measure(name, args.batch_size, args.steps, device)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(
                f"{row['model']:<12} {row['device']:<6} {row['nonprivate_s']:>13.3f} "
                f"{row['dp_s']:>8.3f} {row['ratio']:>6.2f} {row['peak_mem_mb']:>8.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
