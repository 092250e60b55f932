"""Data: MedMNIST loading, synthetic files for tests, augmentation.

Names are imported on first use, so ``eqdp.data.catalog`` (flags, sizes, MD5s)
stays importable without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AUGMENTATIONS": "eqdp.data.augment",
    "BatchAugmenter": "eqdp.data.augment",
    "DATA_DIR_ENV": "eqdp.data.catalog",
    "FLAGS_2D": "eqdp.data.catalog",
    "SIZES": "eqdp.data.catalog",
    "dataset_info": "eqdp.data.catalog",
    "npz_filename": "eqdp.data.catalog",
    "MedMNISTData": "eqdp.data.medmnist_data",
    "Split": "eqdp.data.medmnist_data",
    "load_dataset": "eqdp.data.medmnist_data",
    "make_synthetic_npz": "eqdp.data.synthetic",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'eqdp.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = sorted(_EXPORTS)
