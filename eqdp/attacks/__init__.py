"""Evasion attacks in [0, 1] pixel space, from a registry: FGSM, PGD-Linf, PGD-L2, AutoAttack.

Importing this package registers every attack (``eqdp list attacks``). Budgets
are in pixel units before the MedMNIST normalisation, as in the robustness
literature; wrap a trained eqdp model in ``PixelSpaceModel`` to attack it.
"""

# isort: off
from eqdp.attacks import gradient as _gradient  # noqa: F401  (registers fgsm and pgd, first)
from eqdp.attacks import autoattack as _autoattack  # noqa: F401  (registers autoattack)

# isort: on
from eqdp.attacks.gradient import (
    PGD_STEPS,
    STEP_SIZE_FACTOR,
    PixelSpaceModel,
    attack,
    fgsm,
    per_example_loss,
    pgd,
    wrongness,
)
from eqdp.attacks.registry import ATTACKS, DEFAULT_EPS, Attack, default_attacks, register_attack

__all__ = [
    "ATTACKS",
    "DEFAULT_EPS",
    "PGD_STEPS",
    "STEP_SIZE_FACTOR",
    "Attack",
    "PixelSpaceModel",
    "attack",
    "default_attacks",
    "fgsm",
    "per_example_loss",
    "pgd",
    "register_attack",
    "wrongness",
]
