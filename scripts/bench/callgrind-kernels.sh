#!/usr/bin/env bash
# Instruction counts of the hottest kernels under valgrind's callgrind: stable on a noisy shared machine,
# where timings are not. Each case runs `frugal_callgrind_kernels CASE` (instrumentation on only around a
# fixed number of calls) and reports instructions per call, per weight byte and per multiply-accumulate.
#
# Usage: scripts/bench/callgrind-kernels.sh [--filter REGEX] [--reps N] [--build DIR] [--out FILE.md]
#   --filter  cases to run (grep -E over `frugal_callgrind_kernels --list`, e.g. 'Q4_0|Q8_0'); default all
#   --reps    calls per case (default 3; the count is divided by it)
#   --out     also write the markdown table to FILE.md
# Valgrind 3.19 cannot run AVX-512 code, so the AVX2 kernels are counted (the AVX-512 ones are timed by
# frugal_bench_kernels). Installs valgrind with apt-get when it is missing. A benchmark, never a test.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
filter="."
reps=3
build="$repo/build-bench"
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --filter) filter="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "callgrind-kernels.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if ! command -v valgrind >/dev/null || [[ ! -f /usr/include/valgrind/callgrind.h ]]; then
  echo "[callgrind] installing valgrind" >&2
  sudo_cmd=""; [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y valgrind >&2
fi
[[ -f "$build/build.ninja" ]] || cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFRUGAL_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target frugal_callgrind_kernels -j "$(nproc)" >&2
bin="$build/frugal_callgrind_kernels"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
table="| case | instructions per call | per weight byte | per MAC |
|---|---:|---:|---:|"
while read -r c; do
  f="$tmp/cg.out"
  line="$(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$f" "$bin" "$c" --reps "$reps" 2>/dev/null)" || {
    echo "[callgrind] $c failed" >&2; continue; }
  ir="$(sed -n "s/^totals: *//p" "$f" | head -1 | awk "{print \$1}")"
  wbytes="$(sed -n 's/.*weight_bytes=\([0-9]*\).*/\1/p' <<< "$line")"
  macs="$(sed -n 's/.*macs=\([0-9]*\).*/\1/p' <<< "$line")"
  row="$(awk -v ir="$ir" -v r="$reps" -v wb="$wbytes" -v m="$macs" -v c="$c" \
    'BEGIN { per = ir / r; printf "| %s | %.0f | %.3f | %.4f |", c, per, per / wb, per / m }')"
  echo "$row" >&2
  table+=$'\n'"$row"
done < <("$bin" --list | grep -E -- "$filter")
echo "$table"
[[ -n "$out" ]] && echo "$table" > "$out"
exit 0
