"""What a record says about the software and hardware that produced it."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

import eqdp
from eqdp.runtime import COMMAND_ENV

# Packages whose version can change a number in a record.
VERSIONED_PACKAGES: tuple[str, ...] = (
    "torch", "numpy", "opacus", "escnn", "monai", "medmnist", "scikit-learn", "scipy",
    "adversarial-robustness-toolbox", "pydantic", "submitit",
)  # fmt: skip


def _git(*args: str) -> str | None:
    try:
        output = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return output.stdout.strip() if output.returncode == 0 else None


def git_commit() -> str | None:
    return _git("rev-parse", "HEAD") or _manifest_provenance()[0]


# What a run's numbers can depend on in the tree, as pathspecs from the repository's top
# (git runs in this file's folder).
CODE_PATHS = (":(top)eqdp", ":(top)pyproject.toml")


def git_dirty() -> bool | None:
    """Whether eqdp's own code had uncommitted changes (None outside a git checkout)."""
    status = _git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    if status is None:
        return _manifest_provenance()[1]
    return bool(status)


SOURCE_MANIFEST_ENV = "EQDP_SOURCE_MANIFEST"


@cache
def _manifest_provenance() -> tuple[str | None, bool | None]:
    """(commit, dirty) of a copy of the tree without ``.git`` (a lent GPU machine gets
    the working tree only), from a manifest written by ``scripts/source_manifest.py``
    in the checkout it was copied from: the commit and the git blob hash of every file
    of eqdp's code. Checked, not trusted: the copy is clean only if every file hashes
    as listed and no other ``.py`` file is in the package. No manifest: (None, None).
    """
    path = os.environ.get(SOURCE_MANIFEST_ENV)
    if not path or not Path(path).is_file():
        return None, None
    manifest = json.loads(Path(path).read_text())
    root = Path(__file__).resolve().parents[2]
    listed = manifest["files"]
    present = {
        str(p.relative_to(root)) for p in (root / "eqdp").rglob("*.py")
    } | ({"pyproject.toml"} if (root / "pyproject.toml").is_file() else set())
    clean = set(listed) >= present and all(
        (root / name).is_file() and git_blob_hash((root / name).read_bytes()) == blob
        for name, blob in listed.items()
    )
    return manifest["commit"], not clean


def git_blob_hash(content: bytes) -> str:
    """The object id git gives a file's content (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def git_diff_digest() -> str | None:
    """SHA-256 (16 hex) of the uncommitted changes to eqdp's code; None when clean.

    With ``git_commit`` it names the code a run used: two records with the same commit
    and digest ran the same code (the first-wave records that did not reproduce could
    not say that)."""
    diff = _git("diff", "HEAD", "--", *CODE_PATHS)
    if not diff:
        return None
    return hashlib.sha256(diff.encode()).hexdigest()[:16]


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


PINNED_FILE = Path(__file__).resolve().parents[2] / "requirements" / "pinned.txt"


def pinned_versions(path: Path = PINNED_FILE) -> dict[str, str]:
    """The tested version of each package for this interpreter and platform, from the
    committed pin file (empty where eqdp runs outside its checkout)."""
    from packaging.markers import Marker

    if not path.is_file():
        return {}
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        requirement, _, marker = line.partition(";")
        name, _, pinned = requirement.strip().partition("==")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        pins[name.strip().lower()] = pinned.strip()
    return pins


def differences_from_pins() -> dict[str, tuple[str | None, str]]:
    """Packages that change numbers whose installed version is not the pinned one:
    name -> (installed, pinned)."""
    pins = pinned_versions()
    return {
        name: (installed, pins[name])
        for name, installed in package_versions().items()
        if name in pins and installed != pins[name]
    }


@cache
def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def environment(device: torch.device, precision: dict[str, str]) -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "device": device.type,
        "device_name": device_name(device),
        "cpu_threads": torch.get_num_threads(),
        "precision": precision,
        "eqdp": eqdp.__version__,
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "git_diff_sha256": git_diff_digest(),
        "cpu_model": cpu_model(),
        "packages": package_versions(),
        "host": socket.gethostname(),
        # A suite's worker process was started by submitit: its driver's command line is
        # the one that says what ran.
        "command": json.loads(os.environ[COMMAND_ENV]) if os.environ.get(COMMAND_ENV) else sys.argv,
    }
