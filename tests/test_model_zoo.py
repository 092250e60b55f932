"""The seeds' model zoo: G-CNN and E4 ResNet-18s, ResNet-50, WRN-16-4; strided equivariance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import eqdp
from eqdp.errors import EqdpError
from eqdp.models import describe_model, list_models, model_spec
from eqdp.models.equivariant.basis import apply_grid_action, grid_actions, steerable_basis
from eqdp.models.equivariant.e4 import E4Conv2d
from eqdp.models.equivariant.layers import (
    EquivariantConv2d,
    FieldBatchNorm,
    GroupPool,
    strided_kernel_size,
)

ZOO = ("p4-resnet18", "p4m-resnet18", "e4-p4-resnet18", "e4-p4m-resnet18", "resnet50", "wrn-16-4")
# Narrow versions keep the tests fast; the layout and the layers are the full models'.
NARROW = {
    "p4-resnet18": {"width": 16},
    "p4m-resnet18": {"width": 24},
    "e4-p4-resnet18": {"width": 16},
    "e4-p4m-resnet18": {"width": 24},
    "eq-cnn": {"widths": (2, 4)},
}


def calibrated(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """Eval mode with batch-norm statistics of ``images``, so activations have unit scale.

    At initialisation running statistics are (0, 1) and a deep BN network's logits reach
    the thousands in eval mode, where float32 rounding alone exceeds 1e-4.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # cumulative average: one batch sets them
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    model.train()
    with torch.no_grad():
        model(images)
    return model.eval()


def test_zoo_is_registered_with_group_params_and_macs() -> None:
    groups = {"p4-resnet18": "C4", "p4m-resnet18": "D4", "e4-p4-resnet18": "C4"}
    for name in ZOO:
        spec = model_spec(name)
        assert spec.group == groups.get(name, "D4" if "p4m" in name else None)
        assert spec.dp_refusal is None  # every zoo model trains under DP-SGD
    info = describe_model("p4-resnet18")
    # Width convention: as many coefficients as resnet18, about |G| = 4 times the MACs.
    resnet = describe_model("resnet18")
    assert 0.95 < info.params / resnet.params < 1.1
    assert 3.5 < info.macs / resnet.macs < 5


@pytest.mark.parametrize("name", sorted(set(list_models()) - {"arch-spec"}))
def test_every_model_has_params_and_macs(name: str) -> None:
    info = describe_model(name, 3, 2, model=eqdp.create_model(name, 3, 2, **NARROW.get(name, {})))
    assert info.params > 0 and info.macs > 0


EQUIVARIANT = sorted(
    n for n in set(list_models()) - {"arch-spec"} if model_spec(n).family == "equivariant"
)


@pytest.mark.parametrize("name", EQUIVARIANT)
@pytest.mark.parametrize("size", [28, 64])
def test_equivariant_models_are_invariant_to_their_whole_group(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = eqdp.create_model(name, 3, 4, image_size=size, **NARROW.get(name, {}))
    x = torch.randn(2, 3, size, size)
    model = calibrated(model, x)
    group = model.group  # the group the network keeps to its end
    with torch.no_grad():
        outputs = [model(apply_grid_action(x, action)) for action in grid_actions(group)]
    errors = [(o - outputs[0]).abs().max().item() for o in outputs]
    assert max(errors) <= 1e-4, errors
    assert outputs[0].abs().max().item() > 1e-2  # not invariant by being zero


def test_p4_models_are_not_invariant_to_flips() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 28, 28)
    model = calibrated(eqdp.create_model("p4-resnet18", 3, 2, width=16), x)
    with torch.no_grad():
        assert (model(x.flip(3)) - model(x)).abs().max().item() > 1e-3


@pytest.mark.parametrize("basis", ["full", "bandlimited"])
@pytest.mark.parametrize("group", ["C4", "D4"])
@pytest.mark.parametrize(("kernel", "size"), [(3, 7), (4, 8), (3, 9), (1, 7)])
def test_strided_convolution_is_exactly_equivariant(basis, group, kernel, size) -> None:
    torch.manual_seed(0)
    conv = EquivariantConv2d(group, 1, 3, kernel, in_kind="trivial", basis=basis, stride=2)
    pool = GroupPool(conv.out_size)
    x = torch.randn(2, 1, size, size)
    with torch.no_grad():
        reference = pool(conv(x))
        assert reference.shape[-1] == (size + 1) // 2  # ceil(N / 2), as a ResNet's stride 2
        for action in grid_actions(group):
            moved = pool(conv(apply_grid_action(x, action)))
            assert torch.allclose(moved, apply_grid_action(reference, action), atol=1e-5)


def test_strided_convolution_refuses_a_map_of_the_other_parity() -> None:
    assert (strided_kernel_size(3, 28), strided_kernel_size(3, 7)) == (4, 3)
    conv = EquivariantConv2d("C4", 1, 1, 3, in_kind="trivial", stride=2)
    with pytest.raises(ValueError, match="needs a square map of odd size.*got 8x8"):
        conv(torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="stride 1 need an odd kernel"):
        EquivariantConv2d("C4", 1, 1, 4, in_kind="trivial")


@pytest.mark.parametrize(("group", "full", "bandlimited"), [("C4", 64, 20), ("D4", 128, 40)])
def test_even_kernel_bases_for_strided_layers(group: str, full: int, bandlimited: int) -> None:
    assert steerable_basis(group, "regular", "regular", 4, basis="full").shape[0] == full
    assert steerable_basis(group, "regular", "regular", 4).shape[0] == bandlimited


def test_group_resnets_use_the_full_basis_by_default_and_offer_the_bandlimited() -> None:
    full = eqdp.create_model("p4-resnet18", 1, 2, width=16)
    smooth = eqdp.create_model("p4-resnet18", 1, 2, width=16, basis="bandlimited")
    dims = {m.basis_name: m.weight.shape[-1] for m in full.modules() if hasattr(m, "basis_name")}
    assert dims == {"full": dims["full"]} and full.blocks[1].conv1.weight.shape[-1] == 36
    assert smooth.blocks[1].conv1.weight.shape[-1] == 24
    assert isinstance(full.stem[1], FieldBatchNorm)
    dp = eqdp.create_model("p4-resnet18", 1, 2, width=16, dp=True)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in dp.modules())


@pytest.mark.parametrize("group", ["C4", "D4"])
def test_e4_layer_is_equivariant_on_regular_fields(group: str) -> None:
    torch.manual_seed(0)
    stem = EquivariantConv2d(group, 1, 4, 3, in_kind="trivial", basis="full")
    layer = E4Conv2d(group, 4, 4, 3, reduction=2, slice_channels=2)
    pool = GroupPool(stem.out_size)
    x = torch.randn(2, 1, 9, 9)
    with torch.no_grad():
        reference = pool(layer(stem(x)))
        for action in grid_actions(group):
            moved = pool(layer(stem(apply_grid_action(x, action))))
            scale = reference.abs().max()
            assert (moved - apply_grid_action(reference, action)).abs().max() <= 1e-5 * scale


def test_e4_options_are_checked() -> None:
    with pytest.raises(EqdpError, match="slice_channels=3 must divide"):
        eqdp.create_model("e4-p4-resnet18", 1, 2, width=16, slice_channels=3)
    # Type and range come from the builder's signature, checked before building.
    with pytest.raises(EqdpError, match=r"option reduction=0 is not valid: .* a number > 0"):
        eqdp.create_model("e4-p4-resnet18", 1, 2, width=16, reduction=0)
    with pytest.raises(EqdpError, match=r"'p4-resnet18' option dropout=2 .* in \[0, 1\)"):
        eqdp.create_model("p4-resnet18", 1, 2, width=16, dropout=2)


def test_e4_variants_are_smaller_than_their_g_cnns() -> None:
    for g_cnn in ("p4-resnet18", "p4m-resnet18"):
        plain, e4 = describe_model(g_cnn), describe_model(f"e4-{g_cnn}")
        assert e4.params < 0.7 * plain.params and e4.macs < 0.7 * plain.macs


def test_e4_macs_count_its_elementwise_aggregation() -> None:
    from eqdp.models import count_macs

    layer = E4Conv2d("C4", 4, 4, 3, reduction=2, slice_channels=2)  # 16 channels in and out
    pixels = 9 * 9
    encoder = 16 * 16 * pixels  # 1x1, 4 -> 4 fields
    generator = 16 * 8 * pixels + 4 * pixels * 2 * (2 * 9)  # 1x1 to 2 fields, linear 2 -> 2x9
    aggregation = 16 * pixels * 9
    assert count_macs(layer, (16, 9, 9)) == encoder + generator + aggregation


def test_zoo_page_table_matches_the_models() -> None:
    import re
    from pathlib import Path

    from eqdp.results.leaderboard import human_count

    readme = (Path(__file__).resolve().parents[1] / "docs" / "zoo.md").read_text()
    rows = re.findall(r"^\| `([\w-]+)` \| (\S+) \| (\S+) \| (\S+) \| ", readme, re.M)
    zoo_rows = {name: rest for name, *rest in rows if name in (*ZOO, "resnet18")}
    assert set(zoo_rows) == {*ZOO, "resnet18"}
    for name, (group, params, macs) in zoo_rows.items():
        info = describe_model(name)
        expected = [info.group or "-", human_count(info.params), human_count(info.macs)]
        assert [group, params, macs] == expected, name
