from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from eqdp.data import make_synthetic_npz

# Tiny test models gain nothing from intra-op threads, and on a 2-core machine shared
# with training jobs OpenMP's spin-waiting made a training step ~50x slower.
torch.set_num_threads(1)

# Captured before the autouse fixture clears the variable: CI points it at ../shared/medmnist.
_REAL_DATA_CANDIDATES = [
    os.environ.get("EQDP_DATA_DIR"),
    str(Path(__file__).parents[2] / "shared" / "medmnist"),
]
REAL_DATA_DIR = next(
    (Path(p) for p in _REAL_DATA_CANDIDATES if p and (Path(p) / "breastmnist.npz").is_file()), None
)

requires_real_data = pytest.mark.skipif(
    REAL_DATA_DIR is None, reason="official MedMNIST files not available"
)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EQDP_DATA_DIR", raising=False)
    monkeypatch.delenv("EQDP_RESULTS_DIR", raising=False)
    monkeypatch.setenv("EQDP_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("medmnist")
    make_synthetic_npz(directory, "breastmnist", 28, n_per_split=(64, 32, 32), seed=0)
    make_synthetic_npz(directory, "retinamnist", 28, n_per_split=(48, 24, 24), seed=1)
    return directory
