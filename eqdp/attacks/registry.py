"""The attack registry: one ``Attack`` entry per name; adding an attack is one registration.

An attack maps ``(model, images in [0, 1], labels, eps)`` to adversarial images
in the eps-ball around ``images`` (and in [0, 1]); ``model`` takes [0, 1] images
(``PixelSpaceModel``). ``params`` says what a record must state about it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eqdp.errors import EqdpError
from eqdp.registry import Registry

# Linf budgets in 1/255 steps as usual; L2 budgets on 28x28 images of a comparable strength.
DEFAULT_EPS: dict[str, tuple[float, ...]] = {
    "linf": (1 / 255, 2 / 255, 4 / 255, 8 / 255),
    "l2": (0.1, 0.25, 0.5, 1.0),
}


@dataclass(frozen=True)
class Attack:
    name: str
    norm: str  # "linf" or "l2": the ball, and the default budgets
    description: str
    run: Callable[..., Any]  # (model, images, labels, eps, *, task, steps, generator) -> images
    default: bool = True  # part of the default attack set (expensive ones are asked for by name)
    params: Callable[[int], dict[str, Any]] = field(default=lambda steps: {})  # record's params
    single_label_only: bool = False

    def check_task(self, task: str, dataset: str) -> None:
        if self.single_label_only and task.startswith("multi-label"):
            raise EqdpError(f"{self.name} needs a single-label task; {dataset} is multi-label")


ATTACKS: Registry[Attack] = Registry("attack")


def register_attack(attack: Attack) -> Attack:
    ATTACKS.add(attack.name, attack)
    return attack


def default_attacks() -> tuple[str, ...]:
    return tuple(name for name in ATTACKS.names_in_order() if ATTACKS.get(name).default)
