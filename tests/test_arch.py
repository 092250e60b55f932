"""ArchSpec networks: spec validation, exact invariance along subgroup chains, the full
grid basis, the C1 twin, spec files through create_model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import eqdp
from eqdp.errors import EqdpError
from eqdp.models import count_macs, count_parameters
from eqdp.models.arch import ArchSpec, StageSpec, StemSpec, build_network, scaled, trivial_twin
from eqdp.models.equivariant.basis import apply_grid_action, grid_actions, steerable_basis
from eqdp.models.nasnet import matched_twin


def spec_with(groups: tuple[str, ...], basis: str = "bandlimited", **stage) -> ArchSpec:
    stem_group, *stage_groups = groups
    blocks = ["inverted", "bottleneck", "basic"]
    stages = tuple(
        StageSpec(block=stage.get("block", blocks[i % 3]), blocks=1, fields=2 + i, group=g,
                  expansion=2.0, downsample="avgpool" if i else "none")
        for i, g in enumerate(stage_groups)
    )  # fmt: skip
    return ArchSpec(name="t", stem=StemSpec(fields=2, group=stem_group), stages=stages, basis=basis)


@pytest.mark.parametrize(
    "groups",
    [("D8", "D4", "C4", "C2", "C1"), ("D4", "D4", "C4"), ("D4", "D2", "D1"), ("C4", "C2", "C2")],
    ids=lambda g: ">".join(g),
)
@pytest.mark.parametrize("size", [28, 64])
def test_spec_networks_are_invariant_to_their_last_group(groups, size: int) -> None:
    torch.manual_seed(0)
    model = build_network(spec_with(groups), 3, 4).eval()
    assert model.group == (None if groups[-1] == "C1" else groups[-1])  # C1: no invariance
    x = torch.randn(2, 3, size, size)
    actions = grid_actions(groups[-1])
    with torch.no_grad():
        outputs = [model(apply_grid_action(x, a)) for a in actions]
    assert max((o - outputs[0]).abs().max().item() for o in outputs) <= 1e-4


def test_a_network_stepped_down_to_c4_is_not_invariant_to_flips() -> None:
    torch.manual_seed(0)
    model = build_network(spec_with(("D4", "C4", "C4")), 1, 2).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert (model(x.flip(-1)) - model(x)).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("group", "in_kind", "bandlimited", "full"),
    [("C4", "regular", 24, 36), ("D4", "regular", 48, 72), ("D4", "trivial", 6, 9)],
)
def test_full_grid_basis_has_every_grid_equivariant_filter(group, in_kind, bandlimited, full):
    harmonic = steerable_basis(group, in_kind, "regular", 3)
    grid = steerable_basis(group, in_kind, "regular", 3, basis="full")
    assert (harmonic.shape[0], grid.shape[0]) == (bandlimited, full)
    # escnn's band-limited filters lie in the span of the full basis (orthonormal rows).
    flat_grid, flat_harmonic = grid.flatten(1).double(), harmonic.flatten(1).double()
    projected = flat_harmonic @ flat_grid.T @ flat_grid
    assert torch.allclose(projected, flat_harmonic, atol=1e-5)


def test_full_basis_network_is_invariant_and_refuses_off_grid_groups() -> None:
    torch.manual_seed(0)
    model = build_network(spec_with(("D4", "D4", "C4"), basis="full"), 1, 2).eval()
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        outputs = [model(apply_grid_action(x, a)) for a in grid_actions("C4")]
    assert max((o - outputs[0]).abs().max().item() for o in outputs) <= 1e-4
    with pytest.raises(EqdpError, match="full grid basis needs groups acting on the pixel grid"):
        spec_with(("D8", "D4", "C4"), basis="full")


@pytest.mark.parametrize(
    ("groups", "message"),
    [(("C4", "D4", "C4"), "D4 is not a subgroup of C4"), (("D4", "C2", "D1"), "not a subgroup")],
)
def test_groups_may_only_shrink(groups, message: str) -> None:
    with pytest.raises(EqdpError, match=message):
        spec_with(groups)


def test_spec_file_round_trip_and_create_model(tmp_path: Path) -> None:
    spec = spec_with(("D4", "D4", "C4"))
    path = spec.save(tmp_path / "spec.json")
    assert ArchSpec.load(path) == spec
    model = eqdp.create_model(str(path), 1, 2)
    assert model.group == "C4" and count_parameters(model) > 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**spec.as_dict(), "stages": [{"block": "dense"}]}))
    with pytest.raises(EqdpError, match="block"):
        ArchSpec.load(bad)


@pytest.mark.parametrize("match", ["macs", "params"])
def test_c1_twin_matches_macs_or_params(match: str) -> None:
    spec = spec_with(("D4", "D4", "C4"))
    twin_spec = matched_twin(spec, match)
    assert set(twin_spec.groups) == {"C1"} and twin_spec.basis == "full"
    equivariant, twin = build_network(spec, 1, 2), build_network(twin_spec, 1, 2)
    if match == "macs":
        ours, theirs = count_macs(equivariant, (1, 28, 28)), count_macs(twin, (1, 28, 28))
    else:
        ours, theirs = count_parameters(equivariant), count_parameters(twin)
    assert abs(theirs - ours) / ours < 0.1
    with pytest.raises(EqdpError, match="unknown twin match 'flops'"):
        matched_twin(spec, "flops")


def test_scaling_grows_the_network() -> None:
    spec = spec_with(("D4", "D4", "C4"))
    macs = count_macs(build_network(spec, 1, 2), (1, 28, 28))
    assert count_parameters(build_network(trivial_twin(spec), 1, 2)) > 0
    bigger = scaled(spec, width=1.5, depth=2.0, resolution=1.25)
    assert bigger.resolution == 35 and all(s.blocks == 2 for s in bigger.stages)
    assert count_macs(build_network(bigger, 1, 2), (1, 28, 28)) > macs
    assert replace(spec, name="x").name == "x"


def test_compound_scaling_grid_and_family(tmp_path: Path, monkeypatch) -> None:
    from eqdp.data import make_synthetic_npz
    from eqdp.search import compound

    assert all(
        abs(a * b * b * g * g - 2) <= compound.TOLERANCE for a, b, g in compound.candidates()
    )
    assert (1.2, 1.1, 1.15) in compound.candidates()  # EfficientNet's own coefficients
    make_synthetic_npz(tmp_path, "breastmnist", 64, n_per_split=(32, 16, 16), seed=0)
    monkeypatch.setattr(compound, "candidates", lambda: [(1.4, 1.0, 1.3), (1.2, 1.1, 1.15)])
    b0 = spec_with(("D4", "D4", "C4"))
    grid = compound.grid_search(b0, epochs=1, seeds=(0,), data_dir=str(tmp_path), verify_md5=False)
    assert [row["resolution"] for row in grid["candidates"]] == [36, 32]
    assert set(grid["chosen"]) == {"alpha", "beta", "gamma"}
    paths = compound.write_family(b0, grid, tmp_path / "specs")
    family = [ArchSpec.load(p) for p in paths]
    macs = [count_macs(build_network(s, 1, 2), (1, s.resolution, s.resolution)) for s in family]
    assert macs == sorted(macs) and len(set(macs)) == 3


FAMILY = [f"eq-nasnet-b{i}" for i in range(4)]


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("size", [28, 64])
def test_family_members_are_invariant_to_their_final_group(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = eqdp.create_model(name, 3, 4, image_size=size).eval()
    assert model.group == eqdp.models.model_spec(name).group
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        outputs = [model(apply_grid_action(x, a)) for a in grid_actions(model.group)]
    assert len(outputs) >= 4
    assert max((o - outputs[0]).abs().max().item() for o in outputs) <= 1e-4


def test_family_costs_grow_and_b0_is_the_alias() -> None:
    from eqdp.models import describe_model, model_spec

    specs = [model_spec(name) for name in FAMILY]
    macs = []
    for name in FAMILY:
        resolution = eqdp.models.nasnet.family_spec(name).resolution
        macs.append(describe_model(name, image_size=resolution).macs)
    assert macs == sorted(macs) and len(set(macs)) == 4, macs
    assert all(spec.family == "equivariant" for spec in specs)
    assert eqdp.models.MODELS.canonical("eq-nasnet") == "eq-nasnet-b0"
    b0 = describe_model("eq-nasnet-b0")
    assert b0.macs <= describe_model("efficientnet-b0").macs  # the search's target
    twin = describe_model("nasnet-b0")
    assert twin.group is None and abs(twin.macs - b0.macs) / b0.macs < 0.1


def test_run_config_stores_the_canonical_family_name(tmp_path: Path) -> None:
    from eqdp.benchmarks.execute import resolve_config
    from eqdp.config import RunConfig
    from eqdp.data import make_synthetic_npz

    make_synthetic_npz(tmp_path, "breastmnist", 28)
    config = RunConfig("standard", "eq-nasnet", "breastmnist", data_dir=str(tmp_path),
                       verify_md5=False)  # fmt: skip
    assert resolve_config(config).model == "eq-nasnet-b0"
    spec_file = spec_with(("D4", "C4")).save(tmp_path / "mine.json")
    resolved = resolve_config(config.replace(model=str(spec_file)))
    assert resolved.model == "arch-spec" and resolved.model_kwargs["spec"]["name"] == "t"
