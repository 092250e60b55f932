"""MedMNIST 2D splits as in-memory tensors, read through the `medmnist` package.

Small images fit on the device whole, so batches are drawn by indexing a
uint8 tensor: no DataLoader workers, no per-item Python overhead.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eqdp.data.catalog import (
    BINARY,
    DATA_DIR_ENV,
    FLAGS_2D,
    MULTI_LABEL,
    SIZES,
    SPLITS,
    _cached_md5,
    _check_local_file,
    check_data_file,
    check_flag,
    check_size,
    dataset_info,
    expected_md5,
    file_md5,
    npz_filename,
    resolve_data_dir,
)
from eqdp.errors import EqdpError, unknown_choice

__all__ = [
    "BINARY",
    "DATA_DIR_ENV",
    "FLAGS_2D",
    "MULTI_LABEL",
    "SIZES",
    "SPLITS",
    "MedMNISTData",
    "Split",
    "check_data_file",
    "check_flag",
    "check_size",
    "dataset_info",
    "expected_md5",
    "file_md5",
    "load_dataset",
    "npz_filename",
    "resolve_data_dir",
]


@dataclass(frozen=True)
class Split:
    """Images as uint8 (N, C, H, W); labels as int64 (N, L), L = 1 unless multi-label."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def subset(self, indices: torch.Tensor) -> Split:
        return Split(self.images[indices], self.labels[indices])


@dataclass(frozen=True)
class MedMNISTData:
    flag: str
    size: int
    task: str
    n_channels: int
    n_classes: int
    train: Split
    val: Split
    test: Split
    file: str | None = None  # the .npz the splits came from
    md5: str | None = None  # its MD5

    @property
    def source(self) -> dict:
        """What a record says about the data file."""
        return {"file": self.file, "md5": self.md5}

    @property
    def class_names(self) -> list[str]:
        return list(dataset_info(self.flag)["label"].values())

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise unknown_choice("split", name, SPLITS)
        return getattr(self, name)

    def without_test(self) -> MedMNISTData:
        """The same data with an empty test split: what search and tuning may see."""
        empty = Split(self.test.images[:0], self.test.labels[:0])
        return dataclasses.replace(self, test=empty)

    def to(self, device: torch.device | str) -> MedMNISTData:
        return MedMNISTData(
            self.flag,
            self.size,
            self.task,
            self.n_channels,
            self.n_classes,
            self.train.to(device),
            self.val.to(device),
            self.test.to(device),
            self.file,
            self.md5,
        )


def _to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    if images.ndim == 3:
        images = images[:, None, :, :]
    else:
        images = images.transpose(0, 3, 1, 2)
    image_tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
    label_tensor = torch.from_numpy(np.asarray(labels, dtype=np.int64).reshape(len(labels), -1))
    return Split(image_tensor, label_tensor)


def load_dataset(
    flag: str,
    size: int = 28,
    data_dir: str | os.PathLike | None = None,
    verify_md5: bool = True,
) -> MedMNISTData:
    """Load all three splits of one MedMNIST 2D dataset.

    With a data directory (argument or ``EQDP_DATA_DIR``) nothing is downloaded:
    the file must be there and its MD5 must equal the one in ``medmnist.INFO``.
    """
    import medmnist  # imports torch and PIL: only where data is really loaded

    info = dataset_info(flag)
    check_size(size)
    root = resolve_data_dir(data_dir)
    download = root is None
    if root is None:
        root = Path(medmnist.info.DEFAULT_ROOT)
        root.mkdir(parents=True, exist_ok=True)
    else:
        _check_local_file(flag, size, root, verify_md5)
    dataset_class = getattr(medmnist, info["python_class"])
    splits = {}
    for split in SPLITS:
        try:
            dataset = dataset_class(split=split, root=str(root), size=size, download=download)
        except Exception as error:  # medmnist raises bare RuntimeError/zipfile/np errors
            path = root / npz_filename(flag, size)
            if download and not path.is_file():
                raise EqdpError(_download_failed(flag, size, root)) from error
            raise EqdpError(f"cannot read {path}: {error}") from error
        splits[split] = _to_split(dataset.imgs, dataset.labels)
    n_channels = int(info["n_channels"])
    if splits["train"].images.shape[1] != n_channels:
        raise EqdpError(
            f"{root / npz_filename(flag, size)} holds {splits['train'].images.shape[1]}-channel "
            f"images; {flag} has {n_channels}"
        )
    path = root / npz_filename(flag, size)
    return MedMNISTData(
        flag=flag,
        size=size,
        task=info["task"],
        n_channels=n_channels,
        n_classes=len(info["label"]),
        **splits,
        file=str(path.resolve()),
        md5=_cached_md5(str(path.resolve()), path.stat().st_mtime_ns),
    )


def _download_failed(flag: str, size: int, root: Path) -> str:
    """One line instead of medmnist's multi-line download failure (offline machines)."""
    name = npz_filename(flag, size)
    url = dataset_info(flag)["url" if size == 28 else f"url_{size}"]
    return (
        f"{name} is not in {root} and could not be downloaded (offline?): put the official "
        f"{name} (MD5 {expected_md5(flag, size)}, from {url}) in a folder and pass "
        f"--data-dir DIR or set {DATA_DIR_ENV}=DIR"
    )
