#!/usr/bin/env bash
# Installs the node dependencies of the reference checks (idempotent):
#   1. tests/js/node_modules from tests/js/package-lock.json (`npm ci`), only when missing or stale;
#   2. the llama.cpp source tree (chat templates in models/templates) via scripts/llamacpp/fetch-source.sh.
# Needs node and npm (scripts/install-deps.sh installs them) and the npm registry.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
js="$root/tests/js"
stamp="$js/node_modules/.frugal-lock.sha256"
want="$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "install-js-deps: npm ci in $js" >&2
  (cd "$js" && npm ci --no-audit --no-fund >&2)
  echo "$want" > "$stamp"
fi
bash "$root/scripts/llamacpp/fetch-source.sh" >/dev/null
