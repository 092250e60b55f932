"""Privacy-budget rules that need no accountant: delta's default and range, accountant names."""

from __future__ import annotations

from eqdp.errors import EqdpError, unknown_choice

ACCOUNTANTS: tuple[str, ...] = ("prv", "rdp")


def default_delta(n_train: int) -> float:
    """Common practice: well below 1/N so that leaking one record outright is unlikely."""
    return min(1e-5, 1.0 / (10 * n_train))


def check_accountant(name: str) -> str:
    if name not in ACCOUNTANTS:
        raise unknown_choice("accountant", name, ACCOUNTANTS)
    return name


def check_delta(delta: float, n_train: int) -> float:
    if not 0 < delta < 1.0 / n_train:
        raise EqdpError(
            f"delta must be in (0, 1/N_train) = (0, {1.0 / n_train:.3g}) for N_train={n_train}, "
            f"got {delta:g}"
        )
    return delta
