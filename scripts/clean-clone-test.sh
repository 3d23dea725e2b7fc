#!/usr/bin/env bash
# The newcomer's path, as a check: clones this repository's committed HEAD into a fresh
# temporary folder with nothing beside it (no sibling shared/, no target/, no untracked
# files) and runs the README's test command there, `scripts/test.sh`.
#
#   scripts/clean-clone-test.sh [ARGS for scripts/test.sh]
#
# Slow: the clone builds everything in a new target directory. CARGO_TARGET_DIR, when set,
# is used as the build cache instead (dependencies compiled from crates.io are not what this
# checks; the workspace crates rebuild anyway, their paths differ). KEEP=1 keeps the clone.
# Exits with scripts/test.sh's status.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

parent=$(mktemp -d "${TMPDIR:-/tmp}/gantry-clean-clone.XXXXXX")
cleanup() { [ "${KEEP:-0}" = 1 ] && echo "kept $parent" >&2 || rm -rf "$parent"; }
trap cleanup EXIT

git clone --quiet --no-local "$repo" "$parent/gantry"
cd "$parent/gantry"
echo "==> clean clone of $(git rev-parse --short=12 HEAD) in $parent/gantry (siblings: $(ls -A "$parent" | tr '\n' ' '))" >&2
[ ! -e ../shared ] || { echo "clean-clone-test: ../shared exists beside the clone" >&2; exit 2; }
scripts/test.sh "$@"
