"""Norm-only clipping (``--clipping ghost``) is exact: the float64 per-example loop decides.

For every DP-capable model (the registry, as in test_privacy.py) and every route
a layer can take (the ghost norm, instantiation kept, instantiation for the norm
only, and the per-call choice training uses): the per-example gradient norms,
the clipped sum, and one noisy DP-SGD step with the same noise seed as the
instantiating (Opacus) path and as the loop's hand-made step.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from opacus import PrivacyEngine
from test_privacy import DP_MODELS, deterministic
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import eqdp
from eqdp.benchmarks import run_benchmark
from eqdp.config import RunConfig, TrainConfig
from eqdp.errors import EqdpError
from eqdp.privacy.dp_sgd import make_private
from eqdp.privacy.norm_sample.module import ROUTES, NormSampleModule

# Relative to the whole gradient's norm: float64 sums in another order agree to ~1e-14.
TOLERANCE = 1e-10


def loop_gradients(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, views: int = 1
) -> list[dict[str, torch.Tensor]]:
    """Each example's gradient, one backward per example: the mean loss over its views."""
    gradients = []
    for start in range(0, len(images), views):
        model.zero_grad()
        rows = slice(start, start + views)
        F.cross_entropy(model(images[rows]), labels[rows]).backward()
        gradients.append(
            {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
        )
    return gradients


def flat(gradients: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    return torch.cat([gradients[name].reshape(-1) for name in names])


def tiny_model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return deterministic(eqdp.create_model(name, 1, 2, dp=True, **DP_MODELS[name])).double()


def tiny_batch(name: str, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    size = DP_MODELS[name].get("image_size", 28)
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(rows, 1, size, size, dtype=torch.float64, generator=generator)
    return images, torch.randint(0, 2, (rows,), generator=generator)


def check_norms_and_clipped_sum(name: str, batch: int, views: int) -> None:
    model = tiny_model(name)
    images, labels = tiny_batch(name, batch * views)
    truth = loop_gradients(copy.deepcopy(model), images, labels, views)
    names = list(truth[0])
    vectors = torch.stack([flat(g, names) for g in truth])  # (batch, parameters)
    true_norms = vectors.norm(dim=1)
    clip = true_norms.median()  # some examples clipped, some not
    factors = (clip / (true_norms + 1e-6)).clamp(max=1.0)
    true_sum = factors @ vectors
    for route in ROUTES:
        wrapped = NormSampleModule(copy.deepcopy(model), views=views, route=route)
        F.cross_entropy(wrapped(images), labels).backward()
        norms = wrapped.per_example_norms()
        assert torch.allclose(norms, true_norms, rtol=TOLERANCE, atol=0), (route, norms, true_norms)
        sums = wrapped.clipped_sum(factors)
        by_name = dict(wrapped._module.named_parameters())
        got = torch.cat([sums[by_name[n]].reshape(-1) for n in names])
        error = (got - true_sum).norm() / true_sum.norm()
        assert error <= TOLERANCE, (route, error.item())


@pytest.mark.parametrize("name", sorted(DP_MODELS))
def test_ghost_norms_and_clipped_sum_equal_float64_loop(name: str) -> None:
    check_norms_and_clipped_sum(name, batch=3, views=1)


@pytest.mark.parametrize("name", ["cnn", "eq-cnn", "e4-p4-resnet18", "efficientnet-b0"])
def test_ghost_clipping_averages_augmentation_views(name: str) -> None:
    check_norms_and_clipped_sum(name, batch=2, views=2)


def private_step(model: nn.Module, images, labels, clipping: str, noise: float, clip: float):
    """One DP-SGD step (SGD, lr 1) as DPSGD builds it; returns the parameter change."""
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    # One batch of the expected size (an empty batch still divides by it).
    expected_size = len(images) or 4
    loader = DataLoader(TensorDataset(torch.zeros(expected_size)), batch_size=expected_size)
    module, optimizer, _ = make_private(
        PrivacyEngine(accountant="rdp"),
        model,
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0),
        loader,
        noise_multiplier=noise,
        max_grad_norm=clip,
        noise_generator=torch.Generator().manual_seed(7),
        clipping=clipping,
    )
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(module(images), labels).backward()
    optimizer.step()
    return {n: before[n] - p.detach() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("name", sorted(DP_MODELS))
def test_noisy_step_equals_instantiation_and_float64_loop(name: str) -> None:
    """Same seed: the same noise on the same clipped sum, divided by the expected batch size."""
    batch, noise = 3, 0.7
    model = tiny_model(name)
    images, labels = tiny_batch(name, batch)
    truth = loop_gradients(copy.deepcopy(model), images, labels)
    names = list(truth[0])
    norms = torch.stack([flat(g, names) for g in truth]).norm(dim=1)
    clip = float(norms.median())
    factors = (clip / (norms + 1e-6)).clamp(max=1.0)
    generator = torch.Generator().manual_seed(7)  # Opacus draws per parameter, in order
    expected = {}
    for n in names:
        summed = sum(f * g[n] for f, g in zip(factors, truth, strict=True))
        drawn = torch.normal(0, noise * clip, summed.shape, generator=generator, dtype=summed.dtype)
        expected[n] = (summed + drawn) / batch
    ghost = private_step(copy.deepcopy(model), images, labels, "ghost", noise, clip)
    opacus = private_step(copy.deepcopy(model), images, labels, "instantiate", noise, clip)
    scale = torch.cat([e.reshape(-1) for e in expected.values()]).norm()
    for n in names:
        assert (ghost[n] - expected[n]).norm() <= TOLERANCE * scale, n
        assert (ghost[n] - opacus[n]).norm() <= TOLERANCE * scale, n


def test_empty_batch_takes_a_noise_only_step() -> None:
    model = tiny_model("cnn")
    images, labels = tiny_batch("cnn", 0)
    zero_noise = private_step(copy.deepcopy(model), images, labels, "ghost", 0.0, 1.0)
    assert all(torch.count_nonzero(change) == 0 for change in zero_noise.values())
    ghost = private_step(copy.deepcopy(model), images, labels, "ghost", 1.0, 1.0)
    opacus = private_step(copy.deepcopy(model), images, labels, "instantiate", 1.0, 1.0)
    for n in ghost:
        torch.testing.assert_close(ghost[n], opacus[n], rtol=0, atol=0)


class Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.linear(x))


class InPlaceAfterRead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.first(x)
        out = self.second(hidden)
        hidden.mul_(2.0)  # the second layer's input changes after it was read
        return out + hidden.sum()


def test_ghost_refuses_what_it_cannot_clip_exactly() -> None:
    x = torch.randn(3, 4)
    with pytest.raises(EqdpError, match="ran twice"):
        NormSampleModule(Twice())(x)
    wrapped = NormSampleModule(InPlaceAfterRead())
    with pytest.raises(EqdpError, match="modified in place"):
        wrapped(x).sum().backward()
    with pytest.raises(EqdpError, match="no norm rule for BatchNorm2d"):
        NormSampleModule(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
    tied = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    tied[1].weight = tied[0].weight
    with pytest.raises(EqdpError, match="shared"):
        NormSampleModule(tied)


def dp_config(synthetic_dir: Path, **options) -> RunConfig:
    return RunConfig(
        benchmark="dp",
        model="eq-cnn",
        dataset="breastmnist",
        train=TrainConfig(epochs=2, batch_size=32),
        device="cpu",
        data_dir=str(synthetic_dir),
        verify_md5=False,
        model_kwargs={"widths": (2, 4)},
        options=options,
    )


@pytest.mark.parametrize("aug_mult", [1, 2])
def test_ghost_run_records_its_mode_and_the_same_privacy(
    synthetic_dir: Path, tmp_path: Path, aug_mult
):
    options = {"epsilon": 8.0, "accountant": "rdp", "physical_batch_size": 16, "aug_mult": aug_mult}
    records = {}
    for clipping in ("instantiate", "ghost"):
        record, path = run_benchmark(
            dp_config(synthetic_dir, clipping=clipping, **options), tmp_path / clipping
        )
        stored = json.loads(path.read_text())
        assert stored["config"]["options"]["clipping"] == clipping
        assert stored["privacy"]["clipping_mode"] == clipping
        records[clipping] = record
    ghost, opacus = records["ghost"], records["instantiate"]
    assert ghost["key"] == opacus["key"]  # one configuration: the mode changes no number
    assert ghost["label"] == opacus["label"]
    same = {k: v for k, v in ghost["privacy"].items() if k != "clipping_mode"}
    assert same == {k: v for k, v in opacus["privacy"].items() if k != "clipping_mode"}


def test_records_from_before_the_clipping_option_mean_instantiate(synthetic_dir: Path, tmp_path):
    from eqdp.results.records import load_records

    options = {"epsilon": 8.0, "accountant": "rdp", "clipping": "instantiate"}
    record, path = run_benchmark(dp_config(synthetic_dir, **options), tmp_path)
    stored = json.loads(path.read_text())
    del stored["config"]["options"]["clipping"], stored["privacy"]["clipping_mode"]
    path.write_text(json.dumps(stored))
    (loaded,) = load_records(tmp_path)
    assert loaded["config"]["options"]["clipping"] == "instantiate"
    assert loaded["privacy"]["clipping_mode"] == "instantiate"
    assert loaded["key"] == record["key"] and loaded["label"] == record["label"]


def test_norms_and_sums_run_without_tf32_and_restore_the_flags() -> None:
    from eqdp.privacy.norm_sample.module import strict_float32

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        with strict_float32():
            assert not torch.backends.cudnn.allow_tf32
            assert not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
