"""Training throughput per model: eager steps against the captured CUDA graph.

    python benchmarks/speed/train_throughput.py --device cuda [--json] [--models a,b]

For each model: training img/s of the eager step and of the whole step captured in
one CUDA graph (``eqdp.engine.steps``), their ratio, and the peak memory of each.
Batch 128 at 28 px, strict fp32 unless --precision says otherwise; uint8 images
already on the device, as in a run. On CPU the captured engine does not exist (a run
uses eager there): the script prints eager img/s and peak RSS only.

Targets (issue "full protocol at GPU speed"): eq-nasnet-b0 captured >= 5x eager at
batch 128 on CUDA. Ratios are printed, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import torch

DEFAULT_MODELS = "eq-nasnet-b0,nasnet-b0,cnn,efficientnet-b0,resnet18,wrn-16-4,vit"
TARGETS = {"eq-nasnet-b0": 5.0}  # captured / eager on CUDA


def images_per_second(engine: str, name: str, device: torch.device, precision: str,
                      batch: int, steps: int) -> tuple[float, float]:  # fmt: skip
    """(img/s, peak memory in MB) of ``steps`` training steps after a warm-up."""
    import eqdp
    from eqdp.config import TrainConfig
    from eqdp.data.augment import BatchAugmenter
    from eqdp.data.medmnist_data import Split
    from eqdp.engine import Precision
    from eqdp.engine.steps import EagerSteps, GraphSteps
    from eqdp.engine.strategy import TrainingStrategy

    torch.manual_seed(0)
    n = batch * 8
    split = Split(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, device=device),
                  torch.randint(0, 2, (n, 1), device=device))  # fmt: skip
    model = eqdp.create_model(name, 1, 2, image_size=28).to(device)
    train = TrainConfig(batch_size=batch, precision=precision)
    strategy = TrainingStrategy()
    strategy.start(model, n, train, 0, device)
    policy, augmenter = Precision(precision), BatchAugmenter("none", 0)
    if engine == "graph":
        runner = GraphSteps(model, strategy.optimizer, "binary-class", policy, augmenter, split,
                            [batch])  # fmt: skip
    else:
        runner = EagerSteps(strategy, "binary-class", policy, augmenter)
    indices = [torch.arange(i * batch, (i + 1) * batch, device=device) % n for i in range(steps)]
    for index in indices[:5]:
        runner.step(split, index)
    runner.take_loss_sum()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for index in indices:
        runner.step(split, index)
    runner.take_loss_sum()  # synchronises
    seconds = time.perf_counter() - started
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return batch * steps / seconds, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "tf32", "bf16"))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="One JSON object per model.")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA GPU is visible; use --device cpu", file=sys.stderr)
        return 2
    if args.device == "cpu":
        torch.set_num_threads(1)
    device = torch.device(args.device)
    engines = ("eager", "graph") if device.type == "cuda" else ("eager",)
    if not args.json:
        print(f"{'model':18} {'eager img/s':>12} {'graph img/s':>12} {'ratio':>6} "
              f"{'eager MB':>9} {'graph MB':>9}  ({args.device}, {args.precision}, "
              f"batch {args.batch})")  # fmt: skip
    for name in args.models.split(","):
        row: dict = {"model": name, "device": args.device, "precision": args.precision}
        for engine in engines:
            try:
                rate, peak = images_per_second(engine, name, device, args.precision, args.batch,
                                               args.steps)  # fmt: skip
                row[engine] = {"images_per_second": round(rate, 1), "peak_mb": round(peak, 1)}
            except Exception as error:  # noqa: BLE001 - one model's failure is a row
                row[engine] = {"error": f"{type(error).__name__}: {str(error)[:120]}"}
        eager, graph = row.get("eager", {}), row.get("graph", {})
        if "images_per_second" in eager and "images_per_second" in graph:
            row["ratio"] = round(graph["images_per_second"] / eager["images_per_second"], 2)
            if name in TARGETS:
                met = "met" if row["ratio"] >= TARGETS[name] else "missed"
                row["target"] = f">= {TARGETS[name]}x: {met}"
        if args.json:
            print(json.dumps(row), flush=True)
            continue

        def cell(part: dict, key: str, width: int) -> str:
            value = part.get(key)
            return f"{value:>{width},.0f}" if isinstance(value, float) else f"{'-':>{width}}"

        ratio = f"{row['ratio']:>5.1f}x" if "ratio" in row else f"{'-':>6}"
        errors = " ".join(f"{e}: {p['error']}" for e, p in (("eager", eager), ("graph", graph))
                          if "error" in p)  # fmt: skip
        print(f"{name:18} {cell(eager, 'images_per_second', 12)} "
              f"{cell(graph, 'images_per_second', 12)} {ratio} {cell(eager, 'peak_mb', 9)} "
              f"{cell(graph, 'peak_mb', 9)}  {row.get('target', '')}{errors}",
              flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
