"""Checks of a model option's value against the type its builder declares, before building.

A builder's keyword options are typed (``width: int = 32``); a value of the wrong type or
range would otherwise reach torch and fail there with a traceback about out_channels or
string formatting. The checks need only the annotation text, so the command line runs
them from the catalogue without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from eqdp.errors import EqdpError


@dataclass(frozen=True)
class Interval:
    low: float
    high: float = math.inf
    low_closed: bool = False
    high_closed: bool = False

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>=' if self.low_closed else '>'} {self.low:g}"
        left, right = "[" if self.low_closed else "(", "]" if self.high_closed else ")"
        return f"in {left}{self.low:g}, {self.high:g}{right}"


# A dropout is a probability; every other number a model takes is a width, a depth, a
# count or a multiplier of one, which only makes sense positive.
POSITIVE = Interval(0)
RANGES = {"dropout": Interval(0, 1, low_closed=True)}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def describe_type(name: str, annotation: str) -> str:
    """What an option takes, in words: ``an integer > 0``."""
    kind = annotation.replace(" | None", "").replace("typing.", "").strip()
    interval = RANGES.get(name, POSITIVE)
    return {
        "int": f"an integer {interval}",
        "float": f"a number {interval}",
        "bool": "true or false",
        "str": "a text value",
        "tuple[int, ...]": f"a list of integers {interval}, e.g. [8,16,32]",
        "list[int]": f"a list of integers {interval}, e.g. [8,16,32]",
    }.get(kind, "any value")


def _fits(name: str, kind: str, value: Any) -> bool:
    interval = RANGES.get(name, POSITIVE)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and value in interval
    if kind == "float":
        return _is_number(value) and math.isfinite(value) and value in interval
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind in ("tuple[int, ...]", "list[int]"):
        return (
            isinstance(value, (list, tuple))
            and len(value) > 0
            and all(_fits(name, "int", v) for v in value)
        )
    return True  # Any, or a type these checks do not know: the builder checks it


def check_option(model: str, name: str, annotation: str, default: Any, value: Any) -> None:
    """Raise a one-line EqdpError naming the option and what it takes when ``value`` does
    not fit ``annotation`` (the builder's annotation, as text)."""
    kind = annotation.replace("typing.", "").strip()
    if kind.endswith(" | None"):
        if value is None:
            return
        kind = kind.removesuffix(" | None")
    if not _fits(name, kind, value):
        raise EqdpError(
            f"model {model!r} option {name}={value!r} is not valid: {name} takes "
            f"{describe_type(name, kind)} (default {default!r})"
        )


__all__ = ["Interval", "check_option", "describe_type"]
