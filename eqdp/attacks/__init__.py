"""Evasion attacks in [0, 1] pixel space, from a registry: FGSM, PGD-Linf, PGD-L2, AutoAttack.

Importing this package registers every attack (``eqdp list attacks``). Budgets
are in pixel units before the MedMNIST normalisation, as in the robustness
literature; wrap a trained eqdp model in ``PixelSpaceModel`` to attack it.
"""

import importlib
import pkgutil

# Every module here but the registry registers attacks on import: a new attack is one module.
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "registry" and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")

from eqdp.attacks.gradient import (  # noqa: E402
    PGD_STEPS,
    STEP_SIZE_FACTOR,
    PixelSpaceModel,
    attack,
    fgsm,
    per_example_loss,
    pgd,
    wrongness,
)
from eqdp.attacks.registry import (  # noqa: E402
    ATTACKS,
    DEFAULT_EPS,
    Attack,
    default_attacks,
    register_attack,
)

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
