"""Device choice and seeding."""

from __future__ import annotations

import random

import numpy as np
import torch

from eqdp.config.run import DEVICES
from eqdp.errors import EqdpError, unknown_choice


def select_device(name: str = "auto") -> torch.device:
    if name not in DEVICES:
        raise unknown_choice("device", name, DEVICES)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise EqdpError("device 'cuda' requested but no CUDA GPU is visible; use --device cpu")
    return torch.device(name)


def planned_device_type(name: str) -> str:
    """The device type a run will use, for resolving its configuration.

    ``cuda`` is taken at its word, so a suite for GPU jobs can be planned on a machine
    without one (a cluster's login node); the run itself checks that a GPU is there.
    """
    if name not in DEVICES:
        raise unknown_choice("device", name, DEVICES)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
