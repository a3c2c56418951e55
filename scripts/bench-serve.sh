#!/usr/bin/env bash
# Serving benchmark: the same fixed request mix (scripts/bench/serve_client.py) against `frugal serve` and
# llama.cpp's llama-server on the same model, threads and parallel slots, at several concurrencies.
#
# Usage: scripts/bench-serve.sh -m MODEL.gguf [-t THREADS] [-c 1,4,16,64] [-n MAX_TOKENS] [--prompt-tokens 32,128,512]
#                               [--ctx PER_SEQ] [--cost-per-hour USD] [-r PER_CLIENT] [--no-llamacpp] [-o results.jsonl]
# For each concurrency C both servers run with C parallel sequences (frugal --max-seqs C; llama-server
# --parallel C with C x PER_SEQ context) and get PER_CLIENT x C requests (default 4; at least 8). llama-server comes from
# scripts/llamacpp/build-llama-bench.sh --target llama-server (built on first use; several minutes).
# Prints one markdown table: aggregate generation t/s, TTFT p50/p99, inter-token p50/p99, $/M generated
# tokens, and frugal/llama.cpp throughput ratios. A benchmark, not a test: it never fails on a number.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
model="" threads="$(nproc)" concs="1,4,16,64" max_tokens=64 prompt_tokens="32,128,512" ctx=1024
cost=1.0 llamacpp=1 out="" per_client=4
while [[ $# -gt 0 ]]; do
  case "$1" in
    -m) model="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    -c) concs="$2"; shift 2 ;;
    -n) max_tokens="$2"; shift 2 ;;
    --prompt-tokens) prompt_tokens="$2"; shift 2 ;;
    --ctx) ctx="$2"; shift 2 ;;
    --cost-per-hour) cost="$2"; shift 2 ;;
    --no-llamacpp) llamacpp=0; shift ;;
    -o) out="$2"; shift 2 ;;
    -r) per_client="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench-serve.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -n "$model" ]] || { echo "bench-serve.sh: -m MODEL is required" >&2; exit 2; }
frugal="$root/build/frugal"
[[ -x "$frugal" ]] || { echo "bench-serve.sh: build first (make build): $frugal missing" >&2; exit 2; }
server=""
if [[ $llamacpp -eq 1 ]]; then
  server="$("$root/scripts/llamacpp/build-llama-bench.sh" --target llama-server | tail -1)"
fi
results="${out:-$(mktemp /tmp/bench-serve.XXXXXX.jsonl)}"
: > "$results"
port=$((20000 + RANDOM % 20000))
pid=""
cleanup() { if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

wait_ready() {  # url path
  for _ in $(seq 1 600); do
    if python3 - "$1$2" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
PY
    kill -0 "$pid" 2>/dev/null || { echo "bench-serve.sh: the server exited" >&2; return 1; }
    sleep 0.5
  done
  return 1
}

run_level() {  # label concurrency
  local n=$(( per_client * $2 )); [[ $n -lt 8 ]] && n=8
  python3 "$here/bench/serve_client.py" --url "http://127.0.0.1:$port" --concurrency "$2" --requests "$n" \
    --max-tokens "$max_tokens" --prompt-tokens "$prompt_tokens" --cost-per-hour "$cost" --label "$1" \
    --json "$results" >/dev/null || echo "bench-serve.sh: $1 at concurrency $2 had errors (see $results)" >&2
}

IFS=',' read -ra levels <<< "$concs"
for c in "${levels[@]}"; do
  port=$((port + 1))  # a fresh port per server start (the previous one may linger in TIME_WAIT)
  echo "[bench-serve] frugal, concurrency $c" >&2
  "$frugal" serve -m "$model" -t "$threads" --host 127.0.0.1 --port "$port" --max-seqs "$c" --ctx-size "$ctx" \
    --kv-cache-tokens $(( c * ctx )) --no-prefix-cache --response-cache off >/tmp/bench-serve-frugal.log 2>&1 &
  pid=$!
  wait_ready "http://127.0.0.1:$port" /ready
  run_level frugal "$c"
  cleanup; pid=""
  if [[ -n "$server" ]]; then
    port=$((port + 1))
    echo "[bench-serve] llama.cpp, concurrency $c" >&2
    "$server" -m "$model" -t "$threads" -tb "$threads" --host 127.0.0.1 --port "$port" --parallel "$c" \
      -c $(( c * ctx )) --no-cache-prompt --no-webui >/tmp/bench-serve-llamacpp.log 2>&1 &
    pid=$!
    wait_ready "http://127.0.0.1:$port" /health
    run_level llama.cpp "$c"
    cleanup; pid=""
  fi
done

python3 - "$results" "$model" "$threads" "$cost" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"model {sys.argv[2]}, {sys.argv[3]} threads, ${float(sys.argv[4]):.2f}/hour\n")
print("| server | conc | ok/req | gen t/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | $/M gen tokens | vs llama.cpp |")
print("|---|---|---|---|---|---|---|---|---|---|")
by = {(r["label"], r["concurrency"]): r for r in rows}
for r in rows:
    peer = by.get(("llama.cpp", r["concurrency"]))
    ratio = f'{r["gen_tokens_per_s"] / peer["gen_tokens_per_s"]:.2f}x' if r["label"] == "frugal" and peer and peer["gen_tokens_per_s"] else ""
    print(f'| {r["label"]} | {r["concurrency"]} | {r["ok"]}/{r["requests"]} | {r["gen_tokens_per_s"]:.2f} | '
          f'{r["ttft_p50_s"]*1e3:.0f} | {r["ttft_p99_s"]*1e3:.0f} | {r["itl_p50_s"]*1e3:.1f} | {r["itl_p99_s"]*1e3:.1f} | '
          f'{r.get("usd_per_million_gen_tokens", float("nan")):.2f} | {ratio} |')
one = by.get(("frugal", 1))
for r in rows:
    if r["label"] == "frugal" and one and r["concurrency"] > 1:
        print(f'\nfrugal at concurrency {r["concurrency"]}: {r["gen_tokens_per_s"] / one["gen_tokens_per_s"]:.2f}x its single-user throughput', end="")
print()
PY
