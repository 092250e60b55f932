"""Typed configurations: the training recipe, one run, and the machinery behind them."""

from eqdp.config.fields import OptionSpec, config_class, option, option_specs, parse_config
from eqdp.config.run import DEVICES, LOCATION_FIELDS, RunConfig, TrainedBy
from eqdp.config.train import AUGMENTATIONS, PRECISIONS, TrainConfig

__all__ = [
    "AUGMENTATIONS",
    "DEVICES",
    "LOCATION_FIELDS",
    "PRECISIONS",
    "OptionSpec",
    "RunConfig",
    "TrainConfig",
    "TrainedBy",
    "config_class",
    "option",
    "option_specs",
    "parse_config",
]
