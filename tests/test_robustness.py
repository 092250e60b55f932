"""Attacks and geometric evaluation on tiny models trained in a few full-batch steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import eqdp
from eqdp.attacks import PixelSpaceModel, attack, fgsm, pgd
from eqdp.benchmarks.adversarial import robust_evaluation
from eqdp.benchmarks.geometric import geometric_evaluation
from eqdp.benchmarks.pretrained import unwrapped_state
from eqdp.data import MedMNISTData, load_dataset
from eqdp.data.transforms import d4_elements
from eqdp.engine import evaluate_split, loss_for, to_model_input


def quick_train(model: nn.Module, data: MedMNISTData, steps: int = 60) -> nn.Module:
    """Full-batch Adam: the last step, not a val-selected early epoch, so ACC is high."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    images = to_model_input(data.train.images)
    model.train()
    for _ in range(steps):
        loss = loss_for(data.task, model(images), data.train.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def data(synthetic_dir: Path) -> MedMNISTData:
    return load_dataset("breastmnist", 28, synthetic_dir, verify_md5=False)


@pytest.fixture(scope="module")
def trained_cnn(data: MedMNISTData) -> nn.Module:
    torch.manual_seed(0)
    return quick_train(eqdp.create_model("cnn", 1, 2, width=4), data)


def pixels(data: MedMNISTData) -> tuple[torch.Tensor, torch.Tensor]:
    return data.test.images.float() / 255.0, data.test.labels


def accuracy_on(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(images).argmax(1) == labels[:, 0]).float().mean().item()


def test_eps_zero_reproduces_clean_metrics(trained_cnn: nn.Module, data: MedMNISTData) -> None:
    clean = evaluate_split(trained_cnn, data.test, data.task)
    assert clean["acc"] == 1.0
    attacks = {"fgsm": [0.0], "pgd-linf": [0.0], "pgd-l2": [0.0]}
    for row in robust_evaluation(trained_cnn, data.test, data.task, attacks):
        assert (row["acc"], row["auc"]) == (clean["acc"], clean["auc"])


def test_robust_accuracy_does_not_increase_with_eps(
    trained_cnn: nn.Module, data: MedMNISTData
) -> None:
    linf = [0, 2 / 255, 8 / 255, 16 / 255, 32 / 255, 64 / 255]
    attacks = {"fgsm": linf, "pgd-linf": linf, "pgd-l2": [0, 0.5, 1, 2, 4]}
    rows = robust_evaluation(trained_cnn, data.test, data.task, attacks, steps=5)
    for name in attacks:
        accuracies = [r["acc"] for r in rows if r["attack"] == name]
        assert accuracies == sorted(accuracies, reverse=True), name
        assert accuracies[0] == 1.0 and accuracies[-1] < 0.5  # the attacks do bite


def test_pgd_is_at_least_as_strong_as_fgsm(trained_cnn: nn.Module, data: MedMNISTData) -> None:
    model = PixelSpaceModel(trained_cnn)
    images, labels = pixels(data)
    for eps in (8 / 255, 32 / 255):
        one_step = accuracy_on(model, fgsm(model, images, labels, eps, task=data.task), labels)
        many = pgd(model, images, labels, eps, task=data.task, steps=10)
        assert accuracy_on(model, many, labels) <= one_step


@pytest.mark.parametrize("name", ["fgsm", "pgd-linf", "pgd-l2"])
def test_perturbation_stays_in_the_ball_and_in_pixel_range(
    trained_cnn: nn.Module, data: MedMNISTData, name: str
) -> None:
    images, labels = pixels(data)
    eps = 0.5 if name == "pgd-l2" else 8 / 255
    generator = torch.Generator().manual_seed(0)
    adversarial = attack(
        name,
        PixelSpaceModel(trained_cnn),
        images,
        labels,
        eps,
        task=data.task,
        steps=3,
        generator=generator,
    )
    delta = (adversarial - images).flatten(1)
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    size = delta.norm(dim=1) if name == "pgd-l2" else delta.abs().max(dim=1).values
    assert size.max() <= eps + 1e-6
    assert size.max() > 0.5 * eps
    with pytest.raises(ValueError, match="eps must be finite and >= 0"):
        attack(name, PixelSpaceModel(trained_cnn), images, labels, -0.1, task=data.task)


def test_attack_runs_on_an_unwrapped_copy_of_a_dp_model(data: MedMNISTData) -> None:
    opacus = pytest.importorskip("opacus")
    wrapped = opacus.GradSampleModule(eqdp.create_model("cnn", 1, 2, dp=True, width=4))
    state = wrapped.state_dict()
    assert all(key.startswith("_module.") for key in state)
    copy = eqdp.create_model("cnn", 1, 2, dp=True, width=4)
    copy.load_state_dict(unwrapped_state(state))
    copy.eval()
    rows = robust_evaluation(copy, data.test, data.task, {"pgd-linf": [0.0, 8 / 255]}, steps=2)
    assert [r["eps"] for r in rows] == [0.0, 8 / 255]
    assert rows[0]["acc"] == evaluate_split(copy, data.test, data.task)["acc"]


class GradientMasked(nn.Module):
    """A linear score of the image rounded to quarter levels: every input gradient is zero."""

    def __init__(self) -> None:
        super().__init__()
        weight = torch.randn(1, 8, 8, generator=torch.Generator().manual_seed(0))
        self.weight = nn.Parameter(weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        score = (torch.round(images * 4) / 4 * self.weight).flatten(1).sum(1)
        return torch.stack([score, -score], dim=1)


def test_autoattack_sees_through_masked_gradients_where_pgd_does_not() -> None:
    from eqdp.attacks.autoattack import autoattack, autoattack_params

    model = GradientMasked().eval()
    images = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        labels = model(images).argmax(1, keepdim=True)  # clean accuracy 1
    eps, generator = 0.2, torch.Generator().manual_seed(0)
    pgd_images = pgd(model, images, labels, eps, task="binary-class", generator=generator)
    auto_images = autoattack(model, images, labels, eps, task="binary-class", square_queries=100)
    assert accuracy_on(model, pgd_images, labels) >= 0.9  # zero gradients: PGD goes nowhere
    assert accuracy_on(model, auto_images, labels) <= 0.5  # Square needs no gradient
    assert (auto_images - images).abs().max() <= eps + 1e-6
    assert auto_images.min() >= 0 and auto_images.max() <= 1
    again = autoattack(model, images, labels, eps, task="binary-class", square_queries=100)
    assert torch.equal(again, auto_images)  # seeded
    params = autoattack_params()  # what an adversarial record states about the run
    assert params["library"].startswith("adversarial-robustness-toolbox 1.")
    assert (params["apgd_iterations"], params["square_queries"]) == (100, 5000)


def test_autoattack_budget_zero_negative_and_multi_label(
    trained_cnn: nn.Module, data: MedMNISTData
) -> None:
    from eqdp.benchmarks.adversarial import resolve_adversarial
    from eqdp.config import RunConfig
    from eqdp.errors import EqdpError

    model, (images, labels) = PixelSpaceModel(trained_cnn), pixels(data)
    assert torch.equal(attack("autoattack", model, images, labels, 0.0, task=data.task), images)
    with pytest.raises(ValueError, match="eps must be finite and >= 0"):
        attack("autoattack", model, images, labels, -0.1, task=data.task)
    config = RunConfig(
        benchmark="adversarial", model="cnn", dataset="chestmnist",
        options={"attacks": ["autoattack"]},
    )  # fmt: skip
    with pytest.raises(EqdpError, match="autoattack needs a single-label task; chestmnist"):
        resolve_adversarial(config)


def test_equivariant_model_is_d4_invariant_and_plain_cnn_is_not(
    trained_cnn: nn.Module, data: MedMNISTData
) -> None:
    torch.manual_seed(0)
    equivariant = eqdp.create_model("eq-cnn", 1, 2, widths=(2, 4)).eval()
    transforms = d4_elements()
    eq = geometric_evaluation(equivariant, data.test, data.task, transforms)
    plain = geometric_evaluation(trained_cnn, data.test, data.task, transforms)
    assert eq["max_invariance_error_d4"] <= 1e-4
    assert len({row["acc"] for row in eq["transforms"]}) == 1
    assert plain["mean_invariance_error_d4"] > 1e-3
    assert eq["mean_invariance_error_rotation"] is None


def test_worst_case_accuracy_is_per_example(trained_cnn: nn.Module, data: MedMNISTData) -> None:
    summary = geometric_evaluation(trained_cnn, data.test, data.task)
    rows = summary["transforms"]
    assert len(rows) == 34 and {"acc", "auc", "invariance_error", "angle"} <= set(rows[0])
    assert summary["worst_case_acc"] <= summary["min_transform_acc"]
    assert summary["worst_case_acc"] <= summary["worst_case_acc_rotation"]
    assert rows[0]["name"] == "identity" and rows[0]["invariance_error"] == 0.0
