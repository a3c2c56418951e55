#!/usr/bin/env bash
# Fuzzes the GGUF reader with libFuzzer under ASan/UBSan for SECONDS (default 60).
#   scripts/fuzz.sh [SECONDS]
# Builds only the gguf_fuzz target in build-fuzz/ (clang), seeds a temporary corpus from
# tests/data/gguf-malformed/*.gguf, and exits non-zero on a crash, printing the reproducer path.
set -euo pipefail

SECONDS_TO_RUN="${1:-60}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-fuzz"
JOBS="${JOBS:-$(nproc)}"

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz.sh: clang++ not found (install clang for libFuzzer)" >&2
  exit 1
fi

if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFRUGAL_FUZZ=ON -DFRUGAL_BUILD_TESTS=OFF -DFRUGAL_BUILD_BENCH=OFF >/dev/null
fi
cmake --build "$BUILD" --target gguf_fuzz -j "$JOBS"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/frugal-fuzz.XXXXXX")"
CORPUS="$WORK/corpus"
ARTIFACTS="$ROOT/build-fuzz/crashes"
mkdir -p "$CORPUS" "$ARTIFACTS"
cp "$ROOT"/tests/data/gguf-malformed/*.gguf "$CORPUS"/

# UBSan findings must stop the run (the build does not use -fno-sanitize-recover).
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
echo "fuzz.sh: fuzzing the GGUF reader for ${SECONDS_TO_RUN}s (corpus $CORPUS)"
set +e
"$BUILD/gguf_fuzz" -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -max_len=4096 -timeout=10 \
  -print_final_stats=1 -artifact_prefix="$ARTIFACTS/" "$CORPUS" >"$WORK/log.txt" 2>&1
status=$?
set -e
tail -n 15 "$WORK/log.txt"
if [ $status -ne 0 ]; then
  echo "fuzz.sh: gguf_fuzz FAILED (exit $status); full log: $WORK/log.txt" >&2
  grep -h "Test unit written to" "$WORK/log.txt" | sed 's/^.*Test unit written to /fuzz.sh: reproducer: /' >&2 || true
  echo "fuzz.sh: reproduce with: $BUILD/gguf_fuzz <reproducer>" >&2
  exit 1
fi
rm -rf "$WORK"
echo "fuzz.sh: no crash in ${SECONDS_TO_RUN}s"
