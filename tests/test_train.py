from __future__ import annotations

import sys
from pathlib import Path

import torch

import eqdp
from eqdp.benchmarks import run_benchmark
from eqdp.config import RunConfig, TrainConfig
from eqdp.data import load_dataset
from eqdp.engine import fit
from eqdp.results import load_checkpoint


def tiny_config(synthetic_dir: Path, **changes) -> RunConfig:
    values = dict(
        benchmark="standard",
        model="cnn",
        dataset="breastmnist",
        train=TrainConfig(epochs=2, batch_size=16),
        device="cpu",
        data_dir=str(synthetic_dir),
        verify_md5=False,
        model_kwargs={"width": 4},
    )
    values.update(changes)
    return RunConfig(**values)


def test_same_seed_same_result(synthetic_dir: Path) -> None:
    data = load_dataset("breastmnist", 28, synthetic_dir, verify_md5=False)
    results = []
    for _ in range(2):
        torch.manual_seed(123)
        model = eqdp.create_model("cnn", 1, 2, width=4)
        results.append(
            fit(model, data, TrainConfig(epochs=2, batch_size=16), 7, torch.device("cpu"))
        )
    assert results[0].test == results[1].test
    assert [h.train_loss for h in results[0].history] == [h.train_loss for h in results[1].history]


def test_best_epoch_is_the_best_validation_auc(synthetic_dir: Path) -> None:
    data = load_dataset("breastmnist", 28, synthetic_dir, verify_md5=False)
    model = eqdp.create_model("eq-cnn", 1, 2, widths=(2, 4))
    result = fit(model, data, TrainConfig(epochs=3, batch_size=16), 0, torch.device("cpu"))
    best = max(result.history, key=lambda h: h.val_auc)
    assert result.best_epoch == best.epoch
    assert result.val["auc"] == best.val_auc


def test_lr_schedule_drops_at_half_and_three_quarters(synthetic_dir: Path) -> None:
    data = load_dataset("breastmnist", 28, synthetic_dir, verify_md5=False)
    model = eqdp.create_model("cnn", 1, 2, width=4)
    result = fit(model, data, TrainConfig(epochs=4, batch_size=32, lr=1e-2), 0, torch.device("cpu"))
    assert [round(h.lr, 6) for h in result.history] == [1e-2, 1e-2, 1e-3, 1e-4]


def test_run_writes_record_and_loadable_checkpoint(synthetic_dir: Path, tmp_path: Path) -> None:
    record, path = run_benchmark(
        tiny_config(synthetic_dir, model="eq-cnn", model_kwargs={"widths": (2, 4)}), tmp_path
    )
    assert path.is_file() and path.parent == tmp_path / "standard" / "breastmnist_28" / "eq-cnn"
    assert record["model_info"]["group"] == "D4" and record["privacy"] is None
    assert record["config"]["train"]["epochs"] == 2 and "data_dir" not in record["config"]
    assert record["env"]["torch"] == torch.__version__
    state = load_checkpoint(record["run_id"])
    model = eqdp.create_model("eq-cnn", 1, 2, widths=(2, 4))
    model.load_state_dict(state)
    assert eqdp.load_records(tmp_path)[0]["run_id"] == record["run_id"]


def test_benchmark_run_is_reproducible_from_its_seed(synthetic_dir: Path, tmp_path: Path) -> None:
    first, _ = run_benchmark(tiny_config(synthetic_dir, seed=3), tmp_path)
    second, _ = run_benchmark(tiny_config(synthetic_dir, seed=3), tmp_path)
    other, _ = run_benchmark(tiny_config(synthetic_dir, seed=4), tmp_path)

    def numbers(record: dict) -> list[dict]:  # the history without its wall times
        return [{k: v for k, v in h.items() if k != "seconds"} for h in record["history"]]

    assert first["metrics"] == second["metrics"]
    assert numbers(first) == numbers(second)
    assert numbers(first) != numbers(other)


def test_reuse_freed_memory_sets_glibc_malloc_options_on_linux() -> None:
    import platform

    from eqdp.runtime import reuse_freed_memory

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert reuse_freed_memory() is glibc


SPY_ON_TORCH_IMPORT = """
import os, sys
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":  # report, then stop: the rest of the import is not needed
            print("at torch import:", os.environ.get("THP_MEM_ALLOC_ENABLE"), flush=True)
            os._exit(0)
sys.meta_path.insert(0, Spy())
import eqdp  # imports no torch itself (lazy exports): torch comes next, after eqdp
import torch
"""


def test_import_eqdp_turns_on_torch_huge_pages_before_torch_is_imported() -> None:
    import os
    import subprocess

    def value_seen_by_torch(**environment: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
        run = subprocess.run(
            [sys.executable, "-c", SPY_ON_TORCH_IMPORT],
            env=env | environment, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return run.stdout.strip()

    assert value_seen_by_torch() == "at torch import: 1"
    assert value_seen_by_torch(THP_MEM_ALLOC_ENABLE="0") == "at torch import: 0"


def test_fit_reports_its_plan_then_images_within_epochs(
    synthetic_dir: Path, monkeypatch
) -> None:
    from eqdp.engine import EpochStats, TrainingProgress

    monkeypatch.setattr(TrainingProgress, "EVERY", 0.0)  # every batch
    data = load_dataset("breastmnist", 28, synthetic_dir, verify_md5=False)
    updates: list = []
    model = eqdp.create_model("cnn", 1, 2, width=4)
    fit(model, data, TrainConfig(epochs=2, batch_size=16), 0, torch.device("cpu"),
        on_progress=updates.append)  # fmt: skip
    training = [u for u in updates if isinstance(u, TrainingProgress)]
    assert training[0].images == 0 and training[0].planned == 2 * 64  # the plan, first
    assert [u.images for u in training[1:]] == [16, 32, 48, 64, 80, 96, 112, 128]
    assert training[-1].eta_seconds() == 0.0 and training[1].eta_seconds() > 0
    assert [u.epoch for u in updates if isinstance(u, EpochStats)] == [1, 2]


def test_a_run_is_bit_identical_across_processes_and_process_histories(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    """Same seed and thread count: the same numbers in a fresh process, and in a process
    that built and trained other models first (lazily filled caches, RNG draws)."""
    import json
    import os
    import subprocess

    script = """
import sys, torch
torch.set_num_threads(1)
from eqdp.benchmarks import run_benchmark
from eqdp.config import RunConfig, TrainConfig
def config(model, kwargs, seed):
    return RunConfig(benchmark="standard", model=model, dataset="breastmnist", seed=seed,
        train=TrainConfig(epochs=2, batch_size=16), device="cpu", data_dir=sys.argv[1],
        verify_md5=False, model_kwargs=kwargs)
if sys.argv[3] == "warm":
    run_benchmark(config("cnn", {"width": 4}, 5), sys.argv[2])
    run_benchmark(config("eq-cnn", {"widths": [2, 4]}, 4), sys.argv[2])
record, _ = run_benchmark(config("eq-cnn", {"widths": [2, 4]}, 3), sys.argv[2])
print(record["run_id"])
"""
    outcomes = []
    for history in ("fresh", "fresh", "warm"):
        folder = tmp_path / history / str(len(outcomes))
        environment = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "", "PYTHONHASHSEED": "0"}
        done = subprocess.run(
            [sys.executable, "-c", script, str(synthetic_dir), str(folder), history],
            capture_output=True, text=True, env=environment, check=False, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        run_id = done.stdout.strip().splitlines()[-1]
        record = json.loads(next(folder.rglob(f"{run_id}.json")).read_text())
        history_numbers = [{k: v for k, v in h.items() if k != "seconds"} for h in
                           record["history"]]  # fmt: skip
        outcomes.append((record["metrics"], history_numbers))
    assert outcomes[0] == outcomes[1] == outcomes[2]


def test_a_record_says_which_code_versions_data_and_command_made_it(
    synthetic_dir: Path, tmp_path: Path
) -> None:

    record, _ = run_benchmark(tiny_config(synthetic_dir), tmp_path)
    env = record["env"]
    for name in ("escnn", "opacus", "monai", "numpy", "medmnist", "scikit-learn", "torch"):
        assert env["packages"][name], name
    assert record["data"]["md5"] and record["data"]["file"].endswith("breastmnist.npz")
    assert isinstance(env["command"], list) and env["cpu_model"]
    if env["git_commit"] is not None:  # inside a checkout: the dirty flag and diff digest agree
        assert isinstance(env["git_dirty"], bool)
        assert (env["git_diff_sha256"] is None) == (not env["git_dirty"])


def test_the_dirty_flag_sees_changes_to_the_package_from_any_folder(monkeypatch) -> None:
    from eqdp.results import environment

    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(environment, "_git", lambda *args: calls.append(args) or " M x.py")
    assert environment.git_dirty() is True
    assert environment.git_diff_digest() is not None
    assert all(arg.startswith(":(top)") for args in calls for arg in args[args.index("--") + 1 :])
