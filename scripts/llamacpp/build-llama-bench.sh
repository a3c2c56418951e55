#!/usr/bin/env bash
# Builds the llama.cpp peer for scripts/bench-vs-llamacpp.sh: a native Release `llama-bench` (CPU only) from
# the llama.cpp source bundled in the npm package node-llama-cpp 3.21.1 (llama.cpp commit 80fb11ac, the one
# the golden logits in ../shared/golden were made with).
#
# Usage: scripts/llamacpp/build-llama-bench.sh [--dir DIR] [--rebuild] [--jobs N] [--check MODEL.gguf]
#                                             [--target llama-bench|llama-server|llama-batched-bench]
#   --dir      cache directory (default $FRUGAL_LLAMACPP_DIR or ~/.cache/frugal/llamacpp); nothing is written
#              inside the repository
#   --rebuild  reconfigure and rebuild even if the binary exists
#   --check    run llama-bench -p 16 -n 8 -r 1 on MODEL as a smoke test
#   --target   the llama.cpp program to build (default llama-bench); prints its path
# Prints the path of llama-bench on the last line of stdout. Idempotent: a second run only checks.
#
# Build notes: GGML_NATIVE=ON (-march=native); GCC 12's AMX code paths crash, so AMX is off both as ggml
# options and as -mno-amx-* (harmless on CPUs without AMX); OpenMP and the llamafile sgemm stay at
# llama.cpp's defaults; no curl/openssl, no tests/examples/server.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${FRUGAL_LLAMACPP_DIR:-$HOME/.cache/frugal/llamacpp}"
rebuild=0
jobs="$(nproc)"
check_model=""
target="llama-bench"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --rebuild) rebuild=1; shift ;;
    --jobs) jobs="$2"; shift 2 ;;
    --check) check_model="$2"; shift 2 ;;
    --target) target="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-llama-bench.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

log() { echo "[llamacpp] $*" >&2; }
mkdir -p "$dir"

# 1-2. npm package and the llama.cpp source tree from its bundle (shared with the chat template check).
src="$("$here/fetch-source.sh" --dir "$dir" | tail -n 1)"
commit="$(git -C "$src" rev-parse HEAD)"

case "$target" in
  llama-bench|llama-server|llama-batched-bench) ;;
  *) echo "build-llama-bench.sh: --target must be llama-bench, llama-server or llama-batched-bench" >&2; exit 2 ;;
esac

# 3. Native Release build of the target only (the server's CMake option is on either way, so switching
#    targets never reconfigures the others away).
build="$dir/build"
bin="$build/bin/$target"
amx_off="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
if [[ $rebuild -eq 1 || ! -x "$bin" ]]; then
  log "configuring $build"
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON -DGGML_CCACHE=OFF \
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
    -DCMAKE_C_FLAGS="$amx_off" -DCMAKE_CXX_FLAGS="$amx_off" \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=ON >&2
  log "building $target with $jobs jobs (several minutes on 2 cores)"
  cmake --build "$build" --target "$target" -j "$jobs" >&2
  if [[ "$target" == llama-bench ]]; then rm -f "$dir/build-info.txt"; fi
fi
if [[ ! -f "$dir/build-info.txt" ]]; then
  {
    echo "llama.cpp commit: $commit"
    echo "compiler: $(${CC:-cc} --version | head -1)"
    echo "cmake: GGML_NATIVE=ON, AMX off, C/CXX flags: $amx_off"
    echo "built: $(date -u -r "$bin" +%Y-%m-%dT%H:%M:%SZ)"
  } > "$dir/build-info.txt"
fi

if [[ -n "$check_model" && "$target" == llama-bench ]]; then
  log "smoke test on $check_model"
  "$bin" -m "$check_model" -p 16 -n 8 -r 1 -t 1 -o md >&2
fi
echo "$bin"
