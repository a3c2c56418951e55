#!/usr/bin/env bash
# The compression tables of docs/COMPRESSION.md: for each quantization / sparsity variant of the real model
# stories260K (F32 base) its size, bytes per weight, perplexity and KL divergence against the F32 base, and
# decode/prefill speed (frugal, and llama.cpp's llama-bench on the same file when it can load it); then the
# same quality columns (no speed: too small to time) for the second real model, tinystories-656k, converted
# from its safetensors to an F32 GGUF by `frugal convert`; then the speed columns for the ~1.1B random-weight
# llama model (speed only: random weights have no quality).
#
# Usage: scripts/compression-report.sh [--frugal BIN] [--work DIR] [--threads N] [--reps N] [--rounds N]
#                                      [--no-speed] [--no-big] [--big-types F16,Q8_0,Q4_0,Q4_K_M] [--out FILE]
#   --frugal   the frugal binary (default: build/frugal, else the newest build*/frugal)
#   --work     where variants are written (default /tmp/frugal-compression); nothing is written in the repo
#   --threads  threads for every run (default 2)
#   --rounds   speed rounds per file, frugal and llama.cpp interleaved, order alternating (default 2)
#   --no-big   skip the 1.1B model; --no-speed skips every speed measurement
#   --out      also write the markdown report there (default WORK/report.md)
#
# Variants (of each real model): F16 Q8_0 Q6_K Q5_K_M Q4_K_M Q4_0 made by `frugal quantize`, and 2:4 / 1:4
# sparse (magnitude, and wanda calibrated on tests/data/calibration_stories.txt) over Q8_0 and Q4_0 made by
# `frugal prune --type Q8_0|Q4_0` from those files. A missing subcommand is reported ("skipped: frugal prune
# not available") and the rest still runs; stories260K's Q8_0/Q4_0 then fall back to the llama-quantize files
# in ../shared/models (marked in the table); without `frugal convert` there is no tinystories-656k table.
# Perplexity: `frugal perplexity -c 128 -b 128 --kl-base F32-BASE.gguf` on ../shared/models/ppl_story.txt
# (stories260K: 1340 tokens, 630 scored; tinystories-656k's 2048-token vocabulary: 611 tokens, 4 chunks, 252
# scored: differences under a few % are within noise; see the ± columns). Bytes/weight: tensor bytes /
# parameters, from llama-bench-style `frugal bench` output, else from `frugal inspect`.
# A report, not a test: it never fails on a number. Environment: FRUGAL_LLAMACPP_DIR, FRUGAL_BENCH_CACHE.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="$repo/../shared/models"
frugal=""
work="/tmp/frugal-compression"
threads=2
rounds=2
speed=1
big=1
big_types="F16,Q8_0,Q4_0,Q4_K_M"
out=""
llamacpp="${FRUGAL_LLAMACPP_DIR:-$HOME/.cache/frugal/llamacpp}/build/bin"
bench_cache="${FRUGAL_BENCH_CACHE:-$HOME/.cache/frugal/bench}/models"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --frugal) frugal="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --reps) shift 2 ;;  # accepted for symmetry with bench-vs-llamacpp.sh; each round is one repetition
    --no-speed) speed=0; shift ;;
    --no-big) big=0; shift ;;
    --big-types) big_types="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "compression-report.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

if [[ -z "$frugal" ]]; then
  if [[ -x "$repo/build/frugal" ]]; then frugal="$repo/build/frugal"
  else frugal="$(ls -t "$repo"/build*/frugal 2>/dev/null | head -n 1)"; fi
fi
[[ -x "$frugal" ]] || { echo "compression-report.sh: no frugal binary (build it, or pass --frugal)" >&2; exit 2; }
mkdir -p "$work"
[[ -n "$out" ]] || out="$work/report.md"
log() { echo "[compression] $*" >&2; }

has_cmd() { "$frugal" "$1" --help >/dev/null 2>&1; }
have_quantize=0; has_cmd quantize && have_quantize=1
have_prune=0; has_cmd prune && have_prune=1
have_convert=0; has_cmd convert && have_convert=1
have_llama=0; [[ -x "$llamacpp/llama-bench" ]] && have_llama=1
notes=()
[[ $have_quantize -eq 1 ]] || notes+=("skipped: frugal quantize not available (Q8_0/Q4_0 rows use ../shared/models' llama-quantize files)")
[[ $have_prune -eq 1 ]] || notes+=("skipped: frugal prune not available (no sparse rows)")
[[ $have_llama -eq 1 ]] || notes+=("skipped: llama-bench not built (scripts/llamacpp/build-llama-bench.sh): no llama.cpp column")
for n in "${notes[@]}"; do log "$n"; done
note() { notes+=("$1"); log "$1"; }

base="$shared/stories260K.gguf"
text="$shared/ppl_story.txt"
calib="$repo/tests/data/calibration_stories.txt"
rows="$work/rows.tsv"   # label \t file \t made-by (or "skipped: why")
: > "$rows"
ts_src="$shared/tinystories-656k"
ts_base="$work/tinystories-656k-F32.gguf"
ts_rows="$work/ts_rows.tsv"
: > "$ts_rows"

# make_variants NAME BASE ROWS: the quantized and pruned variants of BASE (written as WORK/NAME-*.gguf),
# one line per variant appended to ROWS. Without frugal quantize, Q8_0/Q4_0 fall back to
# ../shared/models/NAME-TYPE.gguf when it exists (stories260K's llama-quantize files).
make_variants() {
  local name="$1" mbase="$2" mrows="$3" t f q src pat method label args
  echo -e "F32 (base)\t$mbase\t$4" >> "$mrows"
  for t in F16 Q8_0 Q6_K Q5_K_M Q4_K_M Q4_0; do
    f="$work/$name-$t.gguf"
    if [[ $have_quantize -eq 1 ]]; then
      if "$frugal" quantize "$mbase" "$f" "$t" > "$work/quantize-$name-$t.log" 2>&1; then
        echo -e "$t\t$f\tfrugal quantize" >> "$mrows"
      else
        echo -e "$t\t-\tfailed: $(tail -n 1 "$work/quantize-$name-$t.log")" >> "$mrows"
      fi
    elif [[ -f "$shared/$name-$t.gguf" ]]; then
      echo -e "$t\t$shared/$name-$t.gguf\tllama-quantize (shared)" >> "$mrows"
    else
      echo -e "$t\t-\tskipped: frugal quantize not available" >> "$mrows"
    fi
  done
  for q in Q8_0 Q4_0; do
    src="$(awk -F'\t' -v l="$q" '$1 == l && $2 != "-" {print $2}' "$mrows")"
    for pat in 2:4 1:4; do
      for method in magnitude wanda; do
        label="$q $pat $method"
        if [[ $have_prune -eq 0 ]]; then echo -e "$label\t-\tskipped: frugal prune not available" >> "$mrows"; continue; fi
        if [[ -z "$src" ]]; then echo -e "$label\t-\tskipped: no $q file" >> "$mrows"; continue; fi
        f="$work/$name-$q-${pat/:/of}-$method.gguf"
        # --type: without it prune takes the first quantized matrix's type, token_embd's Q8_0 in a Q4_0 file
        # whose (tied) embedding the Q4_0 mix keeps at Q8_0, as tinystories-656k's
        args=(prune "$src" "$f" --pattern "$pat" --method "$method" --type "$q")
        [[ $method == wanda ]] && args+=(-f "$calib" --calib-ctx 128)
        if "$frugal" "${args[@]}" > "$work/prune-$name-$q-${pat/:/of}-$method.log" 2>&1; then
          echo -e "$label\t$f\tfrugal prune" >> "$mrows"
        else
          echo -e "$label\t-\tfailed: $(tail -n 1 "$work/prune-$name-$q-${pat/:/of}-$method.log")" >> "$mrows"
        fi
      done
    done
  done
}

# ---- 1. the variants of stories260K, then of tinystories-656k (converted from safetensors) ----------
make_variants stories260K "$base" "$rows" original
if [[ ! -d "$ts_src" ]]; then
  note "skipped: $ts_src missing (no tinystories-656k table)"
elif [[ $have_convert -eq 0 ]]; then
  note "skipped: frugal convert not available (no tinystories-656k table)"
elif "$frugal" convert --outtype f32 "$ts_src" "$ts_base" > "$work/convert-tinystories-656k.log" 2>&1; then
  make_variants tinystories-656k "$ts_base" "$ts_rows" "frugal convert --outtype f32"
else
  note "failed: frugal convert $ts_src: $(tail -n 1 "$work/convert-tinystories-656k.log")"
fi

# ---- 2. the 1.1B random model (speed only) ------------------------------------------------------------
big_rows="$work/big_rows.tsv"
: > "$big_rows"
if [[ $big -eq 1 && $speed -eq 1 ]]; then
  IFS=',' read -r -a bts <<< "$big_types"
  for t in "${bts[@]}"; do
    f="$bench_cache/llama-1.1b-deepseek-vocab-$t-seed1.gguf"
    if [[ -f "$f" ]]; then echo -e "$t\t$f\tfrugal synth" >> "$big_rows"
    else echo -e "$t\t-\tskipped: $f missing (scripts/bench-vs-llamacpp.sh writes it)" >> "$big_rows"; fi
  done
  for q in Q8_0 Q4_0; do
    src="$bench_cache/llama-1.1b-deepseek-vocab-$q-seed1.gguf"
    if [[ $have_prune -eq 0 ]]; then echo -e "$q 2:4 magnitude\t-\tskipped: frugal prune not available" >> "$big_rows"; continue; fi
    [[ -f "$src" ]] || continue
    f="$work/llama-1.1b-$q-2of4-magnitude.gguf"
    if [[ -f "$f" ]] || "$frugal" prune "$src" "$f" --pattern 2:4 --method magnitude > "$work/prune-big-$q.log" 2>&1; then
      echo -e "$q 2:4 magnitude\t$f\tfrugal prune" >> "$big_rows"
    else
      echo -e "$q 2:4 magnitude\t-\tfailed: $(tail -n 1 "$work/prune-big-$q.log")" >> "$big_rows"
    fi
  done
fi

# ---- 3. measurements ---------------------------------------------------------------------------------
export FRUGAL="$frugal" LLAMA_BENCH="$llamacpp/llama-bench" HAVE_LLAMA="$have_llama" THREADS="$threads"
export ROUNDS="$rounds" SPEED="$speed" BASE="$base" TEXT="$text" WORK="$work" ROWS="$rows" BIG_ROWS="$big_rows"
export NOTES="$(printf '%s\n' "${notes[@]}")" REPO="$repo" TS_BASE="$ts_base" TS_ROWS="$ts_rows"
python3 - "$out" <<'PY'
import json, os, re, subprocess, sys, time

out_path = sys.argv[1]
E = os.environ
frugal, llama_bench, threads = E["FRUGAL"], E["LLAMA_BENCH"], E["THREADS"]
have_llama, rounds, speed = E["HAVE_LLAMA"] == "1", int(E["ROUNDS"]), E["SPEED"] == "1"

def log(*a): print("[compression]", *a, file=sys.stderr, flush=True)

def read_rows(path):
    rows = []
    for line in open(path):
        label, f, how = line.rstrip("\n").split("\t", 2)
        rows.append((label, None if f == "-" else f, how))
    return rows

def run(cmd, timeout=1800):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return 124, "", "timeout"

def perplexity(f, base):
    rc, so, se = run([frugal, "perplexity", "-m", f, "-f", E["TEXT"], "-c", "128", "-b", "128", "-t", threads,
                      "--kl-base", base])
    if rc != 0:
        return {"error": (se.strip().splitlines() or ["?"])[-1]}
    def grab(pat):
        m = re.search(pat, so)
        return (float(m.group(1)), float(m.group(2))) if m else (float("nan"), float("nan"))
    r = {}
    r["ppl"] = grab(r"Final estimate: PPL = ([\d.]+) \+/- ([\d.]+)")
    r["kld"] = grab(r"Mean    KLD:\s+([-\d.]+) ±\s+([\d.]+)")
    r["top"] = grab(r"Same top p:\s+([\d.]+) ±\s+([\d.]+)")
    r["dppl"] = grab(r"Mean PPL\(Q\)-PPL\(base\)\s+:\s+([-\d.]+) ±\s+([\d.]+)")
    m = re.search(r"(\d+) tokens; (\d+) chunks of", se)
    n = re.search(r"(\d+) scored tokens", se)
    r["tokens"] = (int(m.group(1)), int(m.group(2))) if m else None
    r["scored"] = int(n.group(1)) if n else None
    return r

def inspect(f):
    """`frugal inspect`: (parameters, tensor bytes, [(name, type, [dims])]) or None when it fails."""
    rc, so, se = run([frugal, "inspect", f])
    if rc != 0:
        return None
    p = re.search(r"parameters:\s+(\d+)", so)
    b = re.search(r"tensor bytes:\s+(\d+)", so)
    tensors = [(m.group(1), m.group(2), [int(x) for x in m.group(3).split(",")])
               for m in re.finditer(r"^\s+\d+\s+(\S+)\s+(\S+)\s+\{([\d, ]+)\}", so, re.M)]
    return (int(p.group(1)) if p else None, int(b.group(1)) if b else None, tensors)

def type_mix(tensors):
    counts = {}
    for _, t, _ in tensors:
        counts[t] = counts.get(t, 0) + 1
    return " + ".join(f"{n} × {t}" for t, n in sorted(counts.items(), key=lambda kv: -kv[1]))

def bench(engine, f, pp, tg):
    """One repetition of pp and tg; returns {"pp": t/s, "tg": t/s, "size": bytes, "params": n} or error."""
    exe = frugal if engine == "frugal" else llama_bench
    cmd = ([exe, "bench"] if engine == "frugal" else [exe]) + ["-m", f, "-p", str(pp), "-n", str(tg), "-t", threads,
                                                              "-r", "1", "-o", "json"]
    rc, so, se = run(cmd)
    if rc != 0:
        return {"error": (se.strip().splitlines() or ["?"])[-1][:120]}
    try:
        js = json.loads(so[so.index("["):])
    except Exception:
        return {"error": "unparsable output"}
    r = {}
    for t in js:
        key = "pp" if t.get("n_prompt", 0) > 0 else "tg"
        r[key] = t["avg_ts"]
        r["size"], r["params"] = t.get("model_size"), t.get("model_n_params")
    return r

def speed_of(f, pp, tg, llama_ok=True):
    """Interleaved rounds (order alternating); mean t/s of each engine."""
    acc = {"frugal": [], "llama": []}
    engines = ["frugal"] + (["llama"] if have_llama and llama_ok else [])
    for i in range(rounds):
        order = engines if i % 2 == 0 else engines[::-1]
        for e in order:
            acc[e].append(bench(e, f, pp, tg))
    res = {}
    for e, lst in acc.items():
        ok = [x for x in lst if "error" not in x]
        if not lst:
            continue
        if not ok:
            res[e] = {"error": lst[0]["error"]}
            continue
        res[e] = {k: sum(x[k] for x in ok if k in x) / len(ok) for k in ("pp", "tg")}
        res[e]["size"], res[e]["params"] = ok[0].get("size"), ok[0].get("params")
    return res

def fmt(v, d=2):
    return "—" if v is None or v != v else f"{v:.{d}f}"

def table(rows, quality, pp, tg, title, base=None, speed_cols=True, notes=()):
    """quality: PPL/KLD columns against base; speed_cols=False leaves out every speed column (and measurement)."""
    lines = [f"### {title}", ""]
    speed_cols = speed_cols and speed  # --no-speed: no speed columns at all (not columns of dashes)
    hdr = ["variant", "made by", "size", "bytes/weight"]
    if speed_cols:
        hdr += ["prefill t/s", "decode t/s", "prefill vs F16", "decode vs F16", "prefill vs llama.cpp",
                "decode vs llama.cpp"]
    if quality:
        hdr[4:4] = ["PPL", "ΔPPL vs F32", "KLD vs F32", "same top-1"]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "---|" * len(hdr))
    results, f16 = {}, None
    for label, f, how in rows:
        if f is None:
            lines.append(f"| {label} | {how} |" + " |" * (len(hdr) - 2))
            continue
        log("measuring", label, f)
        q = perplexity(f, base) if quality else None
        s = speed_of(f, pp, tg, llama_ok=("prune" not in how)) if speed and speed_cols else {}
        results[label] = (f, how, q, s)
        if label.startswith("F16"):
            f16 = s.get("frugal")
    for label, f, how in rows:
        if f is None or label not in results:
            continue
        f, how, q, s = results[label]
        fr, ll = s.get("frugal", {}), s.get("llama", {})
        size = os.path.getsize(f)
        params = fr.get("params")
        tensor_bytes = fr.get("size")
        if not (tensor_bytes and params):
            params, tensor_bytes, _ = inspect(f) or (None, None, None)
        bpw = (tensor_bytes / params) if tensor_bytes and params else None
        cells = [label, how, f"{size / 1024:.0f} KiB" if size < 1 << 26 else f"{size / 2**30:.2f} GiB", fmt(bpw, 3)]
        if quality:
            if "error" in q:
                cells += [q["error"], "", "", ""]
            else:
                cells += [f"{q['ppl'][0]:.4f} ± {q['ppl'][1]:.4f}", f"{q['dppl'][0]:+.4f} ± {q['dppl'][1]:.4f}",
                          f"{q['kld'][0]:.5f} ± {q['kld'][1]:.5f}", f"{q['top'][0]:.2f}%"]
        if not speed_cols:
            pass
        elif "error" in fr:
            cells += [fr["error"], "", "", "", "", ""]
        else:
            cells += [fmt(fr.get("pp"), 1), fmt(fr.get("tg"), 1)]
            cells += [fmt(fr["pp"] / f16["pp"]) if f16 and "pp" in f16 and fr.get("pp") else "—",
                      fmt(fr["tg"] / f16["tg"]) if f16 and "tg" in f16 and fr.get("tg") else "—"]
            if "error" in ll:
                cells += ["llama.cpp: " + ll["error"][:60], ""]
            elif ll:
                cells += [fmt(fr["pp"] / ll["pp"]) + f" ({ll['pp']:.1f})", fmt(fr["tg"] / ll["tg"]) + f" ({ll['tg']:.1f})"]
            else:
                cells += ["n/a (not loadable by llama.cpp)" if "prune" in how else "—", ""]
        lines.append("| " + " | ".join(cells) + " |")
    if quality:
        q = next((r[2] for r in results.values() if r[2] and r[2].get("tokens")), None)
        if q:
            lines += ["", f"* {os.path.basename(E['TEXT'])} is {q['tokens'][0]} tokens in this vocabulary: "
                      f"{q['tokens'][1]} chunks of 128, {q['scored']} scored tokens."]
    lines += [f"* {n}" for n in notes]
    return lines

def shape_notes(rows):
    """Which block sizes the base's matrix rows allow, and what the k-quant variants are really made of."""
    base = next((f for label, f, _ in rows if label.startswith("F32") and f), None)
    info = inspect(base) if base else None
    if not info:
        return []
    widths = sorted({d[0] for _, _, d in info[2] if len(d) == 2})
    fits = lambda b: [w for w in widths if w % b == 0]
    out = [f"matrix row widths {', '.join(map(str, widths))} (`frugal inspect`): 32-value blocks (Q8_0, Q4_0, Q5_0…) "
           f"fit {'every' if fits(32) == widths else 'only the ' + str(fits(32)) + '-wide'} row; 256-value k-quant "
           f"super-blocks (Q4_K, Q5_K, Q6_K) fit "
           + ("no row: the Q6_K / Q5_K_M / Q4_K_M rows measure fallbacks, not k-quants"
              if not fits(256) else f"rows of {fits(256)}")]
    for label, f, _ in rows:
        if f and ("_K" in label or label == "Q4_0" or label == "Q8_0"):
            i = inspect(f)
            if i:
                out.append(f"{label} file: {type_mix(i[2])}")
    return out

load = open("/proc/loadavg").read().split()[:3]
commit = subprocess.run(["git", "-C", E["REPO"], "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
md = [f"Generated by `scripts/compression-report.sh` at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
      f"commit {commit}, {cpu}, {os.cpu_count()} cores, {threads} threads, load average at start {' '.join(load)}.", ""]
for n in E.get("NOTES", "").splitlines():
    if n.strip():
        md.append(f"* {n}")
md.append("")
md += table(read_rows(E["ROWS"]), True, 128, 64, "stories260K (F32 base; perplexity on ppl_story.txt, -c 128)",
            base=E["BASE"])
md.append("")
ts_rows = read_rows(E["TS_ROWS"]) if os.path.getsize(E["TS_ROWS"]) else []
if ts_rows:
    md += table(ts_rows, True, 0, 0, "tinystories-656k (F32 base, converted with frugal convert)", base=E["TS_BASE"],
                speed_cols=False, notes=["quality only: speed columns on a model this small measure overhead and noise"]
                + shape_notes(ts_rows))
    md.append("")
big_rows = read_rows(E["BIG_ROWS"]) if os.path.getsize(E["BIG_ROWS"]) else []
if big_rows:
    md += table(big_rows, False, 64, 16, "llama 1.1B random weights (speed only)")
md.append("")
md.append(f"Load average at the end: {' '.join(open('/proc/loadavg').read().split()[:3])}.")
text = "\n".join(md) + "\n"
open(out_path, "w").write(text)
print(text)
PY
log "report written to $out"
