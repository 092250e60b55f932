"""Sizes through the Python API: every model built for 28, 32 or 64 px keeps its declared
invariance there (float64), and an image of another size fails naming both sizes and
``image_size`` (issue 28 item 3)."""

from __future__ import annotations

import pytest
import torch

import eqdp
from eqdp.errors import EqdpError
from eqdp.models import list_models, model_spec
from eqdp.models.equivariant.basis import apply_grid_action, grid_actions

# Narrow versions keep float64 on a CPU fast; the layouts and layers are the full models'.
NARROW = {
    "cnn": {"width": 4},
    "resnet18": {"width": 4},
    "resnet50": {"width": 4},
    "wrn-16-4": {"groups": 4},
    "p4-resnet18": {"width": 8},
    "p4m-resnet18": {"width": 8},
    "e4-p4-resnet18": {"width": 8},
    "e4-p4m-resnet18": {"width": 8},
    "eq-cnn": {"widths": (2, 4)},
    "vit": {"hidden_size": 24, "num_layers": 1, "num_heads": 2},
}
MODELS = sorted(set(list_models()) - {"arch-spec"})  # arch-spec needs a spec to exist


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("name", MODELS)
def test_every_model_keeps_its_declared_invariance_at_its_size(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = eqdp.create_model(name, 1, 3, image_size=size, **NARROW.get(name, {}))
    model = model.double().eval()
    image = torch.randn(1, 1, size, size, dtype=torch.float64)
    group = getattr(model, "group", model_spec(name).group)
    actions = list(grid_actions(group)) if group else []
    batch = torch.cat([image] + [apply_grid_action(image, a) for a in actions])
    with torch.no_grad():
        logits = model(batch)
    assert logits.shape == (len(batch), 3)
    scale = logits.abs().max().item()
    assert scale > 0 and torch.isfinite(logits).all()
    if actions:
        # float64 throughout but for bases some layers precompute in float32: 1e-6, not 1e-12.
        worst = (logits - logits[:1]).abs().max().item()
        assert worst <= 1e-6 * max(1.0, scale), (name, size, group, worst)


@pytest.mark.parametrize(("built", "given"), [(28, 32), (64, 28)])
def test_an_image_of_another_size_names_both_sizes_and_image_size(built: int, given: int) -> None:
    model = eqdp.create_model("p4-resnet18", 1, 2, image_size=built, width=8).eval()
    with pytest.raises(EqdpError) as caught:
        model(torch.randn(1, 1, given, given))
    message = str(caught.value)
    assert f"built for {built}x{built} images but got {given}x{given}" in message
    assert f"image_size={given}" in message and "\n" not in message


def test_the_default_size_is_the_builders_28() -> None:
    model = eqdp.create_model("cnn", 1, 2, width=4).eval()
    with pytest.raises(EqdpError, match="built for 28x28 images but got 64x64"):
        model(torch.randn(1, 1, 64, 64))
