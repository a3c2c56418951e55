#!/usr/bin/env bash
# Fetches the llama.cpp source tree that the npm package node-llama-cpp 3.21.1 ships as a git bundle (llama.cpp
# commit 80fb11ac, the one the golden logits in ../shared/golden were made with): npm-installs the package
# (scripts/llamacpp/package.json) into the cache directory and clones the bundle into DIR/src.
# Used by build-llama-bench.sh (the llama.cpp peer) and by the chat template reference check
# (src/chat/chat_template_test.cpp reads DIR/src/models/templates).
#
# Usage: scripts/llamacpp/fetch-source.sh [--dir DIR]
#   --dir  cache directory (default $FRUGAL_LLAMACPP_DIR or ~/.cache/frugal/llamacpp); nothing is written inside
#          the repository
# Prints the path of the source tree on the last line of stdout. Idempotent: a second run only checks.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${FRUGAL_LLAMACPP_DIR:-$HOME/.cache/frugal/llamacpp}"
expected_commit="80fb11ac73e66d89eae2c6a91d8a77428fa733ed"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "fetch-source.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

log() { echo "[llamacpp] $*" >&2; }
mkdir -p "$dir"

# 1. npm package (source bundle + prebuilt libraries). --ignore-scripts: never download or compile at install.
pkg_version() { node -p "require('$dir/node_modules/node-llama-cpp/package.json').version" 2>/dev/null || true; }
if [[ "$(pkg_version)" != "3.21.1" ]] || ! cmp -s "$here/package.json" "$dir/package.json"; then
  log "installing node-llama-cpp 3.21.1 into $dir"
  cp "$here/package.json" "$dir/package.json"
  (cd "$dir" && npm install --ignore-scripts --omit=optional --no-audit --no-fund >&2)
fi
bundle="$dir/node_modules/node-llama-cpp/llama/gitRelease.bundle"
[[ -f "$bundle" ]] || { echo "fetch-source.sh: $bundle missing (node-llama-cpp layout changed?)" >&2; exit 1; }

# 2. Source tree from the bundle.
src="$dir/src"
if [[ ! -d "$src/.git" ]]; then
  log "cloning the llama.cpp source bundle into $src"
  git -c advice.detachedHead=false clone -q "$bundle" "$src"
fi
commit="$(git -C "$src" rev-parse HEAD)"
if [[ "$commit" != "$expected_commit" ]]; then
  log "warning: llama.cpp source is at $commit, expected $expected_commit"
fi
echo "$src"
