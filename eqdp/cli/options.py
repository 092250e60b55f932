"""Reusable Typer option types and value parsers for the eqdp CLI."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer

from eqdp.errors import EqdpError

DP_PANEL = "DP-SGD (benchmark dp)"
ROBUST_PANEL = "Low-data, adversarial, geometric"

Device = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
DataDir = Annotated[
    Path | None, typer.Option(help="Folder with MedMNIST .npz files \\[env: EQDP_DATA_DIR].")
]
ResultsDir = Annotated[
    Path | None, typer.Option(help="Records folder \\[env: EQDP_RESULTS_DIR; ./results].")
]
VerifyMd5 = Annotated[bool, typer.Option(help="Check the data file's MD5 against medmnist.INFO.")]


def dp_option(help: str) -> typer.models.OptionInfo:
    return typer.Option(help=help, rich_help_panel=DP_PANEL)


def robustness_option(help: str) -> typer.models.OptionInfo:
    return typer.Option(help=help, rich_help_panel=ROBUST_PANEL)


def parse_number(text: str) -> float:
    """A float, 'inf', or a fraction such as 8/255."""
    if "/" in text:
        return float(Fraction(text))
    return float(text)


def parse_list(text: str, kind: str, convert: Callable[[str], object]) -> list:
    values = []
    for part in text.split(","):
        try:
            values.append(convert(part.strip()))
        except ValueError:
            raise EqdpError(f"{kind} {part.strip()!r} is not a valid value in {text!r}") from None
    return values
