"""The CUDA check: one call on a lent GPU says whether eqdp is right there.

    python scripts/cuda_check.py [--out FILE] [--suite-data DIR]

1. Every registered model trains one step (fp32, batch 8, 28 px).
2. Strict fp32 (TF32 off): every model with a symmetry group is invariant to its group's
   rot90/flip actions (max |p(gx) - p(x)| over class probabilities <= 1e-5), and every
   DP-capable model's per-sample gradients equal a per-example loop (the error's norm
   over the example's whole gradient norm <= 1e-5).
3. The captured step equals the eager one: per-epoch training losses of 3 epochs
   (BreastMNIST-shaped random data, dropout off) agree to 1e-4 relative.
4. A one-epoch suite on the GPU with 4 workers (needs the data folder).

Prints one line per check and a summary; exit 1 if any check fails. The committed
output of the last run on a lent GPU is ``benchmarks/speed/cuda_check.txt``.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from eqdp.models import without_dropout

INVARIANCE_TOLERANCE = 1e-5
GRADIENT_TOLERANCE = 1e-5
CAPTURE_TOLERANCE = 1e-4
# Small widths where a model has them, for the CPU rehearsal only (on the GPU every
# model is checked at its registered size).
SMALL = {"cnn": {"width": 8}, "resnet18": {"width": 8}, "resnet50": {"width": 4},
         "p4-resnet18": {"width": 8}, "p4m-resnet18": {"width": 12},
         "e4-p4-resnet18": {"width": 8}, "e4-p4m-resnet18": {"width": 12}}  # fmt: skip
SKIP = {"arch-spec"}  # needs a spec file: covered by the eq-nasnet family


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failures = 0

    def add(self, ok: bool, text: str) -> None:
        self.failures += not ok
        line = f"{'ok  ' if ok else 'FAIL'} {text}"
        self.lines.append(line)
        print(line, flush=True)


def options(name: str, device: torch.device) -> dict:
    return SMALL.get(name, {}) if device.type == "cpu" else {}


def models() -> list[str]:
    import eqdp

    return [name for name in eqdp.list_models() if name not in SKIP]


def group_actions(group: str) -> list:
    """The pixel-grid actions of a registered model's final group (C4: rot90s; D4: + a flip)."""
    kind, order = group[0], int(group[1:])
    turns = (1, 2, 3) if order % 4 == 0 else ((2,) if order % 2 == 0 else ())
    actions = [lambda x, k=k: torch.rot90(x, k, (2, 3)) for k in turns]
    if kind == "D" and order % 2 == 0:  # D2, D4, ...: both axis flips are in the group
        actions.append(lambda x: torch.flip(x, (3,)))
    return actions


def check_training_steps(report: Report, device: torch.device) -> None:
    import eqdp

    for name in models():
        try:
            torch.manual_seed(0)
            model = eqdp.create_model(name, 1, 2, image_size=28, **options(name, device)).to(device)
            optimizer = torch.optim.Adam(model.parameters(), 1e-3)
            images = torch.randn(8, 1, 28, 28, device=device)
            loss = F.cross_entropy(model(images), torch.randint(0, 2, (8,), device=device))
            loss.backward()
            optimizer.step()
            report.add(bool(torch.isfinite(loss)), f"train step {name}: loss {loss.item():.4f}")
        except Exception as error:  # noqa: BLE001 - every model gets its line
            report.add(False, f"train step {name}: {type(error).__name__}: {error}")


@torch.no_grad()
def check_invariance(report: Report, device: torch.device) -> None:
    import eqdp
    from eqdp.models import model_spec

    for name in models():
        group = model_spec(name).group
        actions = group_actions(group) if group else []
        if not actions:
            continue
        torch.manual_seed(0)
        model = without_dropout(eqdp.create_model(name, 1, 3, **options(name, device)))
        model = model.to(device).eval()
        images = torch.randn(4, 1, 28, 28, device=device)
        reference = torch.softmax(model(images), 1)
        worst = max(
            (torch.softmax(model(act(images)), 1) - reference).abs().max().item() for act in actions
        )
        report.add(worst <= INVARIANCE_TOLERANCE, f"invariance {name} ({group}): {worst:.2e}")


def check_per_sample_gradients(report: Report, device: torch.device) -> None:
    from opacus import GradSampleModule

    import eqdp
    from eqdp.models import model_spec
    from eqdp.privacy.grad_sample.equivariant_conv import skip_batch_filter_gradients

    for name in models():
        if model_spec(name).dp_refusal is not None:
            continue
        torch.manual_seed(0)
        model = without_dropout(eqdp.create_model(name, 1, 2, dp=True, **options(name, device)))
        model = model.to(device)
        reference = copy.deepcopy(model)
        skip_batch_filter_gradients(model)
        wrapped = GradSampleModule(model, loss_reduction="sum")
        images = torch.randn(3, 1, 28, 28, device=device)
        labels = torch.randint(0, 2, (3,), device=device)
        F.cross_entropy(wrapped(images), labels, reduction="sum").backward()
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        worst = 0.0
        for i in range(3):
            reference.zero_grad()
            loss = F.cross_entropy(reference(images[i : i + 1]), labels[i : i + 1], reduction="sum")
            loss.backward()
            expected = dict(reference.named_parameters())
            # Relative to the example's whole gradient, the vector DP-SGD clips: a parameter
            # whose own gradient is ~0 would otherwise turn rounding into a large ratio.
            error = sum((p.grad_sample[i] - expected[n].grad).square().sum() for n, p in trainable)
            norm = sum(expected[n].grad.square().sum() for n, _ in trainable)
            worst = max(worst, (error.sqrt() / norm.sqrt().clamp_min(1e-12)).item())
        report.add(worst <= GRADIENT_TOLERANCE, f"per-sample gradients {name}: {worst:.2e}")


def check_capture(report: Report, device: torch.device) -> None:
    import eqdp
    from eqdp.config import TrainConfig
    from eqdp.data.medmnist_data import MedMNISTData, Split
    from eqdp.engine import fit

    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=generator)
        return Split(images, torch.randint(0, 2, (n, 1), generator=generator))

    data = MedMNISTData("breastmnist", 28, "binary-class", 1, 2, split(546), split(78), split(156))
    for name, kwargs in (("eq-nasnet-b0", {"dropout": 0.0}), ("nasnet-b0", {"dropout": 0.0}),
                          ("cnn", SMALL["cnn"]), ("resnet18", SMALL["resnet18"])):  # fmt: skip
        losses, engines, seconds = {}, {}, {}
        for engine in ("eager", "graph"):
            torch.manual_seed(1)
            model = without_dropout(eqdp.create_model(name, 1, 2, **kwargs))
            train = TrainConfig(epochs=3, batch_size=128, precision="fp32", engine=engine)
            started = time.perf_counter()
            result = fit(model, data, train, 1, device, evaluate_test=False)
            seconds[engine] = time.perf_counter() - started
            losses[engine] = [h.train_loss for h in result.history]
            engines[engine] = result.engine["name"]
        worst = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(*losses.values(), strict=True))
        report.add(
            worst <= CAPTURE_TOLERANCE and engines["graph"] == "cuda-graph",
            f"captured == eager {name}: relative loss difference {worst:.2e} over 3 epochs "
            f"({engines['graph']}; {seconds['eager']:.1f} s eager, {seconds['graph']:.1f} s graph)",
        )


def check_suite(report: Report, data_dir: str, device: str) -> None:
    folder = Path(tempfile.mkdtemp())
    suite = folder / "one-epoch.toml"
    suite.write_text(
        f'benchmark = "standard"\nresults_dir = "{folder / "results"}"\n'
        'models = ["cnn", "eq-nasnet-b0", "nasnet-b0", "resnet18"]\nseeds = [0]\n'
        "[train]\nepochs = 1\n[datasets.breastmnist]\n"
    )
    command = [sys.executable, "-m", "eqdp", "suite", str(suite), "--device", device,
               "--workers", "4", "--threads", "1", "--data-dir", data_dir]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    records = list((folder / "results").rglob("*.json"))
    report.add(
        done.returncode == 0 and len(records) == 4,
        f"one-epoch suite, 4 workers on {device}: {len(records)}/4 records in "
        f"{time.perf_counter() - started:.0f} s" + ("" if done.returncode == 0 else
                                                   f"\n{done.stdout[-800:]}{done.stderr[-800:]}"),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Also write the report here.")
    parser.add_argument("--suite-data", help="MedMNIST folder for the one-epoch suite.")
    parser.add_argument(
        "--device", default="cuda", choices=("cuda", "cpu"),
        help="cpu: rehearse the script before spending GPU time (no capture check)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU visible; the CUDA check runs on a GPU machine", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    report = Report()
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu (rehearsal)"
    report.add(True, f"device {name} torch {torch.__version__}")
    started = time.perf_counter()
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    check_training_steps(report, device)
    check_invariance(report, device)
    check_per_sample_gradients(report, device)
    if device.type == "cuda":
        check_capture(report, device)
    if args.suite_data:
        check_suite(report, args.suite_data, device.type)
    summary = f"{report.failures} failed; {time.perf_counter() - started:.0f} s"
    report.add(report.failures == 0, summary)
    if args.out:
        args.out.write_text("\n".join(report.lines) + "\n")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
