#!/usr/bin/env bash
# Start-up time: from launching the program to its first generated token, frugal vs llama.cpp, same file,
# same threads, warm page cache, several INTERLEAVED rounds (the order alternates each round).
#
# Usage: scripts/bench/startup.sh [-m FILE.gguf] [-t THREADS] [--rounds N] [-p PROMPT]
#                                 [--frugal PATH] [--llama PATH] [--frugal-args "ARGS"]
#
#   Each engine runs with -n 1 (one generated token, greedy) and exits, so the wall time of the whole
#   process is launch -> first token (+ a tear-down of a few ms). Engines:
#     frugal run -m FILE -p PROMPT -n 1 -t T --temp 0            (no warm-up pass: frugal run does none)
#     llama-completion -m FILE -p PROMPT -n 1 -t T --temp 0 -no-cnv  (llama.cpp's CLI; it runs a warm-up
#        forward by default, so it is also timed with --no-warmup, the fairer peer for a cold first token)
#   The file is read once beforehand so the page cache is warm for both. Prints a markdown table: median
#   and min wall seconds per engine and the ratios frugal / llama.cpp (<= 1.00 meets the issue's target),
#   plus frugal's own split (process start -> loaded, -> first token) from `frugal run --verbose`.
#   Defaults: -m ~/.cache/frugal/bench/models/llama-1.1b-deepseek-vocab-Q4_0-seed1.gguf, -t 2, 5 rounds,
#   --frugal build-bench/frugal, --llama ~/.cache/frugal/llamacpp/build/bin/llama-completion (built with
#   -j1 in that llama.cpp build dir when missing).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
model="$HOME/.cache/frugal/bench/models/llama-1.1b-deepseek-vocab-Q4_0-seed1.gguf"
threads=2
rounds=5
prompt="Hello"
frugal="$repo/build-bench/frugal"
llama_build="$HOME/.cache/frugal/llamacpp/build"
llama="$llama_build/bin/llama-completion"
frugal_args=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    -m) model="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -p) prompt="$2"; shift 2 ;;
    --frugal) frugal="$2"; shift 2 ;;
    --llama) llama="$2"; shift 2 ;;
    --frugal-args) frugal_args="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "startup.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

[[ -s "$model" ]] || { echo "startup.sh: model '$model' not found" >&2; exit 1; }
[[ -x "$frugal" ]] || { echo "startup.sh: frugal binary '$frugal' not found (build it or pass --frugal)" >&2; exit 1; }
if [[ ! -x "$llama" && -f "$llama_build/build.ninja" ]]; then
  echo "startup.sh: building llama-completion in $llama_build (-j1)" >&2
  cmake --build "$llama_build" --target llama-completion -j1 >&2
fi
[[ -x "$llama" ]] || { echo "startup.sh: llama.cpp binary '$llama' not found (pass --llama)" >&2; exit 1; }

cat "$model" > /dev/null  # warm page cache for both engines

python3 - "$model" "$threads" "$rounds" "$prompt" "$frugal" "$llama" "$frugal_args" <<'PY'
import re, shlex, statistics, subprocess, sys, time, os

model, threads, rounds, prompt, frugal, llama, frugal_args = sys.argv[1:]
rounds = int(rounds)
engines = {
    "frugal run": [frugal, "run", "-m", model, "-p", prompt, "-n", "1", "-t", threads, "--temp", "0",
                   "--verbose"] + shlex.split(frugal_args),
    "llama-completion": [llama, "-m", model, "-p", prompt, "-n", "1", "-t", threads, "--temp", "0", "-no-cnv"],
    "llama-completion --no-warmup": [llama, "-m", model, "-p", prompt, "-n", "1", "-t", threads, "--temp", "0",
                                     "-no-cnv", "--no-warmup"],
}
times = {k: [] for k in engines}
split = []  # frugal: (loaded ms, first token ms) since process start
names = list(engines)
for r in range(rounds):
    order = names if r % 2 == 0 else list(reversed(names))
    for name in order:
        t0 = time.perf_counter()
        p = subprocess.run(engines[name], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            sys.stderr.write(p.stderr.decode(errors="replace")[-2000:])
            sys.exit(f"startup.sh: {name} failed with exit code {p.returncode}")
        times[name].append(dt)
        if name == "frugal run":
            m = re.search(r"model\+tokenizer loaded ([0-9.]+) ms .* first token ([0-9.]+) ms", p.stderr.decode(errors="replace"))
            if m:
                split.append((float(m.group(1)), float(m.group(2))))

load = open("/proc/loadavg").read().split()[:3]
print(f"Start-up, launch to first token ({os.path.basename(model)}, -t {threads}, prompt {prompt!r}, -n 1, "
      f"{rounds} interleaved rounds, warm page cache; load average {' '.join(load)}):")
print()
print("| engine | median s | min s | frugal / engine (median) |")
print("| --- | ---: | ---: | ---: |")
fmed = statistics.median(times["frugal run"])
for name in names:
    med = statistics.median(times[name])
    ratio = "" if name == "frugal run" else f"{fmed / med:.2f}"
    print(f"| {name} | {med:.3f} | {min(times[name]):.3f} | {ratio} |")
if split:
    print()
    print(f"frugal run --verbose (median): process start -> model and tokenizer loaded "
          f"{statistics.median(s[0] for s in split):.1f} ms, -> first token {statistics.median(s[1] for s in split):.1f} ms")
PY
