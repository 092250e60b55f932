"""Selected checkpoints: safetensors files named by run id, kept out of git.

Where: ``--checkpoint-dir`` (``RunConfig.checkpoint_dir``), else
``EQDP_CHECKPOINT_DIR``, else ``checkpoints/`` inside the results folder the
records go to, a place a cluster job that can write records can write too.
Reading also looks in eqdp 0.1's default, ``~/.cache/eqdp/checkpoints``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from eqdp.errors import EqdpError
from eqdp.results.records import results_dir

CHECKPOINT_DIR_ENV = "EQDP_CHECKPOINT_DIR"
LEGACY_CHECKPOINT_DIR = Path.home() / ".cache" / "eqdp" / "checkpoints"


def checkpoint_dir(
    checkpoint_root: str | os.PathLike | None = None,
    results_root: str | os.PathLike | None = None,
) -> Path:
    chosen = checkpoint_root or os.environ.get(CHECKPOINT_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser()
    return results_dir(results_root) / "checkpoints"


def checkpoint_path(
    run_id: str,
    checkpoint_root: str | os.PathLike | None = None,
    results_root: str | os.PathLike | None = None,
) -> Path:
    """Where the run's checkpoint is, or would be written."""
    path = checkpoint_dir(checkpoint_root, results_root) / f"{run_id}.safetensors"
    legacy = LEGACY_CHECKPOINT_DIR / path.name
    if not path.is_file() and not checkpoint_root and legacy.is_file():
        return legacy
    return path


def save_checkpoint(run_id: str, state: dict, directory: Path) -> Path:
    import torch  # noqa: F401  (safetensors.torch needs it)
    from safetensors.torch import save_file

    path = directory / f"{run_id}.safetensors"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(temporary))
        os.replace(temporary, path)
    except OSError as error:
        raise EqdpError(f"cannot write checkpoint {path}: {error}") from error
    return path


def load_checkpoint(
    run_id: str,
    checkpoint_root: str | os.PathLike | None = None,
    results_root: str | os.PathLike | None = None,
) -> dict:
    from safetensors.torch import load_file

    path = checkpoint_path(run_id, checkpoint_root, results_root)
    if not path.is_file():
        raise EqdpError(
            f"no checkpoint for run {run_id!r} at {path} (set --checkpoint-dir or "
            f"{CHECKPOINT_DIR_ENV})"
        )
    return load_file(str(path))


def check_writable(directory: Path, what: str) -> None:
    """Fail before any training if ``directory`` cannot hold ``what``."""
    probe = directory
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise EqdpError(f"{what} folder {directory} cannot be created: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise EqdpError(f"{what} folder {directory} is not writable ({probe})")
    # os.access says yes to root under /proc and /sys, where no folder can be made: only
    # making one (and removing it at once, so a failed run leaves nothing) tells.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".eqdp-write-probe-", dir=probe))
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise EqdpError(
            f"{what} folder {directory} cannot be created in {probe}: {reason}"
        ) from None
