"""What MedMNIST offers: flags, sizes, splits, file names, MD5s. Light: no torch, no medmnist.

``medmnist.INFO`` is read from the installed package's ``info.py``, which needs only
the standard library, without importing ``medmnist`` itself (that imports torch
and takes seconds): the CLI's listing and report commands stay fast.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import zipfile
from functools import cache
from pathlib import Path
from types import ModuleType

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


@cache
def medmnist_info_module() -> ModuleType:
    """The installed ``medmnist/info.py`` as a module of its own."""
    spec = importlib.util.find_spec("medmnist")
    if spec is None or not spec.submodule_search_locations:
        raise EqdpError("the medmnist package is not installed; run `uv sync`")
    path = Path(next(iter(spec.submodule_search_locations))) / "info.py"
    module_spec = importlib.util.spec_from_file_location("_eqdp_medmnist_info", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def check_flag(flag: str) -> str:
    if flag not in FLAGS_2D:
        raise unknown_choice("dataset", flag, FLAGS_2D)
    return flag


def check_size(size: int) -> int:
    if size not in SIZES:
        raise unknown_choice("size", size, SIZES)
    return size


def dataset_info(flag: str) -> dict:
    return medmnist_info_module().INFO[check_flag(flag)]


def n_classes(flag: str) -> int:
    return len(dataset_info(flag)["label"])


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


@cache
def _cached_md5(path: str, mtime_ns: int) -> str:
    return file_md5(Path(path))


def check_data_file(
    flag: str, size: int, data_dir: str | os.PathLike | None, verify_md5: bool
) -> None:
    """Where a data folder is given: the file is there (and has the official MD5)."""
    root = resolve_data_dir(data_dir)
    if root is not None:
        _check_local_file(flag, size, root, verify_md5)


def _check_local_file(flag: str, size: int, root: Path, verify_md5: bool) -> None:
    if not root.is_dir():
        problem = "is a file, not a folder" if root.exists() else "does not exist"
        raise EqdpError(
            f"data directory {root} {problem}; point --data-dir or {DATA_DIR_ENV} "
            "at a folder holding MedMNIST .npz files"
        )
    path = root / npz_filename(flag, size)
    if not path.is_file():
        raise EqdpError(
            f"{path.name} not found in {root}; download it from "
            f"{dataset_info(flag)['url' if size == 28 else f'url_{size}']} "
            f"(or run once without --data-dir to let medmnist fetch it)"
        )
    # An .npz is a zip: a truncated download has no central directory at its end, which
    # is cheap to see here and would otherwise fail only after "loading data".
    if not zipfile.is_zipfile(path):
        raise EqdpError(
            f"{path} is not a complete .npz file (truncated download?); download it again "
            f"from {dataset_info(flag)['url' if size == 28 else f'url_{size}']}"
        )
    if verify_md5:
        actual, expected = (
            _cached_md5(str(path.resolve()), path.stat().st_mtime_ns),
            expected_md5(flag, size),
        )
        if actual != expected:
            raise EqdpError(
                f"MD5 mismatch for {path}: got {actual}, expected {expected} "
                "(corrupt or not the official file)"
            )
