"""Model registry: ``@register_model("name")`` on a builder, ``create_model`` to build.

Every builder takes ``(in_channels, num_classes, *, dp=False, image_size=28, **kwargs)``;
``dp=True`` asks for the DP-SGD-compatible variant (per-sample normalisation).
The keyword arguments after ``*`` other than ``dp`` and ``image_size`` are the
model's options (``model_kwargs`` of a run); their defaults come from the
builder's signature, and a record stores them all (``resolve_model_kwargs``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from eqdp.catalogue.model_options import check_option
from eqdp.errors import EqdpError
from eqdp.registry import Registry

# Builder arguments that are not model options: the run sets them.
_RUN_ARGUMENTS = frozenset({"in_channels", "num_classes", "dp", "image_size"})


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., nn.Module]
    family: str  # "equivariant" or "baseline"
    group: str | None  # symmetry group beyond translations, None for plain CNNs
    description: str
    dp_refusal: str | None = None  # why the model cannot be trained under DP, if it cannot

    def _options(self) -> list[inspect.Parameter]:
        parameters = inspect.signature(self.builder).parameters.values()
        return [
            p
            for p in parameters
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _RUN_ARGUMENTS
        ]

    def option_defaults(self) -> dict[str, Any]:
        """The model's options and their defaults, from the builder's signature."""
        return {p.name: _plain(p.default) for p in self._options()}

    def option_types(self) -> dict[str, str]:
        """Each option's annotation as text (``"int"``), what ``check_option`` reads."""
        return {
            p.name: p.annotation if isinstance(p.annotation, str) else _type_name(p.annotation)
            for p in self._options()
        }

    def check_options(self, given: dict[str, Any]) -> None:
        """A one-line error for the first given option whose value its type does not take."""
        types, defaults = self.option_types(), self.option_defaults()
        for name, value in given.items():
            if name in types:
                check_option(self.name, name, types[name], defaults[name], value)


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "Any"
    return getattr(annotation, "__name__", str(annotation))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(
    name: str,
    *,
    family: str = "baseline",
    group: str | None = None,
    description: str = "",
    dp_refusal: str | None = None,
) -> Callable:
    return MODELS.decorator(
        name, lambda fn: ModelSpec(name, fn, family, group, description, dp_refusal)
    )


def list_models() -> list[str]:
    return MODELS.names()


def model_spec(name: str) -> ModelSpec:
    """The registered model, or ``arch-spec`` for a spec file (``*.json``)."""
    return MODELS.get("arch-spec" if name.endswith(".json") else name)


def canonical_model(name: str, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A run's model as records store it: aliases resolved, a spec file read into options.

    ``eq-nasnet`` becomes ``eq-nasnet-b0``; ``my.json`` becomes ``arch-spec`` with the
    spec's content (not its path) as an option, so the row key follows the network.
    """
    if name.endswith(".json"):
        from eqdp.models.nasnet import load_spec

        return "arch-spec", {**kwargs, "spec": load_spec(name).as_dict()}
    if name == "arch-spec" and not isinstance(kwargs.get("spec"), dict):
        from eqdp.models.nasnet import load_spec

        return name, {**kwargs, "spec": load_spec(kwargs.get("spec")).as_dict()}
    return MODELS.canonical(name), kwargs


def resolve_model_kwargs(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """Every option of the model: the given values over the builder's defaults.

    An option the model does not have is an error naming the valid ones.
    """
    defaults = model_spec(name).option_defaults()
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        valid = ", ".join(sorted(defaults)) or "none"
        raise EqdpError(f"model {name!r} has no option(s) {unknown}; its options: {valid}")
    model_spec(name).check_options(given)
    return {**defaults, **{k: _plain(v) for k, v in given.items()}}


def create_model(
    name: str, in_channels: int, num_classes: int, *, dp: bool = False, **kwargs: object
) -> nn.Module:
    spec = model_spec(name)
    if name.endswith(".json"):  # a spec file: see eqdp.models.nasnet
        kwargs = {**kwargs, "spec": name}
    if in_channels < 1 or num_classes < 1:
        raise EqdpError(
            f"in_channels and num_classes must be >= 1, got {in_channels}, {num_classes}"
        )
    spec.check_options(kwargs)
    if dp and spec.dp_refusal:
        raise EqdpError(f"model {name!r} cannot be trained under DP-SGD: {spec.dp_refusal}")
    try:
        model = spec.builder(in_channels, num_classes, dp=dp, **kwargs)
    except ValueError as error:  # torch's checks of an option's value (dropout=2, ...)
        raise EqdpError(f"model {name!r}: {error}") from error
    image_size = kwargs.get("image_size", _builder_default(spec, "image_size"))
    if isinstance(image_size, int):
        model.built_for = (name, image_size)
        model.register_forward_pre_hook(check_input_size)
    return model


def _builder_default(spec: ModelSpec, argument: str) -> Any:
    parameter = inspect.signature(spec.builder).parameters.get(argument)
    return None if parameter is None else parameter.default


def check_input_size(model: nn.Module, inputs: tuple[Any, ...]) -> None:
    """Forward pre-hook: an image of another size than the model was built for fails here,
    with what to do, rather than deep inside a layer whose geometry was fixed for that size
    (a stride-2 equivariant convolution's "needs a square map of odd size")."""
    name, size = model.built_for
    images = inputs[0] if inputs else None
    shape = getattr(images, "shape", ())
    if len(shape) == 4 and tuple(shape[-2:]) != (size, size):
        height, width = shape[-2:]
        raise EqdpError(
            f"model {name!r} was built for {size}x{size} images but got {height}x{width}: "
            f"build it for that size, create_model({name!r}, ..., image_size={height})"
        )


def without_dropout(model: nn.Module) -> nn.Module:
    """Switch off dropout and drop-connect in place, so that batched and per-example
    passes, or eager and captured steps, compute the same function (exactness checks)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        if hasattr(module, "drop_connect_rate"):
            module.drop_connect_rate = 0.0
    return model
