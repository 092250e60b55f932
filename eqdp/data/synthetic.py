"""Synthetic MedMNIST-format files for tests: same keys, dtypes and shapes.

The label is a function of the image that every rot90/flip preserves (a blob's
radius around the centre), so an invariant model can learn it and an
equivariance test is meaningful on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eqdp.data.medmnist_data import SPLITS, dataset_info, npz_filename


def _images_for(labels: np.ndarray, size: int, channels: int, rng: np.random.Generator):
    coords = np.arange(size) - (size - 1) / 2
    radius = np.sqrt(coords[:, None] ** 2 + coords[None, :] ** 2)
    images = []
    for label in labels:
        ring = size * (0.12 + 0.08 * int(label))
        blob = np.exp(-((radius - ring) ** 2) / (2 * (size * 0.06) ** 2))
        noisy = 200 * blob + rng.normal(0, 12, size=(size, size)) + 20
        images.append(np.clip(noisy, 0, 255))
    array = np.stack(images).astype(np.uint8)
    if channels == 3:
        array = np.repeat(array[..., None], 3, axis=-1)
    return array


def make_synthetic_npz(
    directory: str | Path,
    flag: str,
    size: int = 28,
    n_per_split: tuple[int, int, int] = (64, 32, 32),
    seed: int = 0,
) -> Path:
    """Write ``<flag>[_<size>].npz`` into ``directory`` and return its path."""
    info = dataset_info(flag)
    if info["task"] == "multi-label, binary-class":
        raise ValueError("synthetic data covers single-label tasks only")
    n_classes = min(len(info["label"]), 4)
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, count in zip(SPLITS, n_per_split, strict=True):
        labels = np.arange(count) % n_classes
        rng.shuffle(labels)
        arrays[f"{split}_images"] = _images_for(labels, size, int(info["n_channels"]), rng)
        arrays[f"{split}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    path = Path(directory) / npz_filename(flag, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path
