"""The Eq-NASNet search space: an Optuna trial -> an :class:`ArchSpec`.

What is searched (define-by-run, so conditional choices only exist where they
apply):

- the subgroup chain and where the network steps down it: the rotation chain
  D8 > D4 > C4 > C2 > C1 or the reflection chain D4 > D2 > D1; the stem's group
  and, per stage, how many steps down (0-2) the chain it goes;
- the filter basis (escnn's band-limited or the full grid basis; the full one
  only where every group acts on the pixel grid, i.e. without D8);
- the stem's fields, kernel and whether it downsamples;
- 2-4 stages, each: block type (basic, bottleneck, inverted residual), depth
  (1-3), fields, kernel (3 or 5), expansion (inverted 1-6, bottleneck 2 or 4),
  and whether it downsamples (at most three halvings in all: 28 -> 4 px);
- head dropout.
"""

from __future__ import annotations

from typing import Any

from eqdp.models.arch.spec import ArchSpec, HeadSpec, StageSpec, StemSpec
from eqdp.models.equivariant.basis import group_order

CHAINS: dict[str, tuple[str, ...]] = {
    "rotation": ("D8", "D4", "C4", "C2", "C1"),
    "reflection": ("D4", "D2", "D1"),
}
STEM_STARTS: dict[str, tuple[int, ...]] = {"rotation": (0, 1, 2), "reflection": (0,)}
FIELDS = (2, 3, 4, 6, 8, 12, 16, 24)
STEM_FIELDS = (2, 3, 4, 6, 8)
MAX_HALVINGS = 3


def allowed_chains(min_group_order: int) -> dict[str, tuple[str, ...]]:
    """The chains cut where a group would be smaller than ``min_group_order``."""
    chains = {
        name: tuple(g for g in chain if group_order(g) >= min_group_order)
        for name, chain in CHAINS.items()
    }
    return {name: chain for name, chain in chains.items() if chain}


def suggest_spec(trial: Any, min_group_order: int = 1, name: str = "") -> ArchSpec:
    """The architecture a trial's choices describe (``trial`` is an ``optuna.Trial``).

    ``min_group_order`` bounds how far down its chain a network may go, so its
    logits stay invariant to a group of at least that order (1: down to C1).
    """
    chains = allowed_chains(min_group_order)
    chain_name = trial.suggest_categorical("chain", list(chains))
    chain = chains[chain_name]
    starts = [p for p in STEM_STARTS[chain_name] if p < len(chain)]
    position = trial.suggest_categorical(f"start_{chain_name}", starts)
    halvings = 0
    stem_downsample = trial.suggest_categorical("stem_downsample", ["none", "avgpool"])
    halvings += stem_downsample == "avgpool"
    stem = StemSpec(
        fields=trial.suggest_categorical("stem_fields", list(STEM_FIELDS)),
        group=chain[position],
        kernel_size=trial.suggest_categorical("stem_kernel", [3, 5]),
        downsample=stem_downsample,
    )
    n_stages = trial.suggest_int("stages", 2, 4)
    stages = []
    for index in range(n_stages):
        step = trial.suggest_int(f"s{index}_restrict", 0, 2)
        position = min(position + step, len(chain) - 1)
        block = trial.suggest_categorical(f"s{index}_block", ["basic", "bottleneck", "inverted"])
        expansion = 1.0
        if block == "inverted":
            expansion = float(trial.suggest_categorical(f"s{index}_expand", [1, 2, 3, 4, 6]))
        elif block == "bottleneck":
            expansion = float(trial.suggest_categorical(f"s{index}_reduce", [2, 4]))
        downsample = "none"
        if halvings < MAX_HALVINGS:
            downsample = trial.suggest_categorical(f"s{index}_downsample", ["none", "avgpool"])
            halvings += downsample == "avgpool"
        stages.append(
            StageSpec(
                block=block,
                blocks=trial.suggest_int(f"s{index}_blocks", 1, 3),
                fields=trial.suggest_categorical(f"s{index}_fields", list(FIELDS)),
                group=chain[position],
                kernel_size=trial.suggest_categorical(f"s{index}_kernel", [3, 5]),
                expansion=expansion,
                downsample=downsample,
            )
        )
    groups = {stem.group, *(s.group for s in stages)}
    basis = "bandlimited"
    if "D8" not in groups:
        basis = trial.suggest_categorical("basis", ["bandlimited", "full"])
    head = HeadSpec(dropout=trial.suggest_categorical("dropout", [0.0, 0.1, 0.2]))
    return ArchSpec(
        name=name or f"trial-{trial.number}", stem=stem, stages=tuple(stages), head=head,
        basis=basis, resolution=28,
    )  # fmt: skip
