"""Data: MedMNIST loading, synthetic files for tests, augmentation.

Names are imported on first use, so ``eqdp.data.catalog`` (flags, sizes, MD5s)
stays importable without torch.
"""

from __future__ import annotations

from eqdp.lazy import lazy_exports

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


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = sorted(_EXPORTS)
