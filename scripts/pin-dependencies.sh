#!/usr/bin/env bash
# Write requirements/pinned.txt: the exact dependency set CI tests, from uv's resolution,
# without registry addresses (uv.lock stays untracked because it holds them).
#
#   bash scripts/pin-dependencies.sh          # after changing pyproject.toml: re-resolve
#   bash scripts/pin-dependencies.sh --upgrade   # newest allowed versions
#
# Install exactly this set (README, "Exactly the tested versions"):
#   uv venv && uv pip sync requirements/pinned.txt && uv pip install --no-deps -e .
set -euo pipefail
cd "$(dirname "$0")/.."
uv lock --quiet "$@"
out=requirements/pinned.txt
uv export --frozen --no-hashes --no-emit-project --all-groups --format requirements-txt \
    --quiet > "$out.tmp"
# Only "name==version ; marker" lines and comments: no option lines, no addresses.
if grep -nE "^-|://" "$out.tmp"; then
    echo "error: $out would name an address or an installer option" >&2
    rm -f "$out.tmp"
    exit 1
fi
mv "$out.tmp" "$out"
echo "wrote $out ($(grep -c '==' "$out") pins)"
