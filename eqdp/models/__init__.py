"""Model registry with equivariant and baseline models; importing registers them all."""

from eqdp.models import baselines as _baselines  # noqa: F401  (registers baselines)
from eqdp.models import nasnet as _nasnet  # noqa: F401,I001  (eq-nasnet-b*, nasnet-b*)
from eqdp.models.equivariant import group_resnets as _group_resnets  # noqa: F401  (p4*, e4-*)
from eqdp.models.equivariant import networks as _networks  # noqa: F401  (registers eq-*)
from eqdp.models.info import ModelInfo, count_macs, count_parameters, describe_model
from eqdp.models.registry import (
    MODELS,
    ModelSpec,
    canonical_model,
    create_model,
    list_models,
    model_spec,
    register_model,
    resolve_model_kwargs,
    without_dropout,
)

__all__ = [
    "MODELS",
    "ModelInfo",
    "ModelSpec",
    "canonical_model",
    "count_macs",
    "count_parameters",
    "create_model",
    "describe_model",
    "list_models",
    "model_spec",
    "register_model",
    "resolve_model_kwargs",
    "without_dropout",
]
