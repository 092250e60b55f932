"""Seconds per non-private step vs per DP-SGD step, per clipping mode, with peak memory.

    uv run python benchmarks/speed/dp_overhead.py [--models eq-nasnet-b0,nasnet-b0,cnn]
        [--clipping instantiate,ghost] [--batch-size 256] [--device cpu|cuda]
        [--threads 1] [--steps 5] [--json]

Every step uses the DP variant of the model (GroupNorm) and the same batch, so
the ratio DP / non-DP is the price of clipping and noise alone (Opacus'
``instantiate``, which holds every per-example gradient, or eqdp's norm-only
``ghost``, see ``eqdp.privacy.norm_sample``). The steps of all modes are timed
in rotation (one step of each, repeated), so a busy neighbour slows them alike;
a mode's time is its fastest step (the least disturbed; the median is in the
JSON). On CPU a step's time is the process' CPU time (``time.process_time``; with
``--threads 1`` that is the step's compute, not the time other processes held the
core); on CUDA it is wall time between synchronisations. The target of issue 26
is a ratio of at most 1.3.

Peak memory: on CUDA, torch's peak allocation during the mode's first step,
above what was allocated before it; on CPU (Linux), the peak resident set during
two steps of a fresh process that runs only that mode (the high-water mark is
per process), above its resident set before them. Either way the number is what
the step itself adds: activations, gradients, per-example gradients. The
target: DP within 2x of the non-private peak.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings

# isort: off
import eqdp  # first, as in the CLI: it turns on torch's huge pages, read once at torch's import
import torch
import torch.nn.functional as F
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, TensorDataset

# isort: on
from eqdp.privacy.dp_sgd import make_private
from eqdp.runtime import reuse_freed_memory

MODES = ("instantiate", "ghost")
TARGET_RATIO = 1.3
TARGET_MEMORY = 2.0


def memory_status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its high-water mark) of this process, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the high-water mark to the current resident set,
    so the peak excludes building the model (escnn's basis solver peaks higher than a step)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def make_step(name: str, mode: str, images, labels, device: torch.device):
    """One training step of ``mode`` (non-private or a clipping mode), as a closure."""
    model = eqdp.create_model(name, 1, 2, dp=True).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    if mode != "non-private":
        loader = DataLoader(TensorDataset(images.cpu(), labels.cpu()), batch_size=len(images))
        model, optimizer, _ = make_private(
            PrivacyEngine(),
            model,
            optimizer,
            loader,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            noise_generator=torch.Generator(device=device).manual_seed(0),
            clipping=mode,
        )
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()

    return step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch(batch_size: int, device: torch.device):
    torch.manual_seed(0)
    images = torch.randn(batch_size, 1, 28, 28, device=device)
    return images, torch.randint(0, 2, (batch_size,), device=device)


def time_modes(name: str, modes: list[str], args, device: torch.device) -> dict[str, dict]:
    """Each mode's step times, measured in rotation; CUDA peak memory per mode."""
    images, labels = batch(args.batch_size, device)
    steps, timings, memory = {}, {mode: [] for mode in modes}, {}
    for mode in modes:
        steps[mode] = make_step(name, mode, images, labels, device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        steps[mode]()  # warm-up (and, on CUDA, the memory measurement)
        synchronize(device)
        if device.type == "cuda":
            memory[mode] = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    for _ in range(args.steps):
        for mode in modes:
            synchronize(device)
            started = clock()
            steps[mode]()
            synchronize(device)
            timings[mode].append(clock() - started)
    return {
        mode: {
            "min_s": min(timings[mode]),
            "median_s": statistics.median(timings[mode]),
            **({"peak_mb": memory[mode]} if mode in memory else {}),
        }
        for mode in modes
    }


def cpu_peak_memory(name: str, mode: str, args) -> float:
    """The step's own peak resident memory (MB), in a fresh process running only ``mode``."""
    command = [sys.executable, __file__, "--memory-child", mode, "--models", name,
               "--batch-size", str(args.batch_size), "--threads", str(args.threads)]  # fmt: skip
    if args.keep_freed_memory:
        command.append("--keep-freed-memory")
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])["step_peak_mb"]


def memory_child(name: str, mode: str, args) -> None:
    device = torch.device("cpu")
    images, labels = batch(args.batch_size, device)
    step = make_step(name, mode, images, labels, device)
    reset_peak_rss()
    before = memory_status_mb("VmRSS")
    step()
    step()
    print(json.dumps({"step_peak_mb": memory_status_mb("VmHWM") - before}))


def measure(name: str, args, device: torch.device) -> dict:
    modes = ["non-private", *args.clipping]
    timed = time_modes(name, modes, args, device)
    if device.type == "cpu":
        for mode in modes:
            timed[mode]["peak_mb"] = cpu_peak_memory(name, mode, args)
    plain = timed["non-private"]
    row = {
        "model": name,
        "device": device.type,
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "batch_size": args.batch_size,
        "nonprivate_s": round(plain["min_s"], 4),
        "nonprivate_median_s": round(plain["median_s"], 4),
        "nonprivate_peak_mb": round(plain["peak_mb"], 1),
    }
    for mode in args.clipping:
        ratio = timed[mode]["min_s"] / plain["min_s"]
        memory_ratio = timed[mode]["peak_mb"] / max(plain["peak_mb"], 1e-9)
        row[mode] = {
            "dp_s": round(timed[mode]["min_s"], 4),
            "dp_median_s": round(timed[mode]["median_s"], 4),
            "ratio": round(ratio, 3),
            "peak_mb": round(timed[mode]["peak_mb"], 1),
            "memory_ratio": round(memory_ratio, 2),
            "time_target_met": ratio <= TARGET_RATIO,
            "memory_target_met": memory_ratio <= TARGET_MEMORY,
        }
    return row


def print_row(row: dict, modes: list[str]) -> None:
    for mode in modes:
        result = row[mode]
        verdict = "met" if result["time_target_met"] else "MISSED"
        memory = "met" if result["memory_target_met"] else "MISSED"
        print(
            f"{row['model']:<14} {mode:<12} {row['nonprivate_s']:>9.3f} {result['dp_s']:>8.3f} "
            f"{result['ratio']:>6.2f} {verdict:>7} {row['nonprivate_peak_mb']:>10.0f} "
            f"{result['peak_mb']:>8.0f} {result['memory_ratio']:>6.2f} {memory:>7}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="eq-nasnet-b0,nasnet-b0,cnn")
    parser.add_argument("--clipping", default=",".join(MODES), help="comma list of modes")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per mode")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads; 0: torch's")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--memory-child", choices=["non-private", *MODES], help=argparse.SUPPRESS)
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="serve all allocations from a never-trimmed heap, as EQDP_KEEP_FREED_MEMORY=1 "
        "does for the CLI (see eqdp/runtime.py); applies to every step",
    )
    args = parser.parse_args()
    # Opacus' notes on a seeded generator and on a first layer whose input needs no gradient.
    warnings.filterwarnings("ignore", message="Secure RNG turned off")
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    args.clipping = args.clipping.split(",")
    if unknown := set(args.clipping) - set(MODES):
        parser.error(f"unknown clipping modes {sorted(unknown)}; valid: {', '.join(MODES)}")
    if args.keep_freed_memory:
        reuse_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.models, args.memory_child, args)
        return
    device = torch.device(args.device)
    if not args.json:
        where = f"{device.type}" + (
            f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
        )
        print(
            f"batch {args.batch_size}, {where}; step time = fastest of {args.steps} (rotated); "
            f"targets: DP/non-DP <= {TARGET_RATIO}x, DP peak <= {TARGET_MEMORY}x non-private"
        )
        header = ("model", "clipping", "non-DP s", "DP s", "ratio", "target", "non-DP MB", "DP MB",
                  "x mem", "target")  # fmt: skip
        print("{:<14} {:<12} {:>9} {:>8} {:>6} {:>7} {:>10} {:>8} {:>6} {:>7}".format(*header))
    for name in args.models.split(","):
        row = measure(name, args, device)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print_row(row, args.clipping)


if __name__ == "__main__":
    main()
