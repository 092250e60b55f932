"""What a record says about the software and hardware that produced it."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

import eqdp


def git_commit() -> str | None:
    try:
        output = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return output.stdout.strip() or None if output.returncode == 0 else None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def environment(device: torch.device) -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "device": device.type,
        "device_name": device_name(device),
        "cpu_threads": torch.get_num_threads(),
        "eqdp": eqdp.__version__,
        "git_commit": git_commit(),
    }
