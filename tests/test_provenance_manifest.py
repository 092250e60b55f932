"""Records made from a copy of the tree without .git (a lent GPU) still name their code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from eqdp.results import environment

ROOT = Path(environment.__file__).resolve().parents[2]


def manifest_of_this_tree() -> dict[str, str]:
    names = [str(p.relative_to(ROOT)) for p in (ROOT / "eqdp").rglob("*.py")] + ["pyproject.toml"]
    return {name: environment.git_blob_hash((ROOT / name).read_bytes()) for name in names}


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "source.json"
    monkeypatch.setenv(environment.SOURCE_MANIFEST_ENV, str(path))
    environment._manifest_provenance.cache_clear()
    yield path
    environment._manifest_provenance.cache_clear()


def test_blob_hash_is_gits(tmp_path: Path) -> None:
    file = tmp_path / "x.txt"
    file.write_bytes(b"eqdp\n")
    expected = subprocess.run(["git", "hash-object", str(file)], capture_output=True, text=True)
    if expected.returncode != 0:
        pytest.skip("git not available")
    assert environment.git_blob_hash(file.read_bytes()) == expected.stdout.strip()


def test_a_tree_matching_its_manifest_is_clean_at_the_manifest_commit(manifest: Path) -> None:
    manifest.write_text(json.dumps({"commit": "abc123", "files": manifest_of_this_tree()}))
    assert environment._manifest_provenance() == ("abc123", False)


def test_a_changed_or_unlisted_file_makes_the_copy_dirty(manifest: Path) -> None:
    files = manifest_of_this_tree()
    changed = dict(files, **{"eqdp/__init__.py": "0" * 40})
    manifest.write_text(json.dumps({"commit": "abc123", "files": changed}))
    assert environment._manifest_provenance() == ("abc123", True)
    environment._manifest_provenance.cache_clear()
    unlisted = {k: v for k, v in files.items() if k != "eqdp/errors.py"}
    manifest.write_text(json.dumps({"commit": "abc123", "files": unlisted}))
    assert environment._manifest_provenance() == ("abc123", True)


def test_without_a_manifest_nothing_is_claimed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(environment.SOURCE_MANIFEST_ENV, raising=False)
    environment._manifest_provenance.cache_clear()
    assert environment._manifest_provenance() == (None, None)
