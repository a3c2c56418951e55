#!/usr/bin/env bash
# frugal vs llama.cpp on the same GGUF files and the same thread counts, plus memory bandwidth.
#
# Usage: scripts/bench-vs-llamacpp.sh [--quick] [--threads 1,2] [--types F16,Q8_0,Q4_0,Q4_K_M] [--reps 3]
#                                     [--pp 512] [--tg 128] [--model FILE.gguf ...] [--llamacpp-only]
#                                     [--batched 4,16] [--batched-types T,...] [--batched-threads N,...]
#                                     [--moe-types Q4_K_M] [--no-startup]
#                                     [--cache-dir DIR] [--regen] [--docs | --no-docs] [--wait-quiet SECONDS]
#                                     [--extra-rounds N]
#
#   Builds frugal (Release, build-bench/) and native llama.cpp tools (scripts/llamacpp/build-llama-bench.sh,
#   cached outside the repo), writes random-weight models with `frugal synth` into the cache dir (reused when
#   present; --regen rewrites them), measures memory bandwidth with frugal_stream, then runs, always
#   INTERLEAVED (rounds of one invocation per engine, the order alternating each round):
#     1. `frugal bench` vs `llama-bench` (pp<--pp>, tg<--tg>) per model and thread count: the 1.1B llama model
#        in --types, and the DeepSeek-V2-Lite-shaped MoE model in --moe-types (the same 27-layer, 64-expert
#        shape as the real V2-Lite: 15.7B params, 2.7B active; "none" skips it; F16 would need 31 GB);
#     2. batched decode: `frugal batched-bench` vs `llama-batched-bench` with --batched parallel sequences
#        (32 prompt + 64 generated tokens each) on --batched-types (default: --types) at --batched-threads
#        (default: the largest of --threads); "none" skips it;
#     3. start-up: time from launch to the first generated token (scripts/bench/startup.sh, 1.1B Q4_0).
#   Prints tables (t/s of both, ratio frugal/llama.cpp against the issue's targets, decode GB/s and its
#   fraction of the measured read and triad bandwidth) and, for full runs (or with --docs), writes them into
#   docs/BENCHMARKS.md between marker comments.
#
#   Full model: llama, n_embd 2048, 16 layers, 32 heads, 8 kv heads, n_ff 5632, the 102400-token
#   deepseek-llm vocabulary (~1.1B params), seed 1. --quick: n_embd 1024, 8 layers, 16 heads, 4 kv heads,
#   n_ff 2816, 1 rep, pp128/tg32, batched 4, no MoE model, no docs unless --docs.
#   --model FILE (repeatable) benchmarks existing files instead (label = file name); --llamacpp-only skips
#   frugal (to check the peer on its own). Before each round the CPU time used by other processes is
#   sampled for 1 s and recorded; --wait-quiet S waits up to S seconds (default 300) for it to drop below 15%.
#   Other processes' CPU use during each invocation is measured too (scripts/llamacpp/run_measured.py); a
#   round where it exceeds 10% is repeated, at most --extra-rounds (default 3) times per model and threads.
# A benchmark, not a test: it never fails on a time. Environment: FRUGAL_BENCH_CACHE, FRUGAL_LLAMACPP_DIR.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="$repo/../shared"
threads="1,2"
types="F16,Q8_0,Q4_0,Q4_K_M"
reps=""
pp=""
tg=""
quick=0
docs="auto"
regen=0
llamacpp_only=0
models=()
wait_quiet=300
extra_rounds=3
batched=""
batched_types=""
batched_threads=""
moe_types=""
startup=1
cache="${FRUGAL_BENCH_CACHE:-$HOME/.cache/frugal/bench}"
command_line="scripts/bench-vs-llamacpp.sh $*"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --threads) threads="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --pp) pp="$2"; shift 2 ;;
    --tg) tg="$2"; shift 2 ;;
    --model) models+=("$(realpath "$2")"); shift 2 ;;
    --llamacpp-only) llamacpp_only=1; shift ;;
    --cache-dir) cache="$2"; shift 2 ;;
    --regen) regen=1; shift ;;
    --docs) docs="yes"; shift ;;
    --no-docs) docs="no"; shift ;;
    --wait-quiet) wait_quiet="$2"; shift 2 ;;
    --extra-rounds) extra_rounds="$2"; shift 2 ;;
    --batched) batched="$2"; shift 2 ;;
    --batched-types) batched_types="$2"; shift 2 ;;
    --batched-threads) batched_threads="$2"; shift 2 ;;
    --moe-types) moe_types="$2"; shift 2 ;;
    --no-startup) startup=0; shift ;;
    -h|--help) sed -n '2,39p' "$0"; exit 0 ;;
    *) echo "bench-vs-llamacpp.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [[ $quick -eq 1 ]]; then
  reps="${reps:-1}"; pp="${pp:-128}"; tg="${tg:-32}"
  batched="${batched:-4}"; moe_types="${moe_types:-none}"
  shape=(--n-embd 1024 --n-layer 8 --n-head 16 --n-head-kv 4 --n-ff 2816)
  model_tag="llama-quick"
  block="bench-vs-llamacpp-quick"
else
  reps="${reps:-3}"; pp="${pp:-512}"; tg="${tg:-128}"
  batched="${batched:-4,16}"; moe_types="${moe_types:-Q4_K_M}"
  shape=(--n-embd 2048 --n-layer 16 --n-head 32 --n-head-kv 8 --n-ff 5632)
  model_tag="llama-1.1b"
  block="bench-vs-llamacpp"
fi
if [[ "$docs" == "auto" ]]; then
  if [[ $quick -eq 0 && ${#models[@]} -eq 0 && $llamacpp_only -eq 0 ]]; then docs="yes"; else docs="no"; fi
fi
if [[ ${#models[@]} -gt 0 ]]; then block="bench-vs-llamacpp-files"; moe_types="none"; startup=0; fi
[[ $llamacpp_only -eq 1 ]] && startup=0
[[ "$moe_types" == "none" ]] && moe_types=""
[[ "$batched" == "none" ]] && batched=""

log() { echo "[bench] $*" >&2; }
IFS=',' read -r -a thread_list <<< "$threads"
IFS=',' read -r -a type_list <<< "$types"

# 1. Binaries. frugal is needed to bench it and to synthesize models.
build="$repo/build-bench"
targets=(frugal_stream)
[[ $llamacpp_only -eq 0 || ${#models[@]} -eq 0 ]] && targets+=(frugal)
log "building ${targets[*]} (Release) in $build"
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFRUGAL_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target "${targets[@]}" -j "$(nproc)" >&2
# The commit the binaries were built from (HEAD may move while the benchmark runs).
commit="$(git -C "$repo" rev-parse --short HEAD)"
git -C "$repo" diff --quiet HEAD -- src tools CMakeLists.txt 2>/dev/null || commit="$commit (+ uncommitted changes in src/tools)"
frugal="$build/frugal"
llama_bench="$("$repo/scripts/llamacpp/build-llama-bench.sh" | tail -1)"
llama_batched=""
[[ -n "$batched" ]] && llama_batched="$("$repo/scripts/llamacpp/build-llama-bench.sh" --target llama-batched-bench | tail -1)"
llama_dir="$(dirname "$(dirname "$(dirname "$llama_bench")")")"

# 2. Models: label<TAB>path.
mkdir -p "$cache/models"
model_rows=()
if [[ ${#models[@]} -gt 0 ]]; then
  for m in "${models[@]}"; do model_rows+=("$(basename "$m" .gguf)"$'\t'"$m"); done
else
  vocab="$shared/vocab/ggml-vocab-deepseek-llm.gguf"
  for t in "${type_list[@]}"; do
    out="$cache/models/$model_tag-deepseek-vocab-$t-seed1.gguf"
    if [[ $regen -eq 1 || ! -s "$out" ]]; then
      [[ -x "$frugal" ]] || { echo "bench-vs-llamacpp.sh: $frugal missing; cannot synthesize models" >&2; exit 1; }
      log "writing $out"
      "$frugal" synth -o "$out.tmp" --arch llama "${shape[@]}" --vocab-from "$vocab" --type "$t" --seed 1 >&2
      mv "$out.tmp" "$out"
    fi
    model_rows+=("$t"$'\t'"$out")
  done
  # The DeepSeek-V2-Lite-shaped MoE model (MLA, 64 routed experts of which 6 run, 2 shared).
  IFS=',' read -r -a moe_list <<< "$moe_types"
  for t in "${moe_list[@]}"; do
    out="$cache/models/ds2-v2lite-deepseek-vocab-$t-seed1.gguf"
    if [[ $regen -eq 1 || ! -s "$out" ]]; then
      [[ -x "$frugal" ]] || { echo "bench-vs-llamacpp.sh: $frugal missing; cannot synthesize models" >&2; exit 1; }
      log "writing $out (about 30 minutes at 2 threads)"
      "$frugal" synth -o "$out.tmp" --arch deepseek2 --n-embd 2048 --n-layer 27 --n-head 16 --n-ff 10944 \
        --n-dense-lead 1 --kv-lora-rank 512 --qk-nope 128 --qk-rope 64 --v-head 128 --n-expert 64 \
        --n-expert-used 6 --n-ff-exp 1408 --n-expert-shared 2 --yarn-factor 40 --yarn-log-mul 0.0707 \
        --fan-in-std --vocab-from "$vocab" --type "$t" --seed 1 >&2
      mv "$out.tmp" "$out"
    fi
    model_rows+=("MoE V2-Lite $t"$'\t'"$out")
  done
fi

# 3. Run directory and metadata.
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
run_dir="$repo/bench-out/$stamp"
mkdir -p "$run_dir"
runs="$run_dir/runs.tsv"
: > "$runs"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

log "memory bandwidth (frugal_stream)"
"$build/frugal_stream" --threads "$threads" --reps 5 --json > "$run_dir/stream-before.json"
cat "$run_dir/stream-before.json" >&2

# 4. Interleaved runs.
cpu_busy_pct() {  # percent of all CPUs busy over one second (nothing of ours runs meanwhile)
  local a b
  a="$(head -1 /proc/stat)"; sleep 1; b="$(head -1 /proc/stat)"
  awk -v a="$a" -v b="$b" 'BEGIN {
    n = split(a, x, " "); split(b, y, " "); total = 0; idle = 0
    for (i = 2; i <= n; i++) { d = y[i] - x[i]; total += d; if (i == 5 || i == 6) idle += d }
    pct = 0; if (total > 0) pct = 100 * (total - idle) / total
    printf "%d", pct + 0.5 }'
}
wait_for_quiet() {  # sets $busy
  local waited=0
  busy="$(cpu_busy_pct)"
  while (( busy > 15 && waited < wait_quiet )); do
    (( waited == 0 )) && log "  machine busy (${busy}% CPU used by others); waiting up to ${wait_quiet}s"
    sleep 9; waited=$((waited + 10))
    busy="$(cpu_busy_pct)"
  done
  (( busy > 15 )) && log "  still ${busy}% busy; running anyway"
  return 0
}

run_engine() {  # engine label threads round model; sets $others (others' CPU % during the run)
  local engine="$1" label="$2" nt="$3" rnd="$4" model="$5"
  local out="$run_dir/$engine-${label// /_}-t$nt-r$rnd.json"
  local err="${out%.json}.stderr"
  local rc=0 cmd
  if [[ "$engine" == "frugal" ]]; then
    cmd=("$frugal" bench -m "$model" -p "$pp" -n "$tg" -t "$nt" -r 1 -o json)
  else
    cmd=("$llama_bench" -m "$model" -p "$pp" -n "$tg" -t "$nt" -r 1 -o json)
  fi
  others="$(python3 "$repo/scripts/llamacpp/run_measured.py" --stdout "$out" --stderr "$err" -- "${cmd[@]}")" || rc=$?
  [[ $rc -eq 0 ]] || log "  $engine exited with $rc (see $err)"
  [[ -n "$others" ]] || others=0
  (( others > max_others )) && max_others=$others
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$([[ $engine == frugal ]] && echo frugal || echo llama.cpp)" \
    "$label" "$nt" "$rnd" "$model" "$out" "$busy" "$others" >> "$runs"
}

# A round is "clean" when other processes used at most 10% of the CPUs during each engine's invocation;
# disturbed rounds are kept in runs.tsv (the report shows them only where no clean round exists) and
# repeated, up to --extra-rounds more rounds per model and thread count.
engines=(frugal llamacpp)
[[ $llamacpp_only -eq 1 ]] && engines=(llamacpp)
round_stream="$run_dir/round-stream.tsv"
: > "$round_stream"
round=0
for row in "${model_rows[@]}"; do
  label="${row%%$'\t'*}"; model="${row#*$'\t'}"
  for nt in "${thread_list[@]}"; do
    clean=0
    for ((rnd = 1; clean < reps && rnd <= reps + extra_rounds; rnd++)); do
      order=("${engines[@]}")
      if (( round % 2 == 1 )) && [[ ${#engines[@]} -eq 2 ]]; then order=(llamacpp frugal); fi
      round=$((round + 1))
      wait_for_quiet
      max_others=0
      for e in "${order[@]}"; do
        log "$label threads=$nt round $rnd (clean so far $clean/$reps): $e"
        run_engine "$e" "$label" "$nt" "$rnd" "$model"
      done
      # A short read probe right after the round: the same-round bandwidth the decode is judged against.
      probe="$run_dir/stream-${label// /_}-t$nt-r$rnd.json"
      "$build/frugal_stream" --threads "$nt" --reps 5 --mib-per-array 1024 --json > "$probe" 2>/dev/null &&
        printf '%s\t%s\t%s\t%s\n' "$label" "$nt" "$rnd" "$probe" >> "$round_stream"
      if (( max_others <= 10 )); then clean=$((clean + 1)); else log "  disturbed round (others used ${max_others}% CPU)"; fi
    done
  done
done

# 4b. Batched decode: both engines' batched-bench (same markdown columns), same files, same threads.
batched_runs="$run_dir/batched.tsv"
: > "$batched_runs"
if [[ -n "$batched" ]]; then
  IFS=',' read -r -a npl_list <<< "$batched"
  max_npl=0; for b in "${npl_list[@]}"; do (( b > max_npl )) && max_npl=$b; done
  bctx=$(( max_npl * 96 > 2048 ? max_npl * 96 : 2048 ))
  if [[ -z "$batched_threads" ]]; then
    batched_threads="${thread_list[0]}"; for nt in "${thread_list[@]}"; do (( nt > batched_threads )) && batched_threads=$nt; done
  fi
  IFS=',' read -r -a bthread_list <<< "$batched_threads"
  want=",${batched_types:-}," 
  for row in "${model_rows[@]}"; do
    label="${row%%$'\t'*}"; model="${row#*$'\t'}"
    if [[ -n "$batched_types" && "$want" != *",$label,"* ]]; then continue; fi
    [[ "$label" == MoE* ]] && continue
    for nt in "${bthread_list[@]}"; do
      clean=0
      for ((rnd = 1; clean < reps && rnd <= reps + extra_rounds; rnd++)); do
        order=(frugal llamacpp)
        [[ $llamacpp_only -eq 1 ]] && order=(llamacpp)
        if (( round % 2 == 1 )) && [[ ${#order[@]} -eq 2 ]]; then order=(llamacpp frugal); fi
        round=$((round + 1))
        wait_for_quiet
        max_others=0
        for e in "${order[@]}"; do
          log "batched $label threads=$nt npl=$batched round $rnd (clean so far $clean/$reps): $e"
          out="$run_dir/batched-$e-${label// /_}-t$nt-r$rnd.md"
          if [[ "$e" == "frugal" ]]; then
            cmd=("$frugal" batched-bench -m "$model" --npp 32 --ntg 64 --npl "$batched" -t "$nt")
          else
            cmd=("$llama_batched" -m "$model" -c "$bctx" -b 2048 -ub 512 -npp 32 -ntg 64 -npl "$batched" -t "$nt" -tb "$nt")
          fi
          rc=0
          others="$(python3 "$repo/scripts/llamacpp/run_measured.py" --stdout "$out" --stderr "${out%.md}.stderr" -- "${cmd[@]}")" || rc=$?
          [[ $rc -eq 0 ]] || log "  $e exited with $rc (see ${out%.md}.stderr)"
          [[ -n "$others" ]] || others=0
          (( others > max_others )) && max_others=$others
          printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$([[ $e == frugal ]] && echo frugal || echo llama.cpp)" \
            "$label" "$nt" "$rnd" "$model" "$out" "$busy" "$others" >> "$batched_runs"
        done
        if (( max_others <= 10 )); then clean=$((clean + 1)); else log "  disturbed round (others used ${max_others}% CPU)"; fi
      done
    done
  done
fi

# 4c. Start-up: launch to first token, both engines, same file (scripts/bench/startup.sh interleaves them).
startup_out="$run_dir/startup.md"
: > "$startup_out"
if [[ $startup -eq 1 && -x "$repo/scripts/bench/startup.sh" ]]; then
  q4="$cache/models/$model_tag-deepseek-vocab-Q4_0-seed1.gguf"
  if [[ -s "$q4" ]]; then
    log "start-up time (scripts/bench/startup.sh)"
    "$repo/scripts/bench/startup.sh" -m "$q4" -t "${thread_list[-1]}" --frugal "$frugal" > "$startup_out" || log "  startup.sh failed"
  fi
fi

"$build/frugal_stream" --threads "$threads" --reps 5 --json > "$run_dir/stream-after.json"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# 5. Report.
cpu_model="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
flags="$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16|avx512_fp16|avx_vnni|amx_tile|amx_int8|amx_bf16)$' | tr '\n' ' ' | sed 's/ $//')"
peer="native llama-bench, llama.cpp $(sed -n 's/^llama.cpp commit: //p' "$llama_dir/build-info.txt" 2>/dev/null | cut -c1-8) from node-llama-cpp 3.21.1, GGML_NATIVE=ON, AMX off, OpenMP, default llama-bench settings (f16 KV cache, flash attention auto, n_batch 2048, n_ubatch 512)"
M_DATE="$(date -u +%Y-%m-%d)" M_CPU="$cpu_model" M_NCPU="$(nproc)" M_FLAGS="$flags" M_KERNEL="$(uname -r)" \
M_COMMIT="$commit" M_PEER="$peer" M_COMMAND="$command_line" M_REPS="$reps" M_LOAD_BEFORE="$load_before" \
M_LOAD_AFTER="$load_after" python3 -c '
import json, os, sys
e = os.environ
json.dump({"date": e["M_DATE"], "cpu_model": e["M_CPU"], "n_cpus": int(e["M_NCPU"]), "cpu_flags": e["M_FLAGS"],
           "kernel": e["M_KERNEL"], "commit": e["M_COMMIT"], "peer": e["M_PEER"], "command": e["M_COMMAND"],
           "reps": int(e["M_REPS"]), "load_before": e["M_LOAD_BEFORE"], "load_after": e["M_LOAD_AFTER"]},
          open(sys.argv[1], "w"), indent=1)' "$run_dir/meta.json"
report_args=(report --runs "$runs" --batched-runs "$batched_runs" --startup "$startup_out" --stream "$run_dir/stream-before.json" "$run_dir/stream-after.json" --round-stream "$round_stream" --meta "$run_dir/meta.json")
[[ "$docs" == "yes" ]] && report_args+=(--docs "$repo/docs/BENCHMARKS.md" --block "$block")
python3 "$repo/scripts/llamacpp/bench_report.py" "${report_args[@]}" | tee "$run_dir/report.md"
log "raw results in $run_dir"
