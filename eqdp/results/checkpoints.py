"""Selected checkpoints live outside git, named by run id, stored as safetensors."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from eqdp.errors import EqdpError

CHECKPOINT_DIR_ENV = "EQDP_CHECKPOINT_DIR"


def checkpoint_dir() -> Path:
    default = Path.home() / ".cache" / "eqdp" / "checkpoints"
    return Path(os.environ.get(CHECKPOINT_DIR_ENV) or default).expanduser()


def checkpoint_path(run_id: str) -> Path:
    return checkpoint_dir() / f"{run_id}.safetensors"


def save_checkpoint(run_id: str, state: dict[str, torch.Tensor]) -> Path:
    path = checkpoint_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(temporary))
    os.replace(temporary, path)
    return path


def load_checkpoint(run_id: str) -> dict[str, torch.Tensor]:
    path = checkpoint_path(run_id)
    if not path.is_file():
        raise EqdpError(f"no checkpoint for run {run_id!r} at {path} (set {CHECKPOINT_DIR_ENV})")
    return load_file(str(path))
