"""Write the source manifest a copy of this checkout without .git proves its code with.

A lent GPU machine receives the working tree but not ``.git``; records made there would
have no commit. Run this in a clean checkout before sending the tree:

    python scripts/source_manifest.py .device/source.json

and set ``EQDP_SOURCE_MANIFEST=.device/source.json`` there. ``eqdp.results.environment``
then records the manifest's commit, and ``git_dirty`` false only if every file of eqdp's
code hashes as the manifest lists (git blob hashes) and no other ``.py`` file is present.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def main(out: str) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout

    if git("status", "--porcelain", "--untracked-files=no", "--", "eqdp", "pyproject.toml"):
        sys.exit("error: eqdp's code has uncommitted changes; commit them first")
    files = {}
    for line in git("ls-files", "-s", "--", "eqdp", "pyproject.toml").splitlines():
        meta, name = line.split("\t", 1)
        files[name] = meta.split()[1]
    manifest = {"commit": git("rev-parse", "HEAD").strip(), "files": files}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    print(f"{out}: commit {manifest['commit'][:12]}, {len(files)} files")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/source_manifest.py OUT.json")
    main(sys.argv[1])
