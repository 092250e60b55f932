"""Write the source manifest a copy of a commit without .git proves its code with.

A lent GPU machine receives a copy of files but not ``.git``; records made there would
have no commit. Copy a commit (``git archive COMMIT``) and describe the same commit:

    python scripts/source_manifest.py .device/source.json [COMMIT]

and set ``EQDP_SOURCE_MANIFEST=.device/source.json`` there. ``eqdp.results.environment``
then records the manifest's commit, and ``git_dirty`` false only if every file of eqdp's
code hashes as the manifest lists (git blob hashes) and no other ``.py`` file is present.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def main(out: str, commit: str) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout

    commit = git("rev-parse", "--verify", f"{commit}^{{commit}}").strip()
    files = {}
    for line in git("ls-tree", "-r", commit, "--", "eqdp", "pyproject.toml").splitlines():
        meta, name = line.split("\t", 1)
        files[name] = meta.split()[2]  # mode, type, object id
    manifest = {"commit": commit, "files": files}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    print(f"{out}: commit {manifest['commit'][:12]}, {len(files)} files")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python scripts/source_manifest.py OUT.json [COMMIT]")
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "HEAD")
