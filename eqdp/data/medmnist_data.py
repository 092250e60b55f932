"""MedMNIST 2D splits as in-memory tensors, read through the `medmnist` package.

Small images fit on the device whole, so batches are drawn by indexing a
uint8 tensor: no DataLoader workers, no per-item Python overhead.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import medmnist
import numpy as np
import torch

from eqdp.errors import EqdpError, unknown_choice

FLAGS_2D: tuple[str, ...] = (
    "pathmnist",
    "chestmnist",
    "dermamnist",
    "octmnist",
    "pneumoniamnist",
    "retinamnist",
    "breastmnist",
    "bloodmnist",
    "tissuemnist",
    "organamnist",
    "organcmnist",
    "organsmnist",
)
SIZES: tuple[int, ...] = (28, 64, 128, 224)
SPLITS: tuple[str, ...] = ("train", "val", "test")
DATA_DIR_ENV = "EQDP_DATA_DIR"

MULTI_LABEL = "multi-label, binary-class"
BINARY = "binary-class"


def check_flag(flag: str) -> str:
    if flag not in FLAGS_2D:
        raise unknown_choice("dataset", flag, FLAGS_2D)
    return flag


def check_size(size: int) -> int:
    if size not in SIZES:
        raise unknown_choice("size", size, SIZES)
    return size


def dataset_info(flag: str) -> dict:
    return medmnist.INFO[check_flag(flag)]


def npz_filename(flag: str, size: int) -> str:
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def expected_md5(flag: str, size: int) -> str:
    info = dataset_info(flag)
    return info["MD5"] if size == 28 else info[f"MD5_{size}"]


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The option wins over the environment; None means medmnist's own root with download."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    return Path(chosen).expanduser() if chosen is not None else None


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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

    @property
    def class_names(self) -> list[str]:
        return list(dataset_info(self.flag)["label"].values())

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise unknown_choice("split", name, SPLITS)
        return getattr(self, name)

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
            raise EqdpError(f"cannot read {path}: {error}") from error
        splits[split] = _to_split(dataset.imgs, dataset.labels)
    n_channels = int(info["n_channels"])
    if splits["train"].images.shape[1] != n_channels:
        raise EqdpError(
            f"{root / npz_filename(flag, size)} holds {splits['train'].images.shape[1]}-channel "
            f"images; {flag} has {n_channels}"
        )
    return MedMNISTData(
        flag=flag,
        size=size,
        task=info["task"],
        n_channels=n_channels,
        n_classes=len(info["label"]),
        **splits,
    )


def _check_local_file(flag: str, size: int, root: Path, verify_md5: bool) -> None:
    if not root.is_dir():
        raise EqdpError(
            f"data directory {root} does not exist; point --data-dir or {DATA_DIR_ENV} "
            "at a folder holding MedMNIST .npz files"
        )
    path = root / npz_filename(flag, size)
    if not path.is_file():
        raise EqdpError(
            f"{path.name} not found in {root}; download it from "
            f"{dataset_info(flag)['url' if size == 28 else f'url_{size}']} "
            f"(or run once without --data-dir to let medmnist fetch it)"
        )
    if verify_md5:
        actual, expected = file_md5(path), expected_md5(flag, size)
        if actual != expected:
            raise EqdpError(
                f"MD5 mismatch for {path}: got {actual}, expected {expected} "
                "(corrupt or not the official file)"
            )
