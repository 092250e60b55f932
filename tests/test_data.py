from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from eqdp.data import BatchAugmenter, load_dataset, make_synthetic_npz
from eqdp.data.medmnist_data import expected_md5, file_md5
from eqdp.errors import EqdpError
from tests.conftest import REAL_DATA_DIR, requires_real_data


def test_synthetic_file_has_medmnist_layout(synthetic_dir: Path) -> None:
    with np.load(synthetic_dir / "breastmnist.npz") as arrays:
        assert sorted(arrays.files) == sorted(
            f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")
        )
        assert arrays["train_images"].dtype == np.uint8
        assert arrays["train_images"].shape == (64, 28, 28)
        assert arrays["train_labels"].shape == (64, 1)


def test_loader_reads_synthetic_files_through_medmnist(synthetic_dir: Path) -> None:
    data = load_dataset("breastmnist", 28, synthetic_dir, verify_md5=False)
    assert data.task == "binary-class" and data.n_channels == 1 and data.n_classes == 2
    assert data.train.images.shape == (64, 1, 28, 28) and data.train.images.dtype == torch.uint8
    assert data.train.labels.shape == (64, 1) and data.train.labels.dtype == torch.int64
    rgb = load_dataset("retinamnist", 28, synthetic_dir, verify_md5=False)
    assert rgb.train.images.shape == (48, 3, 28, 28) and rgb.n_classes == 5


def test_data_dir_from_environment(synthetic_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EQDP_DATA_DIR", str(synthetic_dir))
    assert len(load_dataset("breastmnist", verify_md5=False).test) == 32


def test_md5_mismatch_is_reported(synthetic_dir: Path) -> None:
    with pytest.raises(EqdpError, match="MD5 mismatch.*breastmnist.npz"):
        load_dataset("breastmnist", 28, synthetic_dir)


def test_missing_file_names_file_and_source(tmp_path: Path) -> None:
    with pytest.raises(EqdpError, match="pneumoniamnist.npz not found.*download it from"):
        load_dataset("pneumoniamnist", 28, tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(EqdpError, match="does not exist"):
        load_dataset("breastmnist", 28, tmp_path / "nope")


def test_corrupt_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "breastmnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(EqdpError, match="is not a complete .npz file"):
        load_dataset("breastmnist", 28, tmp_path, verify_md5=False)


@pytest.mark.parametrize(("flag", "size"), [("nomnist", 28), ("breastmnist", 32)])
def test_unknown_flag_or_size(flag: str, size: int, synthetic_dir: Path) -> None:
    with pytest.raises(EqdpError, match="valid choices"):
        load_dataset(flag, size, synthetic_dir)


@requires_real_data
def test_real_files_verify_and_match_official_sizes() -> None:
    assert REAL_DATA_DIR is not None
    assert file_md5(REAL_DATA_DIR / "breastmnist.npz") == expected_md5("breastmnist", 28)
    data = load_dataset("breastmnist", 28, REAL_DATA_DIR)
    assert (len(data.train), len(data.val), len(data.test)) == (546, 78, 156)
    big = load_dataset("breastmnist", 64, REAL_DATA_DIR)
    assert big.train.images.shape == (546, 1, 64, 64)


@requires_real_data
def test_real_file_with_flipped_byte_fails_md5(tmp_path: Path) -> None:
    assert REAL_DATA_DIR is not None
    copy = tmp_path / "breastmnist.npz"
    shutil.copy(REAL_DATA_DIR / "breastmnist.npz", copy)
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    copy.write_bytes(bytes(raw))
    with pytest.raises(EqdpError, match="MD5 mismatch"):
        load_dataset("breastmnist", 28, tmp_path)


def test_d4_augmentation_only_permutes_pixels(tmp_path: Path) -> None:
    make_synthetic_npz(tmp_path, "breastmnist", 28, n_per_split=(8, 4, 4))
    images = load_dataset("breastmnist", 28, tmp_path, verify_md5=False).train.images
    augmented = BatchAugmenter("d4", seed=0)(images)
    assert augmented.shape == images.shape
    for original, moved in zip(images, augmented, strict=True):
        candidates = [torch.rot90(original, k, (1, 2)) for k in range(4)]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(moved, c) for c in candidates)
    assert torch.equal(BatchAugmenter("none", seed=0)(images), images)


def test_offline_without_data_dir_names_the_options_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """medmnist's 11-line download failure becomes one line naming --data-dir, EQDP_DATA_DIR
    and the file to fetch."""
    import medmnist

    def offline(self, *args, **kwargs):
        raise RuntimeError("Automatic download failed! Please download breastmnist.npz manually.")

    monkeypatch.setattr(medmnist.info, "DEFAULT_ROOT", str(tmp_path / "medmnist-root"))
    monkeypatch.setattr(medmnist.dataset.MedMNIST, "download", offline)
    with pytest.raises(EqdpError) as raised:
        load_dataset("breastmnist", 28)
    message = str(raised.value)
    assert "\n" not in message
    assert "breastmnist.npz is not in" in message and "could not be downloaded" in message
    assert "--data-dir" in message and "EQDP_DATA_DIR" in message
    assert expected_md5("breastmnist", 28) in message
