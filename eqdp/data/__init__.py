"""Data: MedMNIST loading, synthetic files for tests, augmentation."""

from eqdp.data.augment import AUGMENTATIONS, BatchAugmenter
from eqdp.data.medmnist_data import (
    DATA_DIR_ENV,
    FLAGS_2D,
    SIZES,
    MedMNISTData,
    Split,
    dataset_info,
    load_dataset,
    npz_filename,
)
from eqdp.data.synthetic import make_synthetic_npz

__all__ = [
    "AUGMENTATIONS",
    "BatchAugmenter",
    "DATA_DIR_ENV",
    "FLAGS_2D",
    "SIZES",
    "MedMNISTData",
    "Split",
    "dataset_info",
    "load_dataset",
    "make_synthetic_npz",
    "npz_filename",
]
