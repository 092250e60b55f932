"""The group ablation of Eq-NASNet B0 (``eq-nasnet-b0-group -k group=G``): every member
builds at B0's MACs, keeps its declared invariance, and C1 is the twin ``nasnet-b0``."""

from __future__ import annotations

import pytest
import torch

import eqdp
from eqdp.errors import EqdpError
from eqdp.models import count_macs, model_spec
from eqdp.models.equivariant.basis import apply_grid_action, grid_actions
from eqdp.models.nasnet import ABLATION_GROUPS, ablation_member, family_spec, matched_twin

ABLATION = "eq-nasnet-b0-group"


def b0_macs() -> int:
    return count_macs(eqdp.create_model("eq-nasnet-b0", 1, 2), (1, 28, 28))


def state(name: str, **options: object) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return eqdp.create_model(name, 1, 2, **options).state_dict()


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("group", ABLATION_GROUPS)
def test_each_member_matches_b0_macs_and_is_invariant_to_its_group(group: str) -> None:
    torch.manual_seed(0)
    # One input channel: the channels the match is made at (as nasnet-b0's).
    model = eqdp.create_model(ABLATION, 1, 4, group=group).eval().double()
    assert set(model.spec.groups) == {group}
    assert abs(count_macs(model, (1, 28, 28)) / b0_macs() - 1) < 0.02
    assert model.group == (None if group == "C1" else group)
    if group == "C1":
        return  # plain convolutions: translations only
    # C8 acts on the pixel grid only through its rotations by multiples of 90 degrees.
    on_grid = "C4" if group == "C8" else group
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        outputs = [model(apply_grid_action(x, a)) for a in grid_actions(on_grid)]
    # float64 arithmetic; what is left is the float32 rounding of the stored filter bases.
    assert max((o - outputs[0]).abs().max().item() for o in outputs) <= 1e-6
    assert outputs[0].abs().max().item() > 1e-3  # not invariant by being zero


def test_c1_member_is_the_twin() -> None:
    spec = family_spec("eq-nasnet-b0")
    assert ablation_member(spec, "C1") == matched_twin(spec, "macs")
    assert same_weights(state(ABLATION, group="C1"), state("nasnet-b0"))


def test_default_and_c4_are_the_searched_network() -> None:
    # B0's search chose C4 for every stage: its C4 member needs no rescaling.
    searched = state("eq-nasnet-b0")
    assert same_weights(state(ABLATION), searched)
    assert same_weights(state(ABLATION, group="C4"), searched)


def test_unknown_group_is_one_line_naming_the_choices() -> None:
    with pytest.raises(EqdpError, match=r"'C3'; valid choices: C1, C2, C4, D4, C8$"):
        eqdp.create_model(ABLATION, 1, 2, group="C3")


def test_searched_model_gains_no_option() -> None:
    # Records store every option: a new one would re-key new eq-nasnet-b0 runs.
    assert set(model_spec("eq-nasnet-b0").option_defaults()) == {
        "dropout", "width_multiplier", "depth_multiplier"
    }  # fmt: skip


def test_committed_ablation_suite_trains_every_member() -> None:
    from pathlib import Path

    from eqdp.suites import load_suite
    from eqdp.suites.plan import expand

    suite_file = Path(__file__).resolve().parents[1] / "benchmarks" / "standard-ablation.toml"
    configs = list(expand(load_suite(suite_file)))
    assert len(configs) == len(ABLATION_GROUPS) * 2 * 3  # groups x datasets x seeds
    assert {c.model_kwargs["group"] for c in configs} == set(ABLATION_GROUPS)
    assert {c.train.epochs for c in configs} == {100}
