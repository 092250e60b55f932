"""The one exception type the CLI turns into a one-line error and a non-zero exit."""

from __future__ import annotations

from collections.abc import Iterable


class EqdpError(Exception):
    """A user-facing error: the message names the bad value and what would be valid."""


def unknown_choice(kind: str, value: object, choices: Iterable[object]) -> EqdpError:
    listed = ", ".join(str(c) for c in choices)
    return EqdpError(f"unknown {kind} {value!r}; valid choices: {listed}")
