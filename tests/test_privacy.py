"""DP-SGD correctness: exact per-sample gradients, clipping, accounting, sampling."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from opacus import GradSampleModule, PrivacyEngine
from opacus.accountants import RDPAccountant
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from opacus.validators import ModuleValidator
from torch.utils.data import DataLoader, TensorDataset
from typer.testing import CliRunner

import eqdp
from eqdp.benchmarks import run_benchmark
from eqdp.cli import app
from eqdp.config import RunConfig, TrainConfig
from eqdp.engine import fit
from eqdp.models.equivariant import EquivariantConv2d
from eqdp.privacy import DPOptions, poisson_loader, rdp_epsilon, spent_epsilon
from eqdp.privacy.dp_sgd import DPSGD, Schedule, average_over_views
from eqdp.privacy.grad_sample.equivariant_conv import skip_batch_filter_gradients

# A spec with every block type, a fieldwise conv and two group restrictions (D8 > D4 > C4).
MIXED_SPEC = {
    "name": "mixed",
    "stem": {"fields": 2, "group": "D8", "downsample": "avgpool"},
    "stages": [
        {"block": "inverted", "blocks": 1, "fields": 2, "group": "D4", "expansion": 2.0},
        {"block": "bottleneck", "blocks": 1, "fields": 2, "group": "C4", "expansion": 2.0},
        {"block": "basic", "blocks": 1, "fields": 2, "group": "C4", "downsample": "none"},
    ],
}
# Options that keep each model's float64 per-example loop fast; every registered model
# without a DP refusal is tested, so a new model is picked up without an entry here.
SMALL_DP_OPTIONS = {
    "arch-spec": {"spec": MIXED_SPEC},
    "cnn": {"width": 4},
    "resnet18": {"width": 4},
    "efficientnet-b0": {"image_size": 16},  # float64 depthwise convs are slow on CPU
    "eq-cnn": {"widths": (2, 4)},
    "eq-resnet-d4": {},
    "eq-nasnet-b0": {},
    "nasnet-b0": {},
    # Narrow zoo models: every layer kind (strided 4x4 and 3x3, E4 generator) at width 4-8.
    "p4-resnet18": {"width": 8},
    "p4m-resnet18": {"width": 12},
    "e4-p4-resnet18": {"width": 8},
    "e4-p4m-resnet18": {"width": 12},
    "resnet50": {"width": 4},
    "wrn-16-4": {},
}
DP_MODELS = {
    name: SMALL_DP_OPTIONS.get(name, {})
    for name in eqdp.list_models()
    if eqdp.models.model_spec(name).dp_refusal is None
}


deterministic = eqdp.models.without_dropout  # batched and looped passes must agree


@pytest.mark.parametrize("name", sorted(DP_MODELS))
def test_dp_variants_pass_opacus_validation(name: str) -> None:
    model = eqdp.create_model(name, 3, 5, dp=True, **DP_MODELS[name])
    assert ModuleValidator.validate(model, strict=False) == []


@pytest.mark.parametrize("name", sorted(DP_MODELS))
@pytest.mark.parametrize("batch", [0, 1, 3])
def test_per_sample_gradients_equal_float64_loop(name: str, batch: int) -> None:
    torch.manual_seed(0)
    model = deterministic(eqdp.create_model(name, 1, 2, dp=True, **DP_MODELS[name])).double()
    reference = copy.deepcopy(model)
    skip_batch_filter_gradients(model)  # as in DP training: the grad sampler alone counts
    wrapped = GradSampleModule(model, loss_reduction="sum")
    size = DP_MODELS[name].get("image_size", 28)
    images = torch.randn(batch, 1, size, size, dtype=torch.float64)
    labels = torch.randint(0, 2, (batch,))
    F.cross_entropy(wrapped(images), labels, reduction="sum").backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    for _, parameter in trainable:
        assert parameter.grad_sample.shape == (batch, *parameter.shape)
    worst = 0.0
    for i in range(batch):
        reference.zero_grad()
        F.cross_entropy(reference(images[i : i + 1]), labels[i : i + 1], reduction="sum").backward()
        expected = dict(reference.named_parameters())
        for parameter_name, parameter in trainable:
            truth = expected[parameter_name].grad
            error = (parameter.grad_sample[i] - truth).norm() / truth.norm().clamp_min(1e-30)
            worst = max(worst, error.item())
    assert worst <= 1e-5


def test_clipping_bound_and_aggregate_update() -> None:
    """Noise 0: the update equals the hand-clipped mean; each clipped norm is <= C."""
    torch.manual_seed(0)
    clip, batch = 0.05, 6
    model = deterministic(eqdp.create_model("eq-cnn", 1, 2, dp=True, widths=(2, 4))).double()
    images = torch.randn(batch, 1, 28, 28, dtype=torch.float64)
    labels = torch.randint(0, 2, (batch,))

    probe = GradSampleModule(copy.deepcopy(model), loss_reduction="mean")
    F.cross_entropy(probe(images), labels).backward()
    samples = [p.grad_sample for p in probe.parameters() if p.requires_grad]
    norms = torch.stack([s.flatten(1).norm(dim=1) for s in samples], dim=1).norm(dim=1)
    factors = (clip / norms).clamp(max=1.0)
    assert (norms * factors <= clip + 1e-6).all()
    assert (norms > clip).all()  # every sample is clipped: the test exercises clipping
    expected = [torch.einsum("n,n...->...", factors, s) / batch for s in samples]

    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch)
    private, optimizer, _ = PrivacyEngine().make_private(
        module=model,
        optimizer=torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0),
        data_loader=loader,
        noise_multiplier=0.0,
        max_grad_norm=clip,
        poisson_sampling=False,
    )
    optimizer.zero_grad()
    F.cross_entropy(private(images), labels).backward()
    optimizer.step()
    after = [p.detach() for p in model.parameters() if p.requires_grad]
    for old, new, grad in zip(before, after, expected, strict=True):
        torch.testing.assert_close(old - new, grad, rtol=1e-5, atol=1e-9)


def test_augmentation_multiplicity_averages_views_per_example() -> None:
    class Holder:
        params = [torch.nn.Parameter(torch.zeros(3))]

    holder = Holder()
    holder.params[0].grad_sample = torch.arange(12.0).reshape(4, 3)  # 2 examples x 2 views
    average_over_views(holder, 2)
    assert holder.params[0].grad_sample.tolist() == [[1.5, 2.5, 3.5], [7.5, 8.5, 9.5]]


def test_sampling_is_poisson() -> None:
    loader = poisson_loader(1000, 0.05, 40, torch.Generator().manual_seed(0))
    assert isinstance(loader.batch_sampler, UniformWithReplacementSampler)
    sizes = [len(batch) for batch in loader]
    assert len(sizes) == 40 and len(set(sizes)) > 5
    assert abs(sum(sizes) / len(sizes) - 50) < 8


def test_schedule_sample_rate_matches_steps() -> None:
    schedule = Schedule.for_run(n_train=4708, batch_size=512, epochs=3)
    assert schedule.steps_per_epoch == 9 and schedule.total_steps == 27
    assert schedule.sample_rate == 1 / 9


@pytest.mark.parametrize(
    ("noise", "rate", "steps", "delta"),
    [(1.0, 0.01, 1000, 1e-5), (0.8, 0.1, 50, 1e-5), (2.0, 0.05, 300, 1e-6), (5.0, 0.5, 20, 1e-4)],
)
def test_independent_rdp_agrees_with_opacus(noise: float, rate: float, steps: int, delta: float):
    accountant = RDPAccountant()
    accountant.history = [(noise, rate, steps)]
    theirs = accountant.get_epsilon(delta=delta)
    ours = rdp_epsilon(noise, rate, steps, delta)
    assert ours == pytest.approx(theirs, rel=0.01)
    assert spent_epsilon("prv", noise, rate, steps, delta) <= ours * 1.001  # PRV is tighter


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


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_record_epsilon_is_the_accountants(synthetic_dir: Path, tmp_path: Path, accountant: str):
    record, path = run_benchmark(
        dp_config(synthetic_dir, epsilon=8.0, delta=1e-3, accountant=accountant), tmp_path
    )
    privacy = json.loads(path.read_text())["privacy"]
    assert privacy["private"] and privacy["target_epsilon"] == 8.0
    assert privacy["epsilon"] <= 8.0
    assert privacy["steps"] == 2 * 2 and privacy["sample_rate"] == 0.5  # 64 train / 32
    recomputed = spent_epsilon(
        accountant, privacy["noise_multiplier"], privacy["sample_rate"], privacy["steps"], 1e-3
    )
    assert privacy["epsilon"] == recomputed
    independent = rdp_epsilon(
        privacy["noise_multiplier"], privacy["sample_rate"], privacy["steps"], 1e-3
    )
    assert privacy["rdp_epsilon"] == pytest.approx(independent)
    if accountant == "rdp":
        assert privacy["epsilon"] == pytest.approx(independent, rel=0.01)
    assert record["label"].startswith("ε=8 ")


def test_epsilon_inf_is_the_same_pipeline_without_noise(synthetic_dir: Path, tmp_path: Path):
    record, _ = run_benchmark(dp_config(synthetic_dir, epsilon=math.inf), tmp_path)
    privacy = record["privacy"]
    assert privacy["private"] is False and privacy["noise_multiplier"] == 0.0
    assert privacy["epsilon"] is None and privacy["sampling"] == "poisson"
    assert record["label"].startswith("ε=∞ ")
    assert record["config"]["options"]["epsilon"] == math.inf


def test_aug_mult_run(synthetic_dir: Path, tmp_path: Path) -> None:
    options = {"epsilon": 8.0, "aug_mult": 2, "accountant": "rdp"}
    record, path = run_benchmark(dp_config(synthetic_dir, **options), tmp_path)
    assert record["privacy"]["aug_mult"] == 2
    # The K views are D4-augmented: the record says so, not "none".
    assert json.loads(path.read_text())["config"]["train"]["augment"] == "d4"
    assert "K=2" in record["label"] and "aug=d4" in record["label"]


@pytest.mark.parametrize("clipping", ["instantiate", "ghost"])
def test_training_leaves_no_per_sample_gradients_or_hooks(synthetic_dir: Path, clipping: str):
    # Opacus' hooks keep the model in reference cycles: anything left on it lingers
    # until the cycle collector runs, which made multi-run DP processes grow to 20 GB.
    data = eqdp.load_dataset("breastmnist", data_dir=synthetic_dir, verify_md5=False)

    def build() -> torch.nn.Module:
        return eqdp.create_model("cnn", 1, 2, dp=True, width=4)

    model = build()
    dp = DPOptions(
        epsilon=8.0, delta=1e-3, physical_batch_size=16, accountant="rdp", clipping=clipping
    )
    train = TrainConfig(epochs=1, batch_size=32)
    fit(model, data, train, 0, torch.device("cpu"), strategy=DPSGD(dp, build))
    for parameter in model.parameters():
        assert getattr(parameter, "grad_sample", None) is None
        assert getattr(parameter, "summed_grad", None) is None
    assert not any(module._forward_hooks for module in model.modules())
    assert not any(module._backward_hooks for module in model.modules())


def test_d4_invariance_survives_noisy_dp_steps() -> None:
    torch.manual_seed(0)
    model = eqdp.create_model("eq-resnet-d4", 1, 2, dp=True)
    images = torch.randn(16, 1, 28, 28)
    labels = torch.randint(0, 2, (16,))
    private, optimizer, _ = PrivacyEngine().make_private(
        module=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
        data_loader=DataLoader(TensorDataset(images, labels), batch_size=16),
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        poisson_sampling=False,
    )
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(4):
        optimizer.zero_grad()
        F.cross_entropy(private(images), labels).backward()
        optimizer.step()
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert any(changed)
    fresh = eqdp.create_model("eq-resnet-d4", 1, 2, dp=True).eval()
    fresh.load_state_dict(model.state_dict())  # evaluate an unwrapped copy
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        reference = fresh(x)
        for k in range(4):
            for flip in (False, True):
                moved = torch.rot90(x, k, (2, 3))
                moved = moved.flip(3) if flip else moved
                assert (fresh(moved) - reference).abs().max() <= 1e-4


runner = CliRunner()


def dp_args(synthetic_dir: Path, results: Path, *extra: str) -> list[str]:
    return [
        "run", "dp", "--model", "eq-cnn", "--dataset", "breastmnist", "--epochs", "1",
        "--batch-size", "32", "--device", "cpu", "--no-verify-md5",
        "--data-dir", str(synthetic_dir), "--results-dir", str(results), *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--epsilon", "0"), "epsilon = '0': Input should be greater than 0"),
        (("--epsilon", "8,-1"), "epsilon = '-1': Input should be greater than 0"),
        (("--epsilon", "abc"), "epsilon = 'abc': Input should be a valid number"),
        (("--epsilon", "1/0"), "'1/0' is not a number or a fraction"),
        (("--epsilon", "1", "--delta", "0"), "delta = '0': Input should be greater than 0"),
        (("--epsilon", "1", "--delta", "0.02"), "delta must be in (0, 1/N_train)"),
        (("--epsilon", "1", "--max-grad-norm", "0"), "max_grad_norm = '0': Input should be"),
        (("--epsilon", "1", "--physical-batch-size", "64"), "physical batch size 64 is larger"),
        (("--epsilon", "1", "--physical-batch-size", "0"), "physical_batch_size = '0': Input"),
        (("--epsilon", "1", "--noise-multiplier", "1"), "not both"),
        (("--epsilon", "1", "--accountant", "gdp"), "accountant = 'gdp': Input should be"),
        ((), "needs --epsilon"),
        (("--epsilon", "1", "--attack", "fgsm"), "No such option: --attack"),
        (("--epsilon", "1", "--fraction", "0.001"), "fraction"),
        (("--epsilon", "1", "--seed", "-1"), "seed = -1: Input should be greater than or equal"),
    ],
)
def test_dp_bad_input(synthetic_dir: Path, tmp_path: Path, extra: tuple, message: str) -> None:
    result = runner.invoke(app, dp_args(synthetic_dir, tmp_path, *extra))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not list(tmp_path.rglob("*.json"))


def test_dp_refuses_vit_before_training(synthetic_dir: Path, tmp_path: Path) -> None:
    args = dp_args(synthetic_dir, tmp_path, "--epsilon", "1")
    args[args.index("eq-cnn")] = "vit"
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "cannot be trained under DP-SGD" in result.output


def test_dp_cli_sweep_writes_one_record_per_epsilon_and_seed(synthetic_dir: Path, tmp_path: Path):
    result = runner.invoke(
        app, dp_args(synthetic_dir, tmp_path, "--epsilon", "4,inf", "--seed", "0,1")
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json")]
    assert sorted((r["privacy"]["target_epsilon"] or math.inf, r["seed"]) for r in records) == [
        (4.0, 0), (4.0, 1), (math.inf, 0), (math.inf, 1)
    ]  # fmt: skip


def test_dp_on_a_stratified_subset_accounts_for_the_subset(synthetic_dir: Path, tmp_path: Path):
    # delta 0.02 is >= 1/64 (full split) but < 1/32 (the half subset): valid only on the subset
    options = {"epsilon": 8.0, "fraction": 0.5, "accountant": "rdp", "delta": 0.02}
    record, _ = run_benchmark(dp_config(synthetic_dir, **options), tmp_path)
    assert record["low_data"]["n_train"] == record["privacy"]["n_train"] == 32
    assert record["privacy"]["sample_rate"] == 1.0  # 32 examples, logical batch 32
    assert "fraction=0.5" in record["label"]


def test_skipping_batch_filter_gradients_changes_no_forward_value() -> None:
    torch.manual_seed(0)
    model = deterministic(eqdp.create_model("eq-resnet-d4", 1, 2, dp=True))
    x = torch.randn(4, 1, 28, 28)
    plain = model(x)
    skip_batch_filter_gradients(model)
    assert torch.equal(model(x), plain)
    skip_batch_filter_gradients(model, enabled=False)
    F.cross_entropy(model(x), torch.zeros(4, dtype=torch.long)).backward()
    assert all(p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)


def assert_grad_samples_match_loop(
    layer: torch.nn.Module, x: torch.Tensor, skip_filter_gradients: bool = False
) -> None:
    """Opacus' per-sample gradients of sum(layer(x) * w) against one backward per example."""
    torch.manual_seed(1)
    weights = torch.randn_like(layer(x[:1]))
    per_example: dict[str, list[torch.Tensor]] = {}
    for i in range(len(x)):
        layer.zero_grad()
        (layer(x[i : i + 1]) * weights).sum().backward()
        for name, parameter in layer.named_parameters():
            if parameter.requires_grad:
                per_example.setdefault(name, []).append(parameter.grad.clone())
    private = copy.deepcopy(layer)
    skip_batch_filter_gradients(private, enabled=skip_filter_gradients)  # as in DP training
    wrapped = GradSampleModule(private, loss_reduction="sum")
    (wrapped(x) * weights).sum().backward()
    for name, parameter in wrapped._module.named_parameters():
        if parameter.requires_grad:
            truth = torch.stack(per_example[name])
            error = (parameter.grad_sample - truth).norm() / truth.norm()
            assert error <= 1e-10, (name, error)


@pytest.mark.parametrize(
    "conv",
    [
        {"stride": 1, "padding": 1, "dilation": 1, "bias": True},  # 20x20: grouped route
        {"stride": 2, "padding": 2, "dilation": 2, "bias": False},  # 10x10: Opacus' route
        {"stride": 1, "padding": 0, "dilation": 2, "bias": True, "groups": 2},  # Opacus' route
    ],
)
def test_conv2d_grad_sampler_routes_are_exact(conv: dict) -> None:
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(4, 6, 3, **conv).double()
    assert_grad_samples_match_loop(layer, torch.randn(3, 4, 20, 20, dtype=torch.float64))


@pytest.mark.parametrize("size", [16, 9])  # 16x16: grouped route; 9x9: im2col route
@pytest.mark.parametrize("kinds", [("regular", "regular"), ("trivial", "regular")])
def test_equivariant_conv_grad_sampler_routes_are_exact(size: int, kinds: tuple[str, str]) -> None:
    torch.manual_seed(0)
    layer = EquivariantConv2d("D4", 2, 3, 3, in_kind=kinds[0], out_kind=kinds[1]).double()
    x = torch.randn(3, layer.in_channels, size, size, dtype=torch.float64)
    assert_grad_samples_match_loop(layer, x, skip_filter_gradients=True)


@pytest.mark.parametrize("size", [16, 9])
@pytest.mark.parametrize(
    "layer_kwargs",
    [
        {"group": "D4", "in_fields": 3, "out_fields": 3, "fieldwise": True},
        {"group": "C4", "in_fields": 2, "out_fields": 3, "in_group": "D4"},
        {"group": "D4", "in_fields": 2, "out_fields": 2, "basis": "full", "fieldwise": True},
    ],
    ids=["fieldwise", "restricted", "full-fieldwise"],
)
def test_new_equivariant_conv_kinds_have_exact_per_sample_gradients(size: int, layer_kwargs):
    torch.manual_seed(0)
    layer = EquivariantConv2d(kernel_size=3, **layer_kwargs).double()
    x = torch.randn(3, layer.in_channels, size, size, dtype=torch.float64)
    assert_grad_samples_match_loop(layer, x, skip_filter_gradients=True)


@pytest.mark.parametrize(
    ("size", "kernel", "fieldwise"),
    [
        (16, 4, False),  # even map, 4x4 kernel: grouped route
        (9, 3, False),  # odd map: im2col route
        (15, 3, False),  # odd map, 15x15: grouped route
        (9, 1, False),  # strided 1x1: response route
        (16, 4, True),  # strided fieldwise
    ],
)
def test_strided_equivariant_conv_has_exact_per_sample_gradients(size, kernel, fieldwise):
    torch.manual_seed(0)
    layer = EquivariantConv2d(
        "C4", 2, 2, kernel, stride=2, basis="full", fieldwise=fieldwise
    ).double()
    x = torch.randn(3, layer.in_channels, size, size, dtype=torch.float64)
    assert_grad_samples_match_loop(layer, x, skip_filter_gradients=True)


def test_accounting_at_full_batch_prints_no_numpy_warning() -> None:
    """Opacus' PRV accountant logs a discarded zero when the sample rate is 1 (a batch as
    large as a small subset); its result is finite and nothing may be printed raw."""
    import warnings

    from eqdp.privacy.accounting import calibrate_noise, spent_epsilon

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        noise = calibrate_noise(8.0, 1e-3, 1.0, 5, "prv")
        assert math.isfinite(spent_epsilon("prv", noise, 1.0, 5, 1e-3))


@pytest.mark.parametrize(
    "layer_kwargs",
    [
        {"group": "C4", "in_fields": 2, "out_fields": 5},  # basis on the inputs' side
        {"group": "C4", "in_fields": 5, "out_fields": 2},  # basis on the gradients' side
        {"group": "D4", "in_fields": 3, "out_fields": 2, "in_kind": "trivial"},
        {"group": "C4", "in_fields": 4, "out_fields": 1, "in_group": "D4"},
        {"group": "D4", "in_fields": 2, "out_fields": 3, "out_kind": "trivial", "bias": False},
    ],
    ids=["more-out", "more-in", "trivial-in", "restricted", "trivial-out"],
)
@pytest.mark.parametrize("size", [4, 7])
def test_one_by_one_response_routes_are_exact(size: int, layer_kwargs: dict) -> None:
    torch.manual_seed(0)
    layer = EquivariantConv2d(kernel_size=1, **layer_kwargs).double()
    x = torch.randn(3, layer.in_channels, size, size, dtype=torch.float64)
    assert_grad_samples_match_loop(layer, x, skip_filter_gradients=True)
