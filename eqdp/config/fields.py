"""Typed, frozen, validated configuration classes and the metadata their fields carry.

Every configuration in eqdp (training recipe, run, benchmark options, suite
file) is a pydantic dataclass declared with :func:`config_class` and fields made
with :func:`option`. A field's metadata says how to show it in a human label,
whether it is part of a configuration's identity (``key``), and whether the CLI
takes a comma list of values for it (``sweep``: one run per value). The CLI, the
suite files, the row keys and the labels all read the same declarations, so a
new option is declared once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from eqdp.errors import EqdpError

T = TypeVar("T")

# Unknown fields are errors (a typo must not be ignored); values are validated on creation.
CONFIG = ConfigDict(extra="forbid")


def config_class(cls: type[T]) -> type[T]:
    """A frozen pydantic dataclass that refuses unknown fields."""
    return pydantic_dataclass(frozen=True, config=CONFIG)(cls)


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    label: str | None = None,
    key: bool = True,
    sweep: bool = False,
    flags: tuple[str, ...] = (),
    **constraints: Any,
) -> Any:
    """A config field.

    label: format of the field in a human label, e.g. ``"{}ep"`` or ``"lr{:g}"``;
        None shows ``name=value``.
    key: False for settings that change how a run executes but not what it
        computes (batch sizes of evaluation or of physical passes, locations):
        they are left out of the configuration's identity and labels.
    sweep: the CLI takes a comma list for it, one run per value.
    flags: extra command-line names (the field's own is ``--field-name``).
    """
    extra = {"label": label, "key": key, "sweep": sweep, "flags": list(flags)}
    if default is dataclasses.MISSING:
        return Field(description=help, json_schema_extra=extra, **constraints)
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults need default_factory")
    return Field(default=default, description=help, json_schema_extra=extra, **constraints)


@dataclass(frozen=True)
class OptionSpec:
    """What the CLI, suites and labels need to know about one config field."""

    name: str
    help: str
    default: Any  # dataclasses.MISSING when required
    annotation: Any
    label: str | None
    key: bool
    sweep: bool
    flags: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    def format(self, value: Any) -> str:
        shown = format_value(value)
        if self.label is None:
            return f"{self.name}={shown}"
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if "{:" in self.label and numeric and math.isfinite(value):
            return self.label.format(value)
        return self.label.replace("{:g}", "{}").format(shown)


def option_specs(cls: type) -> list[OptionSpec]:
    """The fields of a config class, in declaration order."""
    specs = []
    for name, info in cls.__pydantic_fields__.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if info.default_factory is not None:
            default = info.default_factory()
        elif info.is_required():
            default = dataclasses.MISSING
        else:
            default = info.default
        specs.append(
            OptionSpec(
                name=name,
                help=info.description or "",
                default=default,
                annotation=info.annotation,
                label=extra.get("label"),
                key=bool(extra.get("key", True)),
                sweep=bool(extra.get("sweep", False)),
                flags=tuple(extra.get("flags", ())),
            )
        )
    return specs


def field_names(cls: type) -> list[str]:
    return list(cls.__pydantic_fields__)


def format_value(value: Any) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value)
    return str(value)


def _describe_error(error: dict, where: str) -> str:
    location = ".".join(str(part) for part in error["loc"] if part != "__root__")
    prefix = f"{where}: " if where else ""
    if error["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"{prefix}unknown field {location!r}"
    if error["type"] in ("missing", "missing_argument"):
        return f"{prefix}{location} is required (--{location.replace('_', '-')})"
    value = error.get("input")
    message = error["msg"]
    if error["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    return f"{prefix}{location} = {value!r}: {message}" if location else f"{prefix}{message}"


def parse_config(cls: type[T], values: Mapping[str, Any], where: str = "") -> T:
    """``cls(**values)``, with any validation problem as one EqdpError line.

    The line names the field, the bad value and what pydantic expected, and for
    an unknown field the valid field names.
    """
    if not isinstance(values, Mapping):
        raise EqdpError(f"{where}: expected a table of fields, got {values!r}")
    try:
        return cls(**values)
    except ValidationError as error:
        first = error.errors()[0]
        message = _describe_error(first, where)
        if first["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            message += f"; valid: {', '.join(field_names(cls))}"
        raise EqdpError(message) from None
    except TypeError as error:  # a missing required argument
        raise EqdpError(f"{where}: {error}") from None


def as_plain_dict(config: Any) -> dict[str, Any]:
    """A config as plain JSON-like values (tuples become lists)."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
