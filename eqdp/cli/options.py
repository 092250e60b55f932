"""Reusable Typer option types, value parsers, and options generated from typed configs."""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import typer

from eqdp.config.fields import OptionSpec
from eqdp.errors import EqdpError

TRAIN_PANEL = "Training recipe"
WHERE_PANEL = "Data, records, device"

ResultsDir = Annotated[
    Path | None,
    typer.Option(
        help="Records folder \\[env: EQDP_RESULTS_DIR; default ./runs; the committed records "
        "are in ./results].",
        rich_help_panel=WHERE_PANEL,
    ),
]


def parse_list(text: str, kind: str, convert: Callable[[str], object]) -> list:
    values = []
    parts = text.split(",")
    for part in parts:
        try:
            values.append(convert(part.strip()))
        except (ValueError, ZeroDivisionError):
            expected = {int: "an integer", float: "a number"}.get(convert, "a valid value")
            where = f" in {text!r}" if len(parts) > 1 else ""
            raise EqdpError(
                f"{kind} {part.strip()!r} is not a valid value{where}: give {expected}, "
                f"or a comma list such as 0,1,2"
            ) from None
    return values


def cli_value(text: str) -> Any:
    """One command-line value as typed as it can be: fractions become floats; the typed
    config does the rest (and names the field when a value does not fit)."""
    text = text.strip()
    if "/" in text:
        try:
            return float(Fraction(text))
        except (ValueError, ZeroDivisionError):
            raise EqdpError(f"{text!r} is not a number or a fraction such as 8/255") from None
    return text


def _is_sequence(annotation: Any) -> bool:
    origins = {typing.get_origin(a) for a in _union_members(annotation)}
    return bool(origins & {tuple, list})


def _union_members(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def metavar(spec: OptionSpec) -> str:
    members = _union_members(spec.annotation)
    names = {getattr(m, "__name__", str(m)) for m in members}
    if spec.sweep or _is_sequence(spec.annotation):
        return "LIST"
    if typing.get_origin(members[0]) is typing.Literal:
        return "|".join(str(a) for a in typing.get_args(members[0]))
    for name in ("int", "float", "bool", "str"):
        if name in names:
            return {"int": "INT", "float": "NUMBER", "bool": "BOOL", "str": "TEXT"}[name]
    return "VALUE"


def help_text(spec: OptionSpec) -> str:
    text = spec.help.replace("[", "\\[")
    if spec.sweep:
        text += " Comma list: one run per value."
    if not spec.required and spec.default is not None and "[default" not in spec.help:
        default = spec.default
        if isinstance(default, (tuple, list)):
            default = ",".join(str(v) for v in default)
        text += f" \\[default: {default}]"
    return text


def parameters_for(
    specs: list[OptionSpec], panel: str, prefix: str = ""
) -> list[inspect.Parameter]:
    """One ``--field-name`` Typer option (a string, parsed later) per config field."""
    parameters = []
    for spec in specs:
        flag = "--" + spec.name.replace("_", "-")
        option = typer.Option(
            None,
            flag,
            *spec.flags,
            help=help_text(spec),
            metavar=metavar(spec),
            rich_help_panel=panel,
            show_default=False,
        )
        parameters.append(
            inspect.Parameter(
                prefix + spec.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=option,
                annotation=str | None,
            )
        )
    return parameters


def values_from(
    specs: list[OptionSpec], given: dict[str, str | None], prefix: str = ""
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """(fixed values, swept values) of the fields given on the command line."""
    fixed: dict[str, Any] = {}
    swept: dict[str, list[Any]] = {}
    for spec in specs:
        text = given.get(prefix + spec.name)
        if text is None:
            continue
        if spec.sweep:
            swept[spec.name] = [cli_value(part) for part in text.split(",")]
        elif _is_sequence(spec.annotation):
            fixed[spec.name] = [cli_value(part) for part in text.split(",") if part.strip()]
        else:
            fixed[spec.name] = cli_value(text)
    return fixed, swept


def parse_model_args(items: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a value is read as JSON where it is JSON (2, 0.5, [8,16]), else text."""
    kwargs: dict[str, Any] = {}
    for item in items or []:
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise EqdpError(f"model option {item!r} is not KEY=VALUE, e.g. width_multiplier=2")
        try:
            kwargs[name.strip()] = json.loads(value)
        except ValueError:
            kwargs[name.strip()] = value
    return kwargs


__all__ = [
    "ResultsDir",
    "cli_value",
    "parameters_for",
    "parse_list",
    "parse_model_args",
    "values_from",
]
